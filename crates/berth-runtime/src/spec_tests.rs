use std::path::{Path, PathBuf};

use oci_spec::image::{ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder};
use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};

use super::*;
use crate::options::{EtcFiles, Network, RunOptions};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

fn image(
    entrypoint: Option<&[&str]>,
    cmd: Option<&[&str]>,
    env: &[&str],
    workdir: Option<&str>,
    user: Option<&str>,
) -> ImageConfiguration {
    let mut config = ConfigBuilder::default().env(strings(env));
    if let Some(entrypoint) = entrypoint {
        config = config.entrypoint(strings(entrypoint));
    }
    if let Some(cmd) = cmd {
        config = config.cmd(strings(cmd));
    }
    if let Some(workdir) = workdir {
        config = config.working_dir(workdir);
    }
    if let Some(user) = user {
        config = config.user(user);
    }
    ImageConfigurationBuilder::default().config(config.build().unwrap()).build().unwrap()
}

fn etc_files() -> EtcFiles {
    EtcFiles {
        hosts: "/c/hosts".into(),
        resolv_conf: "/c/resolv.conf".into(),
        hostname: "/c/hostname".into(),
    }
}

fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("etc/group"), "root:x:0:\napp:x:1000:\nvideo:x:44:app\n").unwrap();
    dir
}

fn options() -> RunOptions {
    RunOptions { cgroup_mode: Some(CgroupMode::Hybrid), ..RunOptions::default() }
}

fn build(config: &ImageConfiguration, opts: &RunOptions) -> Spec {
    let root = rootfs();
    build_spec(config, opts, root.path(), &etc_files()).unwrap()
}

fn env_of(spec: &Spec) -> Vec<String> {
    spec.process().as_ref().unwrap().env().clone().unwrap()
}

fn namespaces_of(spec: &Spec) -> Vec<LinuxNamespaceType> {
    spec.linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|namespace| namespace.typ())
        .collect()
}

#[test]
fn entrypoint_and_cmd_follow_docker_rules() {
    // (image entrypoint, image cmd, --entrypoint, run args, expected)
    type Case<'a> = (
        Option<&'a [&'a str]>,
        Option<&'a [&'a str]>,
        Option<&'a [&'a str]>,
        &'a [&'a str],
        Option<&'a [&'a str]>,
    );
    let cases: &[Case<'_>] = &[
        (None, Some(&["sh"]), None, &[], Some(&["sh"])),
        (None, Some(&["sh"]), None, &["echo", "hi"], Some(&["echo", "hi"])),
        (Some(&["/entry"]), Some(&["--flag"]), None, &[], Some(&["/entry", "--flag"])),
        (Some(&["/entry"]), Some(&["--flag"]), None, &["x"], Some(&["/entry", "x"])),
        (Some(&["/entry"]), Some(&["--flag"]), Some(&["/other"]), &[], Some(&["/other"])),
        (Some(&["/entry"]), Some(&["--flag"]), Some(&["/other"]), &["y"], Some(&["/other", "y"])),
        (Some(&["/entry"]), Some(&["--flag"]), Some(&[""]), &["ls"], Some(&["ls"])),
        (Some(&["/entry"]), Some(&["--flag"]), Some(&[]), &["ls"], Some(&["ls"])),
        (Some(&["/entry"]), Some(&["--flag"]), Some(&[""]), &[], None),
        (None, None, None, &[], None),
        (Some(&[]), Some(&[]), None, &[], None),
    ];
    for (index, (image_entrypoint, image_cmd, flag, run_args, expected)) in cases.iter().enumerate() {
        let image_entrypoint = image_entrypoint.map(strings);
        let image_cmd = image_cmd.map(strings);
        let flag = flag.map(strings);
        let result = resolve_process_args(
            image_entrypoint.as_deref(),
            image_cmd.as_deref(),
            flag.as_deref(),
            &strings(run_args),
        );
        match expected {
            Some(expected) => assert_eq!(result.unwrap(), strings(expected), "case {index}"),
            None => assert!(matches!(result, Err(Error::NoCommand)), "case {index}: {result:?}"),
        }
    }
}

#[test]
fn no_command_error_reads_as_docker_does() {
    let config = image(None, None, &[], None, None);
    let root = rootfs();
    let error = build_spec(&config, &options(), root.path(), &etc_files()).unwrap_err();
    assert!(error.to_string().contains("no command specified"), "{error}");
}

#[test]
fn env_overlays_image_with_run_flags_and_adds_defaults() {
    let config = image(None, Some(&["sh"]), &["A=image", "B=keep", "PATH=/image/bin"], None, None);
    let opts = RunOptions {
        env: strings(&["A=flag", "C=new", "UNRESOLVED"]),
        hostname: Some("box".into()),
        ..options()
    };
    let env = env_of(&build(&config, &opts));
    assert_eq!(env, strings(&["HOSTNAME=box", "A=flag", "B=keep", "PATH=/image/bin", "C=new"]));

    let config = image(None, Some(&["sh"]), &[], None, None);
    let opts =
        RunOptions { tty: true, hostname: Some("box".into()), env: strings(&["HOSTNAME=mine"]), ..options() };
    let env = env_of(&build(&config, &opts));
    assert_eq!(env, vec![format!("PATH={DEFAULT_PATH}"), "HOSTNAME=mine".into(), "TERM=xterm".into()]);
}

#[test]
fn working_dir_prefers_flag_then_image_then_root() {
    let config = image(None, Some(&["sh"]), &[], Some("/srv"), None);
    assert_eq!(build(&config, &options()).process().as_ref().unwrap().cwd(), Path::new("/srv"));
    let opts = RunOptions { workdir: Some("/tmp".into()), ..options() };
    assert_eq!(build(&config, &opts).process().as_ref().unwrap().cwd(), Path::new("/tmp"));
    let config = image(None, Some(&["sh"]), &[], None, None);
    assert_eq!(build(&config, &options()).process().as_ref().unwrap().cwd(), Path::new("/"));
    let opts = RunOptions { workdir: Some("relative".into()), ..options() };
    let root = rootfs();
    assert!(matches!(
        build_spec(&config, &opts, root.path(), &etc_files()),
        Err(Error::InvalidOption { option: "--workdir", .. })
    ));
}

#[test]
fn user_comes_from_flag_or_image_and_resolves_names() {
    let config = image(None, Some(&["sh"]), &[], None, Some("app"));
    let spec = build(&config, &options());
    let user = spec.process().as_ref().unwrap().user();
    assert_eq!((user.uid(), user.gid()), (1000, 1000));
    assert_eq!(user.additional_gids().as_deref(), Some(&[44][..]));
    // A non-root user keeps no ambient capabilities; root has them, as in runc's default spec.
    let capabilities = spec.process().as_ref().unwrap().capabilities().clone().unwrap();
    assert!(capabilities.ambient().as_ref().unwrap().is_empty());
    assert!(capabilities.bounding().as_ref().unwrap().contains(&Capability::NetBindService));

    let opts = RunOptions { user: Some("0:44".into()), ..options() };
    let spec = build(&config, &opts);
    let user = spec.process().as_ref().unwrap().user();
    assert_eq!((user.uid(), user.gid()), (0, 44));
    assert!(
        spec.process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .ambient()
            .as_ref()
            .unwrap()
            .contains(&Capability::Kill)
    );

    let opts = RunOptions { user: Some("ghost".into()), ..options() };
    let root = rootfs();
    let error = build_spec(&config, &opts, root.path(), &etc_files()).unwrap_err();
    assert!(error.to_string().contains("ghost"), "{error}");
}

#[test]
fn default_capabilities_are_dockers_fourteen() {
    let spec = build(&image(None, Some(&["sh"]), &[], None, None), &options());
    let capabilities = spec.process().as_ref().unwrap().capabilities().clone().unwrap();
    for set in [capabilities.bounding(), capabilities.effective(), capabilities.permitted()] {
        let set = set.as_ref().unwrap();
        assert_eq!(set.len(), 14);
        assert!(set.contains(&Capability::Chown) && set.contains(&Capability::AuditWrite));
        assert!(!set.contains(&Capability::SysAdmin));
    }
    assert!(capabilities.inheritable().as_ref().unwrap().is_empty());
    assert_eq!(spec.process().as_ref().unwrap().no_new_privileges(), Some(false));
}

#[test]
fn read_only_sets_the_root_readonly() {
    let config = image(None, Some(&["sh"]), &[], None, None);
    assert_eq!(build(&config, &options()).root().as_ref().unwrap().readonly(), Some(false));
    let opts = RunOptions { read_only: true, ..options() };
    let spec = build(&config, &opts);
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
}

#[test]
fn network_none_gets_a_namespace_and_host_does_not() {
    let config = image(None, Some(&["sh"]), &[], None, None);
    let none = namespaces_of(&build(&config, &RunOptions { network: Network::None, ..options() }));
    assert!(none.contains(&LinuxNamespaceType::Network));
    for expected in
        [LinuxNamespaceType::Pid, LinuxNamespaceType::Ipc, LinuxNamespaceType::Uts, LinuxNamespaceType::Mount]
    {
        assert!(none.contains(&expected));
    }
    let host = namespaces_of(&build(&config, &RunOptions { network: Network::Host, ..options() }));
    assert!(!host.contains(&LinuxNamespaceType::Network));
}

#[test]
fn cgroup_namespace_only_on_pure_v2() {
    let config = image(None, Some(&["sh"]), &[], None, None);
    for (mode, expected) in [(CgroupMode::V1, false), (CgroupMode::Hybrid, false), (CgroupMode::V2, true)] {
        let namespaces = namespaces_of(&build(&config, &RunOptions { cgroup_mode: Some(mode), ..options() }));
        assert_eq!(namespaces.contains(&LinuxNamespaceType::Cgroup), expected, "{mode}");
    }
}

#[test]
fn resources_map_memory_cpus_and_pids() {
    let config = image(None, Some(&["sh"]), &[], None, None);
    let opts = RunOptions {
        memory: Some(32 << 20),
        cpus: Some(1.5),
        pids_limit: Some(10),
        container_id: Some("abc123".into()),
        ..options()
    };
    let spec = build(&config, &opts);
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(linux.cgroups_path().as_deref(), Some(Path::new("/berth/abc123")));
    let resources = linux.resources().as_ref().unwrap();
    let memory = resources.memory().unwrap();
    assert_eq!((memory.limit(), memory.swap()), (Some(32 << 20), Some(32 << 20)));
    let cpu = resources.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(150_000), Some(100_000)));
    assert_eq!(resources.pids().unwrap().limit(), 10);
    let devices = resources.devices().as_ref().unwrap();
    assert!(!devices[0].allow() && devices[0].access().as_deref() == Some("rwm"));
    // The id also gives the default hostname.
    assert_eq!(spec.hostname().as_deref(), Some("abc123"));

    let unlimited = build(&config, &RunOptions { pids_limit: Some(-1), ..options() });
    assert!(unlimited.linux().as_ref().unwrap().resources().as_ref().unwrap().pids().is_none());
    let root = rootfs();
    for bad in [
        RunOptions { memory: Some(1024), ..options() },
        RunOptions { cpus: Some(0.0), ..options() },
        RunOptions { cpus: Some(f64::NAN), ..options() },
    ] {
        assert!(matches!(
            build_spec(&config, &bad, root.path(), &etc_files()),
            Err(Error::InvalidOption { .. })
        ));
    }
}

#[test]
fn nofile_never_exceeds_the_callers_hard_limit() {
    assert_eq!(nofile_limit(Some(20_000)), 1024);
    assert_eq!(nofile_limit(Some(512)), 512);
    assert_eq!(nofile_limit(None), 1024);
    let spec = build(&image(None, Some(&["sh"]), &[], None, None), &options());
    let rlimits = spec.process().as_ref().unwrap().rlimits().clone().unwrap();
    assert_eq!(rlimits[0].typ(), oci_spec::runtime::PosixRlimitType::RlimitNofile);
    assert!(rlimits[0].hard() <= 1024 && rlimits[0].soft() == rlimits[0].hard());
}

#[test]
fn spec_carries_masks_seccomp_and_tty() {
    let config = image(None, Some(&["sh"]), &[], None, None);
    let spec = build(&config, &RunOptions { tty: true, ..options() });
    assert_eq!(spec.process().as_ref().unwrap().terminal(), Some(true));
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.masked_paths().as_ref().unwrap().iter().any(|path| path == "/proc/kcore"));
    assert!(linux.readonly_paths().as_ref().unwrap().iter().any(|path| path == "/proc/sys"));
    assert!(linux.seccomp().is_some());
    let unconfined = build(&config, &RunOptions { seccomp_unconfined: true, ..options() });
    assert!(unconfined.linux().as_ref().unwrap().seccomp().is_none());
    // The spec must serialize as runc expects to read it.
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["process"]["terminal"], serde_json::json!(true));
    assert!(json["root"]["path"].as_str().is_some_and(|path| PathBuf::from(path).is_absolute()));
}

#[test]
fn exec_process_keeps_the_containers_settings() {
    let config = image(None, Some(&["sh"]), &["A=1"], Some("/srv"), Some("app"));
    let spec = build(&config, &RunOptions { tty: true, ..options() });
    let process = exec_process(&spec, &strings(&["ls", "-l"]), false).unwrap();
    assert_eq!(process.args().as_deref(), Some(&strings(&["ls", "-l"])[..]));
    assert_eq!(process.terminal(), Some(false));
    assert_eq!(process.user().uid(), 1000);
    assert_eq!(process.cwd(), Path::new("/srv"));
    let env = process.env().clone().unwrap();
    assert!(env.contains(&"A=1".to_string()) && !env.iter().any(|entry| entry.starts_with("TERM=")));
    assert!(matches!(exec_process(&spec, &[], false), Err(Error::NoCommand)));
}

#[test]
fn swap_is_left_out_without_swap_accounting() {
    let opts = RunOptions { memory: Some(64 << 20), ..options() };
    let with_swap = resources(&opts, true).unwrap();
    assert_eq!(with_swap.memory().unwrap().swap(), Some(64 << 20));
    let without = resources(&opts, false).unwrap();
    assert_eq!((without.memory().unwrap().limit(), without.memory().unwrap().swap()), (Some(64 << 20), None));
}
