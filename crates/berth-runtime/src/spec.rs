//! `build_spec`: the OCI runtime spec (config.json, runtime-spec `config.md` and `config-linux.md`) for one
//! container, from the image configuration and the resolved run options. The defaults copy what Docker
//! gives an unprivileged container — its capability list, masked and read-only /proc paths, device rules,
//! mounts — because images are written against that environment.

use std::path::Path;

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::cgroup::{CgroupMode, detect_cgroup_mode, memory_swap_supported};
use crate::error::Error;
use crate::mounts::container_mounts;
use crate::options::{Network, RunOptions};
use crate::user::resolve_user;

/// The PATH a container gets when neither the image nor `-e` sets one (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set for containers (moby `oci/caps/defaults.go`).
const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths hidden from the container (Docker's defaults; runtime-spec `maskedPaths`).
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container may read but not write (Docker's defaults; runtime-spec `readonlyPaths`).
const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The soft and hard RLIMIT_NOFILE a container gets, lowered to berth's own hard limit when that is
/// smaller: without CAP_SYS_RESOURCE in the caller, asking for more makes the runtime fail.
const NOFILE_LIMIT: u64 = 1024;

/// The CFS period `--cpus` is expressed over (100 ms, as Docker).
const CPU_PERIOD: u64 = 100_000;

/// Docker's smallest accepted `--memory`; below this the container cannot even start its runtime init.
const MINIMUM_MEMORY: i64 = 6 * 1024 * 1024;

/// Builds the runtime spec. `rootfs` is the mounted root filesystem (read for /etc/passwd and /etc/group
/// only); it is written into the spec as given, so pass the path the runtime should use (often
/// `<bundle>/rootfs`, or just "rootfs" relative to the bundle).
pub fn build_spec(
    config: &ImageConfiguration,
    opts: &RunOptions,
    rootfs: &Path,
    etc_files: &crate::EtcFiles,
) -> Result<Spec, Error> {
    let image = config.config().clone().unwrap_or_default();
    let spec_error = |part: &'static str| {
        move |error: oci_spec::OciSpecError| Error::SpecBuild { part, reason: error.to_string() }
    };

    let args = resolve_process_args(
        image.entrypoint().as_deref(),
        image.cmd().as_deref(),
        opts.entrypoint.as_deref(),
        &opts.cmd,
    )?;
    let hostname = container_hostname(opts);
    let env = build_env(image.env().as_deref().unwrap_or_default(), &opts.env, &hostname, opts.tty);
    let cwd = working_dir(opts.workdir.as_deref(), image.working_dir().as_deref())?;

    let user_spec = opts.user.as_deref().or(image.user().as_deref());
    let resolved = resolve_user(rootfs, user_spec)?;
    let mut user = UserBuilder::default().uid(resolved.uid).gid(resolved.gid);
    if !resolved.additional_gids.is_empty() {
        user = user.additional_gids(resolved.additional_gids.clone());
    }
    let user = user.build().map_err(spec_error("user"))?;

    let default_capabilities: Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(default_capabilities.clone())
        .effective(default_capabilities.clone())
        .permitted(default_capabilities.clone())
        .inheritable(Capabilities::new());
    // As runc's default spec: ambient capabilities only for root. A non-root process keeps none across
    // exec, which is what Docker gives a `-u 1000` container.
    capabilities =
        capabilities.ambient(if resolved.uid == 0 { default_capabilities } else { Capabilities::new() });
    let capabilities = capabilities.build().map_err(spec_error("capabilities"))?;

    let nofile = nofile_limit(rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum);
    let rlimit = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(nofile)
        .hard(nofile)
        .build()
        .map_err(spec_error("rlimits"))?;

    let process = ProcessBuilder::default()
        .terminal(opts.tty)
        .user(user)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        .rlimits(vec![rlimit])
        .no_new_privileges(false)
        .build()
        .map_err(spec_error("process"))?;

    let cgroup_mode = opts.cgroup_mode.unwrap_or_else(detect_cgroup_mode);
    let mut namespace_types = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if opts.network == Network::None {
        namespace_types.push(LinuxNamespaceType::Network);
    }
    // Docker's rule: a private cgroup namespace only where the host is pure v2; on v1 and hybrid hosts the
    // container sees the host's cgroup paths (read-only).
    if cgroup_mode == CgroupMode::V2 {
        namespace_types.push(LinuxNamespaceType::Cgroup);
    }
    let namespaces = namespace_types
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(spec_error("namespaces"))?;

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources(opts, memory_swap_supported(cgroup_mode))?)
        .masked_paths(MASKED_PATHS.iter().map(|path| path.to_string()).collect::<Vec<_>>())
        .readonly_paths(READONLY_PATHS.iter().map(|path| path.to_string()).collect::<Vec<_>>());
    if !opts.seccomp_unconfined {
        linux = linux.seccomp(crate::seccomp::default_profile()?);
    }
    let linux = linux.build().map_err(spec_error("linux"))?;

    let root =
        RootBuilder::default().path(rootfs).readonly(opts.read_only).build().map_err(spec_error("root"))?;

    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .root(root)
        .hostname(hostname)
        .process(process)
        .mounts(container_mounts(&opts.mounts, etc_files)?)
        .linux(linux)
        .build()
        .map_err(spec_error("spec"))?;
    if let (Some(id), Some(linux)) = (&opts.container_id, spec.linux_mut()) {
        linux.set_cgroups_path(Some(cgroups_path(id).into()));
    }
    Ok(spec)
}

/// The process for `berth exec`: the container's own process settings (user, environment, capabilities,
/// rlimits, working directory) with `args` and the terminal replaced, as `docker exec` does. Serialize it
/// with serde_json to the file [`crate::Runtime::exec`] takes.
pub fn exec_process(container: &Spec, args: &[String], tty: bool) -> Result<Process, Error> {
    if args.is_empty() {
        return Err(Error::NoCommand);
    }
    let mut process = container.process().clone().ok_or(Error::SpecBuild {
        part: "process",
        reason: "the container's spec has no process to copy settings from".into(),
    })?;
    process.set_args(Some(args.to_vec()));
    process.set_terminal(Some(tty));
    let mut env = process.env().clone().unwrap_or_default();
    env.retain(|entry| !entry.starts_with("TERM="));
    if tty {
        env.push("TERM=xterm".to_string());
    }
    process.set_env(Some(env));
    Ok(process)
}

/// Docker's command rules: the entrypoint is `--entrypoint` when given (an empty one clears the image's),
/// else the image's Entrypoint; the command is the run arguments when given, else the image's Cmd — unless
/// `--entrypoint` was given, which drops the image's Cmd. The process runs entrypoint followed by command.
pub fn resolve_process_args(
    image_entrypoint: Option<&[String]>,
    image_cmd: Option<&[String]>,
    entrypoint_flag: Option<&[String]>,
    run_args: &[String],
) -> Result<Vec<String>, Error> {
    let entrypoint = match entrypoint_flag {
        Some(flag) => flag.iter().filter(|part| !part.is_empty()).cloned().collect::<Vec<_>>(),
        None => image_entrypoint.unwrap_or_default().to_vec(),
    };
    let command = if !run_args.is_empty() {
        run_args.to_vec()
    } else if entrypoint_flag.is_some() {
        Vec::new()
    } else {
        image_cmd.unwrap_or_default().to_vec()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(command).collect();
    if args.is_empty() { Err(Error::NoCommand) } else { Ok(args) }
}

/// The container environment: HOSTNAME (and TERM=xterm with a tty) first, then the image's Env, then `-e`;
/// a later entry with the same key replaces the earlier value in place. PATH is added if still missing.
/// `-e` entries without '=' are skipped: the caller resolves `-e KEY` from its own environment and leaves
/// it out when KEY is unset, as Docker does.
fn build_env(image_env: &[String], run_env: &[String], hostname: &str, tty: bool) -> Vec<String> {
    let mut env: Vec<String> = vec![format!("HOSTNAME={hostname}")];
    if tty {
        env.push("TERM=xterm".to_string());
    }
    let run_env = run_env.iter().filter(|entry| entry.contains('='));
    for entry in image_env.iter().chain(run_env) {
        let key = entry.split_once('=').map_or(entry.as_str(), |(key, _)| key);
        match env.iter_mut().find(|existing| {
            existing.split_once('=').map_or(existing.as_str(), |(existing_key, _)| existing_key) == key
        }) {
            Some(existing) => *existing = entry.clone(),
            None => env.push(entry.clone()),
        }
    }
    if !env.iter().any(|entry| entry.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    env
}

/// `-w` must be absolute (Docker refuses a relative one); the image's WorkingDir is taken relative to /.
fn working_dir(flag: Option<&str>, image: Option<&str>) -> Result<String, Error> {
    match (flag, image) {
        (Some(flag), _) if !flag.is_empty() => {
            if flag.starts_with('/') {
                Ok(flag.to_string())
            } else {
                Err(Error::InvalidOption {
                    option: "--workdir",
                    value: flag.to_string(),
                    reason: "the working directory must be an absolute path".into(),
                })
            }
        }
        (_, Some(image)) if !image.is_empty() => {
            Ok(if image.starts_with('/') { image.to_string() } else { format!("/{image}") })
        }
        _ => Ok("/".to_string()),
    }
}

/// Where a container's cgroups live under each controller (runc creates the directories).
pub fn cgroups_path(container_id: &str) -> String {
    format!("/berth/{container_id}")
}

/// `--hostname`, else the host's name with `--network host`, else the first 12 characters of the container
/// id (Docker's choice), else "localhost".
fn container_hostname(opts: &RunOptions) -> String {
    match (&opts.hostname, opts.network, &opts.container_id) {
        (Some(hostname), _, _) if !hostname.is_empty() => hostname.clone(),
        (_, Network::Host, _) => rustix::system::uname().nodename().to_string_lossy().into_owned(),
        (_, _, Some(id)) if !id.is_empty() => id.chars().take(12).collect(),
        _ => "localhost".to_string(),
    }
}

fn nofile_limit(current_hard: Option<u64>) -> u64 {
    current_hard.map_or(NOFILE_LIMIT, |hard| hard.min(NOFILE_LIMIT))
}

/// cgroup limits: all devices denied (runc adds back the standard /dev nodes), memory with swap held to
/// the same value (when the host accounts swap; otherwise the limit alone, as Docker does with a warning),
/// CPU quota over a 100 ms period, pids.
fn resources(opts: &RunOptions, swap_supported: bool) -> Result<oci_spec::runtime::LinuxResources, Error> {
    let spec_error =
        |error: oci_spec::OciSpecError| Error::SpecBuild { part: "resources", reason: error.to_string() };
    let deny_all =
        LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build().map_err(spec_error)?;
    let mut builder = LinuxResourcesBuilder::default().devices(vec![deny_all]);
    if let Some(memory) = opts.memory {
        if memory < MINIMUM_MEMORY {
            return Err(Error::InvalidOption {
                option: "--memory",
                value: memory.to_string(),
                reason: "the minimum memory limit is 6 MiB".into(),
            });
        }
        let mut memory_builder = LinuxMemoryBuilder::default().limit(memory);
        if swap_supported {
            memory_builder = memory_builder.swap(memory);
        }
        builder = builder.memory(memory_builder.build().map_err(spec_error)?);
    }
    if let Some(cpus) = opts.cpus {
        if !cpus.is_finite() || cpus <= 0.0 {
            return Err(Error::InvalidOption {
                option: "--cpus",
                value: cpus.to_string(),
                reason: "must be a positive number".into(),
            });
        }
        // The kernel refuses quotas under 1 ms.
        let quota = ((cpus * CPU_PERIOD as f64).round() as i64).max(1000);
        builder = builder
            .cpu(LinuxCpuBuilder::default().quota(quota).period(CPU_PERIOD).build().map_err(spec_error)?);
    }
    if let Some(limit) = opts.pids_limit.filter(|limit| *limit > 0) {
        builder = builder.pids(LinuxPidsBuilder::default().limit(limit).build().map_err(spec_error)?);
    }
    builder.build().map_err(spec_error)
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
