//! The runtime conformance suite: what every backend must do with a real container, written once and run
//! against each backend. A backend's test file instantiates it with `conformance::suite!(BACKEND)` inside
//! a module named after the backend, so every test name says which backend failed
//! (`embedded::exit_status_is_the_containers`, `runc::exit_status_is_the_containers`).
//!
//! Each case is a plain function taking the [`Backend`]; `suite!` makes one `#[test]` per case and skips
//! (with a message) when the machine cannot run that backend. A case added here and not listed in `suite!`
//! is an unused function, which the lints turn into an error.

mod running;

use std::path::Path;

use berth_runtime::{BindMount, Error, Network, RunOptions, mount_overlay, unmount};

use crate::common::{Backend, Container, populate_rootfs};
pub use running::{
    forced_delete_stops_a_running_container, state_kill_and_exec_address_a_running_container,
    terminal_run_gets_a_pseudo_terminal_and_the_exit_status, terminal_run_relays_the_callers_own_terminal,
};

/// One `#[test]` per conformance case, each running the case against `$backend` (a `Backend` expression).
macro_rules! suite {
    ($backend:expr) => {
        $crate::conformance::suite!(@cases $backend;
            echo_prints_to_the_captured_stdout,
            exit_status_is_the_containers,
            missing_command_is_the_127_error,
            non_executable_file_is_the_126_error,
            user_flag_sets_the_uid,
            read_only_root_refuses_writes,
            bind_mounts_and_network_host_reach_the_container,
            read_only_root_bind_mounts_and_network_host,
            memory_limit_kills_a_process_that_exceeds_it,
            pids_limit_stops_forks,
            default_capabilities_and_seccomp_are_in_force,
            overlay_rootfs_runs_a_container_and_keeps_writes_in_upper,
            state_kill_and_exec_address_a_running_container,
            forced_delete_stops_a_running_container,
            terminal_run_gets_a_pseudo_terminal_and_the_exit_status,
            terminal_run_relays_the_callers_own_terminal,
        );
    };
    (@cases $backend:expr; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                let backend = &$backend;
                if backend.available() {
                    $crate::conformance::$case(backend);
                }
            }
        )+
    };
}
pub(crate) use suite;

pub fn echo_prints_to_the_captured_stdout(backend: &Backend) {
    let container = Container::busybox("echo", backend);
    let (result, stdout, stderr) = container.run(&["echo", "hello"], RunOptions::default());
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    assert_eq!(stdout, "hello\n");
    // A foreground run removes the container afterwards, as runc does: state knows nothing of it.
    assert!(container.runtime.state(&container.id).unwrap().is_none());
    assert!(!container.state_dir().exists());
}

pub fn exit_status_is_the_containers(backend: &Backend) {
    let container = Container::busybox("exit3", backend);
    let (result, _, stderr) = container.run(&["sh", "-c", "exit 3"], RunOptions::default());
    assert_eq!(result.unwrap(), 3, "stderr: {stderr}");
}

pub fn missing_command_is_the_127_error(backend: &Backend) {
    let container = Container::busybox("missing", backend);
    let (result, _, _) = container.run(&["no-such-command"], RunOptions::default());
    let error = result.unwrap_err();
    assert!(matches!(error, Error::ExecutableNotFound { .. }), "{error:?}");
    assert_eq!(error.container_start_exit_code(), Some(127));
    assert!(error.to_string().contains("no-such-command"), "{error}");
    // The failed start leaves nothing behind: no state, no cgroup.
    assert!(container.runtime.state(&container.id).unwrap().is_none());
    assert!(!container.state_dir().exists());
    for hierarchy in ["memory", "pids", "cpu", "unified"] {
        let cgroup = Path::new("/sys/fs/cgroup").join(hierarchy).join("berth").join(&container.id);
        assert!(!cgroup.exists(), "{} left behind", cgroup.display());
    }
}

pub fn non_executable_file_is_the_126_error(backend: &Backend) {
    let container = Container::busybox("noexec", backend);
    let (result, _, _) = container.run(&["/etc/passwd"], RunOptions::default());
    let error = result.unwrap_err();
    assert!(matches!(error, Error::PermissionDenied { .. }), "{error:?}");
    assert_eq!(error.container_start_exit_code(), Some(126));
}

/// Runs `args` in a fresh busybox container named after `name`, asserts that it exited 0, and returns
/// what it printed.
fn stdout_of_success(backend: &Backend, name: &str, args: &[&str], options: RunOptions) -> String {
    let container = Container::busybox(name, backend);
    let (result, stdout, stderr) = container.run(args, options);
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    stdout
}

pub fn user_flag_sets_the_uid(backend: &Backend) {
    let opts = RunOptions { user: Some("1000".into()), ..RunOptions::default() };
    assert_eq!(stdout_of_success(backend, "user", &["sh", "-c", "id -u; id -g"], opts), "1000\n1000\n");
}

pub fn read_only_root_refuses_writes(backend: &Backend) {
    let container = Container::busybox("readonly", backend);
    let opts = RunOptions { read_only: true, ..RunOptions::default() };
    let (result, _, stderr) = container.run(&["touch", "/written"], opts);
    assert_ne!(result.unwrap(), 0);
    assert!(stderr.contains("Read-only file system"), "stderr: {stderr}");
    assert!(!container.rootfs.join("written").exists());

    let container = Container::busybox("writable", backend);
    let (result, _, stderr) = container.run(&["touch", "/written"], RunOptions::default());
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    assert!(container.rootfs.join("written").exists());
}

/// A read-only bind mount of a host directory, seen from a container with a writable root.
pub fn bind_mounts_and_network_host_reach_the_container(backend: &Backend) {
    bind_mount_and_host_network(backend, "bind", false);
}

/// The same bind mount and network with a read-only root: the mounts go in before the root turns
/// read-only, and the root refuses writes of its own.
pub fn read_only_root_bind_mounts_and_network_host(backend: &Backend) {
    bind_mount_and_host_network(backend, "mounts", true);
}

fn bind_mount_and_host_network(backend: &Backend, name: &str, read_only_root: bool) {
    let container = Container::busybox(name, backend);
    let shared = container.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("note"), "from the host\n").unwrap();
    let opts = RunOptions {
        mounts: vec![BindMount { source: shared.clone(), destination: "/data".into(), read_only: true }],
        network: Network::Host,
        read_only: read_only_root,
        ..RunOptions::default()
    };
    let script = "cat /data/note; touch /data/x || echo refused; \
                  touch /new && echo root-written || echo root-refused; cat /etc/hosts";
    let (result, stdout, stderr) = container.run(&["sh", "-c", script], opts);
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    let root = if read_only_root { "root-refused" } else { "root-written" };
    assert_eq!(stdout, format!("from the host\nrefused\n{root}\n127.0.0.1 localhost\n"));
    assert_eq!(container.rootfs.join("new").exists(), !read_only_root);
    assert!(!shared.join("x").exists());
}

pub fn memory_limit_kills_a_process_that_exceeds_it(backend: &Backend) {
    let container = Container::busybox("memory", backend);
    let opts = RunOptions { memory: Some(32 << 20), ..RunOptions::default() };
    // tail keeps the whole newline-free stream in memory: about 200 MB against a 32 MiB limit.
    let (result, _, stderr) = container.run(&["sh", "-c", "head -c 200000000 /dev/zero | tail"], opts);
    assert_eq!(result.unwrap(), 137, "stderr: {stderr}");
}

pub fn pids_limit_stops_forks(backend: &Backend) {
    let script = "n=0; for i in $(seq 50); do sleep 2 & n=$((n+1)); done; echo started; wait";
    let container = Container::busybox("pids", backend);
    let opts = RunOptions { pids_limit: Some(10), ..RunOptions::default() };
    let (result, stdout, stderr) = container.run(&["sh", "-c", script], opts);
    let _ = result.unwrap();
    assert!(
        stderr.contains("can't fork") || stderr.contains("Resource temporarily unavailable"),
        "stdout: {stdout} stderr: {stderr}"
    );

    let unlimited =
        stdout_of_success(backend, "pids-unlimited", &["sh", "-c", script], RunOptions::default());
    assert_eq!(unlimited, "started\n");
}

pub fn default_capabilities_and_seccomp_are_in_force(backend: &Backend) {
    let container = Container::busybox("caps", backend);
    let (result, stdout, stderr) = container.run(
        &["sh", "-c", "grep CapEff /proc/self/status; unshare -U true || echo unshare-refused"],
        RunOptions::default(),
    );
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    // Docker's fourteen default capabilities.
    assert!(stdout.contains("CapEff:\t00000000a80425fb"), "stdout: {stdout}");
    // Creating a user namespace needs no capability: only the seccomp profile refuses it.
    assert!(stdout.contains("unshare-refused"), "stdout: {stdout}");

    let opts = RunOptions { seccomp_unconfined: true, ..RunOptions::default() };
    let unconfined = stdout_of_success(
        backend,
        "unconfined",
        &["sh", "-c", "unshare -U true && echo unshare-allowed"],
        opts,
    );
    assert_eq!(unconfined, "unshare-allowed\n");

    let opts = RunOptions { user: Some("1000".into()), ..RunOptions::default() };
    let as_user = stdout_of_success(backend, "caps-user", &["grep", "CapEff", "/proc/self/status"], opts);
    assert_eq!(as_user, "CapEff:\t0000000000000000\n");
}

pub fn overlay_rootfs_runs_a_container_and_keeps_writes_in_upper(backend: &Backend) {
    let container = Container::new("overlay", backend);
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
