//! Real containers through runc, as root: a busybox rootfs in a temp dir, config.json from `build_spec`,
//! and `OciRuntime`. Each test has its own state root and container id and force-deletes the container
//! when it ends, pass or fail. Skipped (with a message) when not root or runc is missing.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_runtime::{
    BindMount, ContainerStatus, Error, Network, OciRuntime, RunOptions, Runtime, Stdio, exec_process,
    mount_overlay, mount_read_only_layers, unmount,
};
use common::populate_rootfs;

const RUNC: &str = "/usr/bin/runc";
fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    let runc = Path::new(RUNC).exists() && Path::new("/bin/busybox").exists();
    if !root || !runc {
        eprintln!("skipping: needs root, {RUNC} and /bin/busybox");
    }
    root && runc
}

/// This backend's container: bundle, state root and id, force-deleted on drop.
type Container = common::Container<OciRuntime>;

fn new_container(name: &str) -> Container {
    Container::new(name, "rt", |state| OciRuntime::new(RUNC, state))
}

fn busybox_container(name: &str) -> Container {
    let container = new_container(name);
    populate_rootfs(&container.rootfs);
    container
}

#[test]
fn echo_prints_to_the_captured_stdout() {
    if !can_run() {
        return;
    }
    let container = busybox_container("echo");
    let (result, stdout, stderr) = container.run(&["echo", "hello"], RunOptions::default());
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    assert_eq!(stdout, "hello\n");
    // runc removes a container it ran in the foreground; state then knows nothing of it.
    assert!(container.runtime.state(&container.id).unwrap().is_none());
}

#[test]
fn exit_status_is_the_containers() {
    if !can_run() {
        return;
    }
    let container = busybox_container("exit3");
    let (result, _, stderr) = container.run(&["sh", "-c", "exit 3"], RunOptions::default());
    assert_eq!(result.unwrap(), 3, "stderr: {stderr}");
}

#[test]
fn missing_command_is_the_127_error() {
    if !can_run() {
        return;
    }
    let container = busybox_container("missing");
    let (result, _, _) = container.run(&["no-such-command"], RunOptions::default());
    let error = result.unwrap_err();
    assert!(matches!(error, Error::ExecutableNotFound { .. }), "{error:?}");
    assert_eq!(error.container_start_exit_code(), Some(127));
    assert!(error.to_string().contains("no-such-command"), "{error}");
}

#[test]
fn non_executable_file_is_the_126_error() {
    if !can_run() {
        return;
    }
    let container = busybox_container("noexec");
    let (result, _, _) = container.run(&["/etc/passwd"], RunOptions::default());
    let error = result.unwrap_err();
    assert!(matches!(error, Error::PermissionDenied { .. }), "{error:?}");
    assert_eq!(error.container_start_exit_code(), Some(126));
}

#[test]
fn user_flag_sets_the_uid() {
    if !can_run() {
        return;
    }
    let container = busybox_container("user");
    let opts = RunOptions { user: Some("1000".into()), ..RunOptions::default() };
    let (result, stdout, stderr) = container.run(&["sh", "-c", "id -u; id -g"], opts);
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    assert_eq!(stdout, "1000\n1000\n");
}

#[test]
fn read_only_root_refuses_writes() {
    if !can_run() {
        return;
    }
    let container = busybox_container("readonly");
    let opts = RunOptions { read_only: true, ..RunOptions::default() };
    let (result, _, stderr) = container.run(&["touch", "/written"], opts);
    assert_ne!(result.unwrap(), 0);
    assert!(stderr.contains("Read-only file system"), "stderr: {stderr}");
    assert!(!container.rootfs.join("written").exists());

    let container = busybox_container("writable");
    let (result, _, stderr) = container.run(&["touch", "/written"], RunOptions::default());
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    assert!(container.rootfs.join("written").exists());
}

#[test]
fn memory_limit_kills_a_process_that_exceeds_it() {
    if !can_run() {
        return;
    }
    let container = busybox_container("memory");
    let opts = RunOptions { memory: Some(32 << 20), ..RunOptions::default() };
    // tail keeps the whole newline-free stream in memory: about 200 MB against a 32 MiB limit.
    let (result, _, stderr) = container.run(&["sh", "-c", "head -c 200000000 /dev/zero | tail"], opts);
    assert_eq!(result.unwrap(), 137, "stderr: {stderr}");
}

#[test]
fn pids_limit_stops_forks() {
    if !can_run() {
        return;
    }
    let script = "n=0; for i in $(seq 50); do sleep 2 & n=$((n+1)); done; echo started; wait";
    let container = busybox_container("pids");
    let opts = RunOptions { pids_limit: Some(10), ..RunOptions::default() };
    let (result, stdout, stderr) = container.run(&["sh", "-c", script], opts);
    let _ = result.unwrap();
    assert!(
        stderr.contains("can't fork") || stderr.contains("Resource temporarily unavailable"),
        "stdout: {stdout} stderr: {stderr}"
    );

    let container = busybox_container("pids-unlimited");
    let (result, stdout, stderr) = container.run(&["sh", "-c", script], RunOptions::default());
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    assert_eq!(stdout, "started\n");
}

#[test]
fn bind_mounts_and_network_host_reach_the_container() {
    if !can_run() {
        return;
    }
    let container = busybox_container("bind");
    let shared = container.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("note"), "from the host\n").unwrap();
    let opts = RunOptions {
        mounts: vec![BindMount { source: shared.clone(), destination: "/data".into(), read_only: true }],
        network: Network::Host,
        ..RunOptions::default()
    };
    let (result, stdout, stderr) =
        container.run(&["sh", "-c", "cat /data/note; touch /data/x || echo refused; cat /etc/hosts"], opts);
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    assert_eq!(stdout, "from the host\nrefused\n127.0.0.1 localhost\n");
}

#[test]
fn state_kill_and_exec_address_a_running_container() {
    if !can_run() {
        return;
    }
    let container = busybox_container("lifecycle");
    container.write_spec(&["sleep", "60"], RunOptions::default());
    let runtime = container.runtime.clone();
    let (id, bundle) = (container.id.clone(), container.bundle());
    let runner = std::thread::spawn(move || runtime.run(&id, &bundle, Stdio::null()));

    let started = Instant::now();
    let state = loop {
        if let Some(state) = container.runtime.state(&container.id).unwrap()
            && state.status == ContainerStatus::Running
        {
            break state;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "container never reached running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(state.pid.is_some_and(|pid| pid > 1));
    assert_eq!(state.bundle, container.bundle());

    let spec = oci_spec::runtime::Spec::load(container.bundle().join("config.json")).unwrap();
    let process = container.dir.path().join("process.json");
    let args = ["sh", "-c", "echo exec-ok; exit 5"].map(String::from);
    std::fs::write(&process, serde_json::to_vec(&exec_process(&spec, &args, false).unwrap()).unwrap())
        .unwrap();
    let output = container.dir.path().join("exec-out");
    let stdio = Stdio::files(
        None,
        File::create(&output).unwrap(),
        File::create(container.dir.path().join("exec-err")).unwrap(),
    );
    assert_eq!(container.runtime.exec(&container.id, &process, false, stdio).unwrap(), 5);
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "exec-ok\n");

    // With a terminal and no controlling terminal of ours, exec goes through the console socket.
    let args = ["sh", "-c", "tty; exit 6"].map(String::from);
    std::fs::write(&process, serde_json::to_vec(&exec_process(&spec, &args, true).unwrap()).unwrap())
        .unwrap();
    let stdio = Stdio::files(
        None,
        File::create(&output).unwrap(),
        File::create(container.dir.path().join("exec-err")).unwrap(),
    );
    assert_eq!(container.runtime.exec(&container.id, &process, true, stdio).unwrap(), 6);
    assert!(std::fs::read_to_string(&output).unwrap().starts_with("/dev/pts/"));

    container.runtime.kill(&container.id, 9).unwrap();
    assert_eq!(runner.join().unwrap().unwrap(), 137);
}

#[test]
fn tty_runs_through_the_console_socket() {
    if !can_run() {
        return;
    }
    let container = busybox_container("tty");
    let opts = RunOptions { tty: true, ..RunOptions::default() };
    let (result, stdout, stderr) = container.run(&["sh", "-c", "tty; echo $TERM"], opts);
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    // The pty turns "\n" into "\r\n".
    assert_eq!(stdout, "/dev/pts/0\r\nxterm\r\n");
    // The detached tty run removes the container afterwards, as a foreground run does.
    assert!(container.runtime.state(&container.id).unwrap().is_none());

    let container = busybox_container("tty-exit");
    let opts = RunOptions { tty: true, ..RunOptions::default() };
    let (result, _, stderr) = container.run(&["sh", "-c", "exit 4"], opts.clone());
    assert_eq!(result.unwrap(), 4, "stderr: {stderr}");
    let (result, _, _) = container.run(&["no-such-command"], opts);
    assert!(matches!(result, Err(Error::ExecutableNotFound { .. })), "{result:?}");
}

#[test]
fn overlay_rootfs_runs_a_container_and_keeps_writes_in_upper() {
    if !can_run() {
        return;
    }
    let container = new_container("overlay");
    let layers = container.dir.path().join("layers");
    let base = layers.join("base");
    let top = layers.join("top");
    populate_rootfs(&base);
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(base.join("etc/motd"), "base\n").unwrap();
    std::fs::write(top.join("etc/motd"), "top\n").unwrap();
    let upper = container.dir.path().join("upper");
    let work = container.dir.path().join("work");
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    mount_overlay(&[base.clone(), top], &upper, &work, &container.rootfs).unwrap();

    let (result, stdout, stderr) =
        container.run(&["sh", "-c", "cat /etc/motd; echo new > /etc/motd"], RunOptions::default());
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    assert_eq!(stdout, "top\n");
    assert_eq!(std::fs::read_to_string(upper.join("etc/motd")).unwrap(), "new\n");
    assert_eq!(std::fs::read_to_string(base.join("etc/motd")).unwrap(), "base\n");
    unmount(&container.rootfs).unwrap();
    assert!(!container.rootfs.join("bin").exists());
    // A second unmount finds nothing mounted and is fine.
    unmount(&container.rootfs).unwrap();
}

#[test]
fn many_long_layer_paths_mount_past_the_page_limit() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layers = dir.path().join("layers");
    // 60 layers of 64-character names: about 4 KiB of lowerdir with absolute paths.
    let lowers: Vec<PathBuf> = (0..60).map(|index| layers.join(format!("{index:064}"))).collect();
    for (index, lower) in lowers.iter().enumerate() {
        std::fs::create_dir_all(lower).unwrap();
        std::fs::write(lower.join(format!("file{index}")), "x").unwrap();
        std::fs::write(lower.join("which"), index.to_string()).unwrap();
    }
    let (upper, work, target) =
        (dir.path().join("upper"), dir.path().join("work"), dir.path().join("merged"));
    for path in [&upper, &work, &target] {
        std::fs::create_dir(path).unwrap();
    }
    let absolute_length: usize = lowers.iter().map(|lower| lower.as_os_str().len() + 1).sum();
    assert!(absolute_length > 4096, "test layers too short: {absolute_length}");
    let cwd_before = std::env::current_dir().unwrap();
    mount_overlay(&lowers, &upper, &work, &target).unwrap();
    let merged_top = std::fs::read_to_string(target.join("which"));
    let has_base = target.join("file0").exists();
    unmount(&target).unwrap();
    assert_eq!(merged_top.unwrap(), "59", "the last layer must be on top");
    assert!(has_base);
    assert_eq!(std::env::current_dir().unwrap(), cwd_before, "the process cwd must not move");
}

#[test]
fn read_only_layers_without_upper() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (one, two, target) = (dir.path().join("one"), dir.path().join("two"), dir.path().join("merged"));
    for path in [&one, &two, &target] {
        std::fs::create_dir(path).unwrap();
    }
    std::fs::write(one.join("a"), "1").unwrap();
    std::fs::write(two.join("b"), "2").unwrap();

    mount_read_only_layers(std::slice::from_ref(&one), &target).unwrap();
    let single = (target.join("a").exists(), std::fs::write(target.join("new"), "x"));
    unmount(&target).unwrap();
    assert!(single.0);
    assert_eq!(single.1.unwrap_err().raw_os_error(), Some(libc::EROFS));

    mount_read_only_layers(&[one, two], &target).unwrap();
    let stacked =
        (target.join("a").exists(), target.join("b").exists(), std::fs::write(target.join("new"), "x"));
    unmount(&target).unwrap();
    assert!(stacked.0 && stacked.1);
    assert!(stacked.2.is_err());
}

#[test]
fn default_capabilities_and_seccomp_are_in_force() {
    if !can_run() {
        return;
    }
    let container = busybox_container("caps");
    let (result, stdout, stderr) = container.run(
        &["sh", "-c", "grep CapEff /proc/self/status; unshare -U true || echo unshare-refused"],
        RunOptions::default(),
    );
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    // Docker's fourteen default capabilities.
    assert!(stdout.contains("CapEff:\t00000000a80425fb"), "stdout: {stdout}");
    // Creating a user namespace needs no capability: only the seccomp profile refuses it.
    assert!(stdout.contains("unshare-refused"), "stdout: {stdout}");
    let container = busybox_container("unconfined");
    let opts = RunOptions { seccomp_unconfined: true, ..RunOptions::default() };
    let (result, stdout, stderr) =
        container.run(&["sh", "-c", "unshare -U true && echo unshare-allowed"], opts);
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    assert_eq!(stdout, "unshare-allowed\n");

    let container = busybox_container("caps-user");
    let opts = RunOptions { user: Some("1000".into()), ..RunOptions::default() };
    let (result, stdout, stderr) = container.run(&["grep", "CapEff", "/proc/self/status"], opts);
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    assert_eq!(stdout, "CapEff:\t0000000000000000\n");
}

#[test]
fn foreground_tty_lends_the_callers_terminal_to_runc() {
    // Only meaningful with a controlling terminal (run under `script` to exercise it).
    if !can_run() || std::fs::File::open("/dev/tty").is_err() {
        eprintln!("skipping: no controlling terminal");
        return;
    }
    let container = busybox_container("tty-foreground");
    container.write_spec(&["sh", "-c", "tty; exit 7"], RunOptions { tty: true, ..RunOptions::default() });
    let result = container.runtime.run(&container.id, &container.bundle(), Stdio::inherit());
    assert_eq!(result.unwrap(), 7);
}
