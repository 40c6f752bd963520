//! Real containers through the embedded runtime (libcontainer in a helper process), as root: the same
//! busybox rootfs and `build_spec` bundle as tests/run.rs, run by `EmbeddedRuntime` with the test helper
//! binary playing berth's `__embedded-runtime` part. Skipped (with a message) when not root.

mod common;

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime::{
    BindMount, ContainerStatus, EmbeddedRuntime, Error, Network, RunOptions, Runtime, Stdio, exec_process,
    mount_overlay, unmount,
};
use common::populate_rootfs;

const HELPER: &str = env!("CARGO_BIN_EXE_berth-embedded-helper-test");
fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    let busybox = Path::new("/bin/busybox").exists();
    if !root || !busybox {
        eprintln!("skipping: needs root and /bin/busybox");
    }
    root && busybox
}

/// This backend's container: bundle, state root and id, force-deleted on drop.
type Container = common::Container<EmbeddedRuntime>;

fn new_container(name: &str) -> Container {
    Container::new(name, "emb", |state| EmbeddedRuntime::new(HELPER, state))
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
    // A foreground run removes the container afterwards, as runc does.
    assert!(container.runtime.state(&container.id).unwrap().is_none());
    assert!(!container.dir.path().join("state").join(&container.id).exists());
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
    // The failed start leaves nothing behind: no state, no cgroup.
    assert!(container.runtime.state(&container.id).unwrap().is_none());
    assert!(!container.dir.path().join("state").join(&container.id).exists());
    for hierarchy in ["memory", "pids", "cpu", "unified"] {
        let cgroup = Path::new("/sys/fs/cgroup").join(hierarchy).join("berth").join(&container.id);
        assert!(!cgroup.exists(), "{} left behind", cgroup.display());
    }
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
    assert!(stdout.contains("CapEff:\t00000000a80425fb"), "stdout: {stdout}");
    // Creating a user namespace needs no capability: only the seccomp profile refuses it.
    assert!(stdout.contains("unshare-refused"), "stdout: {stdout}");

    let container = busybox_container("caps-user");
    let opts = RunOptions { user: Some("1000".into()), ..RunOptions::default() };
    let (result, stdout, stderr) = container.run(&["grep", "CapEff", "/proc/self/status"], opts);
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    assert_eq!(stdout, "CapEff:\t0000000000000000\n");
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
    let args = ["sh", "-c", "echo exec-ok; id -u; exit 5"].map(String::from);
    std::fs::write(&process, serde_json::to_vec(&exec_process(&spec, &args, false).unwrap()).unwrap())
        .unwrap();
    let output = container.dir.path().join("exec-out");
    let errors = container.dir.path().join("exec-err");
    let stdio = Stdio::files(None, File::create(&output).unwrap(), File::create(&errors).unwrap());
    let code = container.runtime.exec(&container.id, &process, false, stdio);
    let exec_errors = std::fs::read_to_string(&errors).unwrap();
    assert_eq!(code.unwrap(), 5, "stderr: {exec_errors}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "exec-ok\n0\n");

    // A missing command in exec is the 127 error too.
    let args = ["no-such-command".to_string()];
    std::fs::write(&process, serde_json::to_vec(&exec_process(&spec, &args, false).unwrap()).unwrap())
        .unwrap();
    let error = container.runtime.exec(&container.id, &process, false, Stdio::null()).unwrap_err();
    assert_eq!(error.container_start_exit_code(), Some(127), "{error}");

    // With a terminal, the process gets a pseudo-terminal of the container's own, relayed through the
    // console socket (the tests have no controlling terminal).
    let args = ["sh", "-c", "tty; exit 6"].map(String::from);
    std::fs::write(&process, serde_json::to_vec(&exec_process(&spec, &args, true).unwrap()).unwrap())
        .unwrap();
    let stdio = Stdio::files(None, File::create(&output).unwrap(), File::create(&errors).unwrap());
    let code = container.runtime.exec(&container.id, &process, true, stdio);
    let exec_errors = std::fs::read_to_string(&errors).unwrap();
    assert_eq!(code.unwrap(), 6, "stderr: {exec_errors}");
    let terminal_output = std::fs::read_to_string(&output).unwrap();
    assert!(terminal_output.starts_with("/dev/pts/"), "output: {terminal_output:?}");

    container.runtime.kill(&container.id, 9).unwrap();
    assert_eq!(runner.join().unwrap().unwrap(), 137);
    assert!(container.runtime.state(&container.id).unwrap().is_none());
    // Unknown containers: kill fails, delete and state find nothing.
    assert!(container.runtime.kill("berth-emb-no-such", 15).is_err());
    container.runtime.delete("berth-emb-no-such", true).unwrap();
}

#[test]
fn terminal_run_gets_a_pseudo_terminal_and_the_exit_status() {
    if !can_run() {
        return;
    }
    let container = busybox_container("tty");
    let opts = RunOptions { tty: true, ..RunOptions::default() };
    let (result, stdout, stderr) = container.run(&["sh", "-c", "tty; exit 4"], opts);
    assert_eq!(result.unwrap(), 4, "stderr: {stderr}");
    assert!(stdout.starts_with("/dev/pts/"), "stdout: {stdout:?}");
    // The terminal turns the newline into CR LF.
    assert!(stdout.ends_with("\r\n"), "stdout: {stdout:?}");
    assert!(container.runtime.state(&container.id).unwrap().is_none());

    // A missing command still fails with its own error, not a terminal one.
    let container = busybox_container("tty-missing");
    let opts = RunOptions { tty: true, ..RunOptions::default() };
    let (result, _, _) = container.run(&["no-such-command"], opts);
    let error = result.unwrap_err();
    assert_eq!(error.container_start_exit_code(), Some(127), "{error}");
}

#[test]
fn terminal_run_relays_the_callers_own_terminal() {
    // Only meaningful with a controlling terminal (run under `script` to exercise it): berth's terminal
    // goes to raw mode for the run and comes back as it was.
    if !can_run() || std::fs::File::open("/dev/tty").is_err() {
        eprintln!("skipping: no controlling terminal");
        return;
    }
    // SAFETY: termios is plain data filled by tcgetattr on fd 0.
    let before = unsafe {
        let mut attributes: libc::termios = std::mem::zeroed();
        (libc::tcgetattr(0, &mut attributes) == 0).then_some(attributes.c_lflag)
    };
    let container = busybox_container("tty-own");
    container.write_spec(&["sh", "-c", "tty; exit 7"], RunOptions { tty: true, ..RunOptions::default() });
    let result = container.runtime.run(&container.id, &container.bundle(), Stdio::inherit());
    assert_eq!(result.unwrap(), 7);
    // SAFETY: as above.
    let after = unsafe {
        let mut attributes: libc::termios = std::mem::zeroed();
        (libc::tcgetattr(0, &mut attributes) == 0).then_some(attributes.c_lflag)
    };
    assert_eq!(before, after, "the terminal mode was not restored");
}

#[test]
fn signals_sent_to_the_helper_reach_the_container() {
    if !can_run() {
        return;
    }
    let container = busybox_container("forward");
    // The shell as pid 1 ignores SIGTERM unless it traps it.
    container.write_spec(
        &["sh", "-c", "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done"],
        RunOptions::default(),
    );
    let stdout_path = container.dir.path().join("stdout");
    let helper = std::process::Command::new(HELPER)
        .arg("__embedded-runtime")
        .arg("run")
        .arg(container.dir.path().join("state"))
        .arg(&container.id)
        .arg(container.bundle())
        .arg(container.dir.path().join("run.error"))
        .stdout(File::create(&stdout_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(&stdout_path).unwrap().contains("ready") {
        assert!(started.elapsed() < Duration::from_secs(30), "container never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) only sends a signal, to the helper this test started.
    assert_eq!(unsafe { libc::kill(helper.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let status = helper.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(42));
    assert_eq!(std::fs::read_to_string(&stdout_path).unwrap(), "ready\ngot-term\n");
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
}

#[test]
fn forced_delete_stops_a_running_container() {
    if !can_run() {
        return;
    }
    let container = busybox_container("force-delete");
    container.write_spec(&["sleep", "60"], RunOptions::default());
    let stderr_path = container.dir.path().join("stderr");
    let stdio = Stdio::files(
        None,
        File::create(container.dir.path().join("stdout")).unwrap(),
        File::create(&stderr_path).unwrap(),
    );
    let runtime = container.runtime.clone();
    let (id, bundle) = (container.id.clone(), container.bundle());
    let runner = std::thread::spawn(move || runtime.run(&id, &bundle, stdio));
    let started = Instant::now();
    while container
        .runtime
        .state(&container.id)
        .unwrap()
        .is_none_or(|state| state.status != ContainerStatus::Running)
    {
        assert!(started.elapsed() < Duration::from_secs(30), "container never reached running");
        std::thread::sleep(Duration::from_millis(50));
    }
    container.runtime.delete(&container.id, true).unwrap();
    assert_eq!(runner.join().unwrap().unwrap(), 137);
    assert!(container.runtime.state(&container.id).unwrap().is_none());
    assert_eq!(std::fs::read_to_string(&stderr_path).unwrap(), "");
}

#[test]
fn read_only_root_bind_mounts_and_network_host() {
    if !can_run() {
        return;
    }
    let container = busybox_container("mounts");
    let shared = container.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("note"), "from the host\n").unwrap();
    let opts = RunOptions {
        mounts: vec![BindMount { source: shared.clone(), destination: "/data".into(), read_only: true }],
        network: Network::Host,
        read_only: true,
        ..RunOptions::default()
    };
    let script =
        "cat /data/note; touch /data/x || echo refused; touch /new || echo root-refused; cat /etc/hosts";
    let (result, stdout, stderr) = container.run(&["sh", "-c", script], opts);
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    assert_eq!(stdout, "from the host\nrefused\nroot-refused\n127.0.0.1 localhost\n");
    assert!(!container.rootfs.join("new").exists());
}
