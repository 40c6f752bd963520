//! Conformance cases that address a container while it runs (state, kill, exec, forced delete) or that
//! give it a terminal: the parts of the `Runtime` trait beyond a run to completion.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_runtime::{ContainerStatus, Error, RunOptions, State, Stdio, exec_process};
use oci_spec::runtime::Spec;

use crate::common::{Backend, Container};

/// Starts the container's bundle on a thread of its own; returns the thread running it.
fn start(container: &Container, stdio: Stdio) -> JoinHandle<Result<i32, Error>> {
    let runtime = Arc::clone(&container.runtime);
    let (id, bundle) = (container.id.clone(), container.bundle());
    std::thread::spawn(move || runtime.run(&id, &bundle, stdio))
}

/// The container's state once it is running; fails the test after 30 seconds.
fn wait_until_running(container: &Container) -> State {
    let started = Instant::now();
    loop {
        if let Some(state) = container.runtime.state(&container.id).unwrap()
            && state.status == ContainerStatus::Running
        {
            return state;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "container never reached running");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes the process for `args` as an exec's process.json.
fn write_process(spec: &Spec, args: &[&str], tty: bool, process: &Path) {
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    std::fs::write(process, serde_json::to_vec(&exec_process(spec, &args, tty).unwrap()).unwrap()).unwrap();
}

pub fn state_kill_and_exec_address_a_running_container(backend: &Backend) {
    let container = Container::busybox("lifecycle", backend);
    container.write_spec(&["sleep", "60"], RunOptions::default());
    let runner = start(&container, Stdio::null());
    let state = wait_until_running(&container);
    assert!(state.pid.is_some_and(|pid| pid > 1));
    assert_eq!(state.bundle, container.bundle());

    let spec = Spec::load(container.bundle().join("config.json")).unwrap();
    let process = container.dir.path().join("process.json");
    write_process(&spec, &["sh", "-c", "echo exec-ok; id -u; exit 5"], false, &process);
    let output = container.dir.path().join("exec-out");
    let errors = container.dir.path().join("exec-err");
    let stdio = Stdio::files(None, File::create(&output).unwrap(), File::create(&errors).unwrap());
    let code = container.runtime.exec(&container.id, &process, false, stdio);
    let exec_errors = std::fs::read_to_string(&errors).unwrap();
    assert_eq!(code.unwrap(), 5, "stderr: {exec_errors}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "exec-ok\n0\n");

    // A missing command in exec is the 127 error too.
    write_process(&spec, &["no-such-command"], false, &process);
    let error = container.runtime.exec(&container.id, &process, false, Stdio::null()).unwrap_err();
    assert_eq!(error.container_start_exit_code(), Some(127), "{error}");

    // With a terminal, the process gets a pseudo-terminal of the container's own, relayed through the
    // console socket (the tests have no controlling terminal).
    write_process(&spec, &["sh", "-c", "tty; exit 6"], true, &process);
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
    let unknown = format!("berth-{}-no-such", backend.id_prefix);
    assert!(container.runtime.kill(&unknown, 15).is_err());
    container.runtime.delete(&unknown, true).unwrap();
    assert!(container.runtime.state(&unknown).unwrap().is_none());
}

pub fn forced_delete_stops_a_running_container(backend: &Backend) {
    let container = Container::busybox("force-delete", backend);
    container.write_spec(&["sleep", "60"], RunOptions::default());
    let stderr_path = container.dir.path().join("stderr");
    let stdio = Stdio::files(
        None,
        File::create(container.dir.path().join("stdout")).unwrap(),
        File::create(&stderr_path).unwrap(),
    );
    let runner = start(&container, stdio);
    wait_until_running(&container);
    container.runtime.delete(&container.id, true).unwrap();
    assert_eq!(runner.join().unwrap().unwrap(), 137);
    assert!(container.runtime.state(&container.id).unwrap().is_none());
    assert_eq!(std::fs::read_to_string(&stderr_path).unwrap(), "");
}

/// `-t` with files for stdio (no terminal of the caller's to lend): the container's terminal is relayed
/// through the console socket.
pub fn terminal_run_gets_a_pseudo_terminal_and_the_exit_status(backend: &Backend) {
    let container = Container::busybox("tty", backend);
    let opts = RunOptions { tty: true, ..RunOptions::default() };
    let (result, stdout, stderr) = container.run(&["sh", "-c", "tty; echo $TERM"], opts);
    assert_eq!(result.unwrap(), 0, "stderr: {stderr}");
    // The pty turns "\n" into "\r\n".
    assert_eq!(stdout, "/dev/pts/0\r\nxterm\r\n");
    // The terminal run removes the container afterwards, as a foreground run does.
    assert!(container.runtime.state(&container.id).unwrap().is_none());

    let container = Container::busybox("tty-exit", backend);
    let opts = RunOptions { tty: true, ..RunOptions::default() };
    let (result, stdout, stderr) = container.run(&["sh", "-c", "tty; exit 4"], opts.clone());
    assert_eq!(result.unwrap(), 4, "stderr: {stderr}");
    assert!(stdout.starts_with("/dev/pts/"), "stdout: {stdout:?}");
    assert!(stdout.ends_with("\r\n"), "stdout: {stdout:?}");
    assert!(container.runtime.state(&container.id).unwrap().is_none());

    // A missing command still fails with its own error, not a terminal one, under the same id.
    let (result, _, _) = container.run(&["no-such-command"], opts);
    let error = result.unwrap_err();
    assert!(matches!(error, Error::ExecutableNotFound { .. }), "{error:?}");
    assert_eq!(error.container_start_exit_code(), Some(127), "{error}");
}

/// `-t` on the caller's own terminal: the backend uses it for the run and leaves its mode as it was. Only
/// meaningful with a controlling terminal (run the tests under `script` to exercise it).
pub fn terminal_run_relays_the_callers_own_terminal(backend: &Backend) {
    if File::open("/dev/tty").is_err() {
        eprintln!("skipping: no controlling terminal");
        return;
    }
    let before = terminal_local_modes();
    let container = Container::busybox("tty-own", backend);
    container.write_spec(&["sh", "-c", "tty; exit 7"], RunOptions { tty: true, ..RunOptions::default() });
    let result = container.runtime.run(&container.id, &container.bundle(), Stdio::inherit());
    assert_eq!(result.unwrap(), 7);
    assert_eq!(before, terminal_local_modes(), "the terminal mode was not restored");
}

/// The local mode flags of the terminal on fd 0 (raw mode clears ICANON and ECHO), if it is one.
fn terminal_local_modes() -> Option<libc::tcflag_t> {
    // SAFETY: termios is plain data, filled by tcgetattr on fd 0.
    unsafe {
        let mut attributes: libc::termios = std::mem::zeroed();
        (libc::tcgetattr(0, &mut attributes) == 0).then_some(attributes.c_lflag)
    }
}
