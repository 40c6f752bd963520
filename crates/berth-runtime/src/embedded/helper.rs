//! The helper process's side of the embedded runtime: the libcontainer calls, made from a process that
//! has started no thread (see the parent module for why and for the command line).
//!
//! Foreground waiting follows what runc does in `run` and `exec`: the container's init is a child of this
//! process (libcontainer clones it as a sibling of its intermediate process), signals sent to the helper
//! are blocked and passed on to that process, and the helper reaps it for its status.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::state::StateError;
use libcontainer::container::{Container, ContainerStatus, State};
use libcontainer::error::LibcontainerError;
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;

use super::signals::{BlockedSignals, wait_forwarding};
use super::{HELPER_COMMAND, HELPER_NOT_FOUND};

/// The helper's status when it failed before or while starting a process (its error is in the error
/// file); Docker's status for a runtime failure.
const HELPER_FAILED: i32 = 125;

/// Runs one embedded-runtime action and returns the process exit status. `args` is what follows
/// [`HELPER_COMMAND`] on the command line (a leading `__embedded-runtime` is skipped too): the action and
/// its operands. Call it before any thread exists, and exit with what it returns.
pub fn helper_main(args: &[OsString]) -> i32 {
    let args = match args.first() {
        Some(first) if first == HELPER_COMMAND => &args[1..],
        _ => args,
    };
    // Rust ignores SIGPIPE in its binaries, and an ignored signal stays ignored across execve(2): the
    // container must start with the default, as under runc.
    // SAFETY: signal(2) with SIG_DFL changes only this process's disposition of SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let operand = |index: usize| args.get(index).map(PathBuf::from);
    let action = args.first().and_then(|action| action.to_str()).unwrap_or_default();
    let (Some(state_root), Some(id)) = (operand(1), args.get(2).and_then(|id| id.to_str())) else {
        return usage(action);
    };
    let console_socket = operand(5);
    let console_socket = console_socket.as_deref();
    match (action, operand(3), operand(4)) {
        ("run", Some(bundle), Some(error_file)) => {
            foreground(&error_file, || run(&state_root, id, &bundle, console_socket))
        }
        ("exec", Some(process_json), Some(error_file)) => {
            foreground(&error_file, || exec(&state_root, id, &process_json, console_socket))
        }
        ("kill", Some(signal), None) => {
            let signal = signal.to_str().and_then(|text| text.parse::<i32>().ok());
            management(&state_root, id, |container| {
                let signal = signal
                    .and_then(|number| Signal::try_from(number).ok())
                    .ok_or_else(|| "invalid signal number".to_string())?;
                container.kill(signal, false).map_err(|error| describe(&error))
            })
        }
        ("delete", Some(mode), None) => {
            let force = mode.as_os_str() == "force";
            if !state_root.is_dir() {
                eprintln!("container {id} does not exist");
                return HELPER_NOT_FOUND;
            }
            let _lock = match DeleteLock::take(&state_root) {
                Ok(lock) => lock,
                Err(message) => {
                    eprintln!("{message}");
                    return 1;
                }
            };
            management(&state_root, id, |container| delete_with_retries(container, force))
        }
        ("state", None, None) => management(&state_root, id, print_state),
        _ => usage(action),
    }
}

fn usage(action: &str) -> i32 {
    eprintln!("embedded runtime helper: unknown action or wrong operands for {action:?}");
    2
}

/// Runs a run/exec action: its status, or, on failure, the message written to `error_file` (and to
/// stderr, where runc would print it too).
fn foreground(error_file: &Path, action: impl FnOnce() -> Result<i32, String>) -> i32 {
    match action() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("embedded runtime: {message}");
            if let Err(error) = std::fs::write(error_file, &message) {
                eprintln!("embedded runtime: cannot write {}: {error}", error_file.display());
            }
            HELPER_FAILED
        }
    }
}

/// How often a state file caught half-written is read again, and how long to wait in between.
const STATE_READS: u32 = 20;
const STATE_REREAD_DELAY: std::time::Duration = std::time::Duration::from_millis(5);

/// `Container::load`, read again when the state file does not parse: libcontainer rewrites it in place
/// (truncate, then write), so a reader that comes between the two sees an empty or partial file while
/// the container is perfectly fine. Bounded to about 0.1 s; a file that stays unreadable is the error.
fn load_container(container_root: PathBuf) -> Result<Container, LibcontainerError> {
    let mut reads = 1;
    loop {
        match Container::load(container_root.clone()) {
            Err(LibcontainerError::State(StateError::ParseStateFile { .. })) if reads < STATE_READS => {
                reads += 1;
                std::thread::sleep(STATE_REREAD_DELAY);
            }
            other => return other,
        }
    }
}

/// Loads the container and runs a management action on it; [`HELPER_NOT_FOUND`] when it does not exist.
fn management(state_root: &Path, id: &str, action: impl FnOnce(&mut Container) -> Result<(), String>) -> i32 {
    let container_root = state_root.join(id);
    if !State::file_path(&container_root).exists() {
        eprintln!("container {id} does not exist");
        return HELPER_NOT_FOUND;
    }
    let outcome = load_container(container_root)
        .map_err(|error| describe(&error))
        .and_then(|mut container| action(&mut container));
    match outcome {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("{message}");
            1
        }
    }
}

/// Creates and starts the container, waits for its init process, then deletes it as `runc run` does.
/// With `console_socket`, the container's terminal is sent there (see [`with_console`]).
fn run(state_root: &Path, id: &str, bundle: &Path, console_socket: Option<&Path>) -> Result<i32, String> {
    std::fs::create_dir_all(state_root)
        .map_err(|error| format!("cannot create the state directory {}: {error}", state_root.display()))?;
    super::adapt::adapt_bundle(bundle)?;
    let builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(state_root)
        .map_err(|error| describe(&error))?;
    let (builder, detach) = with_console(builder, console_socket);
    let mut container = match builder.as_init(bundle).with_systemd(false).with_detach(detach).build() {
        Ok(container) => container,
        Err(error) => {
            // libcontainer removes what it created when the container process fails, but not when
            // it fails earlier (the spec, the state file), and not cgroups it tried to remove too
            // early (see the cleanup module); never touch a container that already existed.
            if !matches!(error, LibcontainerError::Exist) {
                remove_leftover_state(&state_root.join(id));
                super::cleanup::after_failed_start(spec_cgroups_path(bundle).as_deref());
            }
            return Err(describe(&error));
        }
    };
    let pid = container.pid().map(|pid| pid.as_raw()).ok_or_else(|| {
        let _ = container.delete(true);
        "the container was created without an init process".to_string()
    })?;
    // Blocked after the init process was cloned (it must not inherit the mask) and before it is told to
    // run the command, so no signal meant for the container is lost.
    let blocked = BlockedSignals::block().map_err(|error| {
        abandon(&mut container, pid);
        format!("cannot block signals: {error}")
    })?;
    if let Err(error) = container.start() {
        drop(blocked);
        abandon(&mut container, pid);
        return Err(describe(&error));
    }
    let code = wait_forwarding(pid, &blocked);
    drop(blocked);
    // A forced `delete` from elsewhere may be removing the container, or have removed it already.
    // Nothing is printed when this fails: the helper's stderr is the container's (its log under `run -d`),
    // and a message there would read as the container's own output. What is left is deleted, with errors
    // reported, by whoever removes the container (`rm`, or the engine right after `run --rm`).
    if let Ok(_lock) = DeleteLock::take(state_root)
        && State::file_path(&container.root).exists()
    {
        let _ = delete_with_retries(&mut container, true);
    }
    code.map_err(|error| format!("cannot wait for the container's process {pid}: {error}"))
}

/// Runs the process described by `process_json` in the container and waits for it; with
/// `console_socket`, its terminal is sent there (see [`with_console`]).
fn exec(
    state_root: &Path,
    id: &str,
    process_json: &Path,
    console_socket: Option<&Path>,
) -> Result<i32, String> {
    if !State::file_path(&state_root.join(id)).exists() {
        return Err(format!("container {id} does not exist"));
    }
    super::adapt::adapt_process_file(process_json)?;
    let builder = ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_root_path(state_root)
        .map_err(|error| describe(&error))?;
    let (builder, detach) = with_console(builder, console_socket);
    let pid = builder
        .as_tenant()
        .with_process(Some(process_json))
        .with_detach(detach)
        .build()
        .map_err(|error| describe(&error))?
        .as_raw();
    let blocked = BlockedSignals::block().map_err(|error| format!("cannot block signals: {error}"))?;
    let code = wait_forwarding(pid, &blocked);
    drop(blocked);
    code.map_err(|error| format!("cannot wait for the exec process {pid}: {error}"))
}

/// Passes the console socket to libcontainer, and the `detach` flag its builders must then get.
/// libcontainer accepts a console socket only from a "detached" caller, as runc does, but in
/// libcontainer 0.7 that flag means nothing else: the helper still waits for the process itself.
fn with_console(builder: ContainerBuilder, console_socket: Option<&Path>) -> (ContainerBuilder, bool) {
    (builder.with_console_socket(console_socket), console_socket.is_some())
}

/// An exclusive flock(2) on the state root, held while a container is deleted. A forced `delete` and the
/// `run` helper's own delete after the container exits may otherwise remove the same cgroups at once, and
/// libcontainer reports a cgroup directory that vanished under it as "could not delete".
struct DeleteLock {
    _directory: std::fs::File,
}

impl DeleteLock {
    fn take(state_root: &Path) -> Result<DeleteLock, String> {
        let directory = std::fs::File::open(state_root)
            .map_err(|error| format!("cannot open the state directory {}: {error}", state_root.display()))?;
        rustix::fs::flock(&directory, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|error| format!("cannot lock the state directory {}: {error}", state_root.display()))?;
        Ok(DeleteLock { _directory: directory })
    }
}

/// Deletes a container, trying again a few times: right after a forced kill, the container's processes
/// may not have been reaped by the `run` helper yet, and their cgroups cannot be removed until they are
/// (libcontainer itself retries for only about 100 ms).
fn delete_with_retries(container: &mut Container, force: bool) -> Result<(), String> {
    const ATTEMPTS: u32 = 4;
    let mut attempt = 1;
    loop {
        match container.delete(force) {
            Ok(()) => return Ok(()),
            Err(error) if !force || attempt >= ATTEMPTS => return Err(describe(&error)),
            Err(_) => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    }
}

/// Kills and removes a container whose start failed, and reaps its init process.
fn abandon(container: &mut Container, pid: i32) {
    // Killed and reaped before the delete: a zombie would keep its cgroup from being removed.
    if let Ok(signal) = Signal::try_from(libc::SIGKILL) {
        let _ = container.kill(signal, true);
    }
    let mut status = 0;
    // SAFETY: waitpid writes only the status integer.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
    }
    let _ = container.delete(true);
}

/// The spec's `linux.cgroupsPath`, for cleaning up after a failed start.
fn spec_cgroups_path(bundle: &Path) -> Option<PathBuf> {
    let spec = oci_spec::runtime::Spec::load(bundle.join("config.json")).ok()?;
    spec.linux().as_ref()?.cgroups_path().clone()
}

fn remove_leftover_state(container_root: &Path) {
    if container_root.exists()
        && let Err(error) = std::fs::remove_dir_all(container_root)
    {
        eprintln!("embedded runtime: cannot remove {}: {error}", container_root.display());
    }
}

/// Prints the state as `runc state` does (runtime-spec `runtime.md` "State", plus runc's `rootfs`,
/// `created` and `owner`): pid 0 once stopped.
fn print_state(container: &mut Container) -> Result<(), String> {
    let status = match container.status() {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    };
    let pid = match container.status() {
        ContainerStatus::Stopped => 0,
        _ => container.pid().map_or(0, |pid| pid.as_raw()),
    };
    let bundle = container.bundle().clone();
    let rootfs = oci_spec::runtime::Spec::load(bundle.join("config.json"))
        .ok()
        .and_then(|spec| spec.root().as_ref().map(|root| bundle.join(root.path())))
        .unwrap_or_default();
    let state = serde_json::json!({
        "ociVersion": container.state.oci_version,
        "id": container.id(),
        "pid": pid,
        "status": status,
        "bundle": bundle,
        "rootfs": rootfs,
        "created": container.created().map(|created| created.to_rfc3339()).unwrap_or_default(),
        "owner": "",
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{state}").map_err(|error| format!("cannot print the state: {error}"))
}

/// The error and its causes as one line, skipping causes whose text the line already holds (many
/// libcontainer errors repeat their source in their own message).
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_caught_half_written_is_read_again() {
        let root = tempfile::tempdir().unwrap();
        let container_root = root.path().join("c1");
        std::fs::create_dir_all(&container_root).unwrap();
        // What a reader sees between libcontainer's truncate and its write.
        std::fs::write(State::file_path(&container_root), b"").unwrap();
        let writer = {
            let container_root = container_root.clone();
            std::thread::spawn(move || {
                std::thread::sleep(STATE_REREAD_DELAY * 3);
                State::new("c1", ContainerStatus::Stopped, None, PathBuf::from("/bundle"))
                    .save(&container_root)
                    .unwrap();
            })
        };
        let container = load_container(container_root.clone()).expect("read once written");
        assert_eq!(container.id(), "c1");
        writer.join().unwrap();

        // A file that stays unreadable is still the error it is.
        std::fs::write(State::file_path(&container_root), b"{").unwrap();
        let error = load_container(container_root).unwrap_err();
        assert!(matches!(error, LibcontainerError::State(StateError::ParseStateFile { .. })), "{error}");
    }
}
