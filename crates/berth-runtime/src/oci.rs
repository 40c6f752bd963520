//! The [`Runtime`] seam and its backend for OCI runtime binaries that follow runc's command line
//! (`runc --root R run --bundle B ID`, `kill`, `delete`, `state`, `exec --process`). runc is the reference;
//! crun and youki accept the same commands.
//!
//! Telling a container's exit status from the runtime's own failure: `runc run` exits with the container's
//! status, so "exit 1" alone is ambiguous. Every run/exec therefore passes `--log FILE --log-format json`;
//! error-level entries in that file mean the runtime failed, and their text becomes the error message.
//! runc also prints the same message on its stderr, which is the container's stderr; callers that print
//! the returned error will show it twice in the foreground case.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use serde::Deserialize;

use crate::error::Error;

/// Where one standard stream of the container goes.
#[derive(Debug)]
pub enum StdioTarget {
    /// berth's own stream (the terminal in the foreground case).
    Inherit,
    /// /dev/null.
    Null,
    /// An open file: a log file for detached containers, a capture file in tests.
    File(File),
}

impl StdioTarget {
    pub(crate) fn into_process_stdio(self) -> std::process::Stdio {
        match self {
            StdioTarget::Inherit => std::process::Stdio::inherit(),
            StdioTarget::Null => std::process::Stdio::null(),
            StdioTarget::File(file) => std::process::Stdio::from(file),
        }
    }
}

/// The container's stdin, stdout and stderr.
#[derive(Debug)]
pub struct Stdio {
    pub stdin: StdioTarget,
    pub stdout: StdioTarget,
    pub stderr: StdioTarget,
}

impl Stdio {
    /// The container shares berth's streams (foreground `berth run`).
    pub fn inherit() -> Stdio {
        Stdio { stdin: StdioTarget::Inherit, stdout: StdioTarget::Inherit, stderr: StdioTarget::Inherit }
    }

    /// All three streams to /dev/null.
    pub fn null() -> Stdio {
        Stdio { stdin: StdioTarget::Null, stdout: StdioTarget::Null, stderr: StdioTarget::Null }
    }

    /// Output to files, stdin from /dev/null unless given (detached containers, tests).
    pub fn files(stdin: Option<File>, stdout: File, stderr: File) -> Stdio {
        Stdio {
            stdin: stdin.map_or(StdioTarget::Null, StdioTarget::File),
            stdout: StdioTarget::File(stdout),
            stderr: StdioTarget::File(stderr),
        }
    }
}

/// runtime-spec `runtime.md` "State": the lifecycle status of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerStatus {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
    /// A status this berth does not know, kept verbatim.
    Other(String),
}

impl ContainerStatus {
    fn parse(text: &str) -> ContainerStatus {
        match text {
            "creating" => ContainerStatus::Creating,
            "created" => ContainerStatus::Created,
            "running" => ContainerStatus::Running,
            "paused" => ContainerStatus::Paused,
            "stopped" => ContainerStatus::Stopped,
            other => ContainerStatus::Other(other.to_string()),
        }
    }
}

/// What `state` reports about one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub id: String,
    pub status: ContainerStatus,
    /// The container's init process on the host; `None` once stopped (runc reports 0 then).
    pub pid: Option<i32>,
    pub bundle: PathBuf,
}

/// A container runtime. Lifecycle: `run` creates, starts and waits for a container in one call and
/// returns its exit status; while it runs, `state`, `kill` and `exec` address it by id; after it exits,
/// `delete` removes what the runtime kept (runc removes a container it ran in the foreground itself, so
/// `delete` then finds nothing, which is not an error).
pub trait Runtime {
    /// A short name for messages ("runc").
    fn name(&self) -> &str;
    /// Runs the container described by `<bundle>/config.json` in the foreground; returns its exit
    /// status, 128+N when it was killed by signal N. With `process.terminal` set, the container gets a
    /// pseudo-terminal whose output is copied to `stdio.stdout` and whose input comes from `stdio.stdin`.
    fn run(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<i32, Error>;
    /// Sends `signal` to the container's init process.
    fn kill(&self, id: &str, signal: i32) -> Result<(), Error>;
    /// Removes the container's runtime state; `force` kills it first if it still runs. A container that
    /// does not exist is not an error.
    fn delete(&self, id: &str, force: bool) -> Result<(), Error>;
    /// The container's state, `None` if the runtime does not know it.
    fn state(&self, id: &str) -> Result<Option<State>, Error>;
    /// Runs the process described by `process_json` (runtime-spec `config.md` "process") inside the
    /// running container, in the foreground; returns its exit status.
    fn exec(&self, id: &str, process_json: &Path, tty: bool, stdio: Stdio) -> Result<i32, Error>;
}

/// A runtime binary with runc's command line, keeping its state under `state_root` (`--root`).
#[derive(Clone, Debug)]
pub struct OciRuntime {
    binary: PathBuf,
    state_root: PathBuf,
    name: String,
}

impl OciRuntime {
    pub fn new(binary: impl Into<PathBuf>, state_root: impl Into<PathBuf>) -> OciRuntime {
        let binary = binary.into();
        let name = binary
            .file_name()
            .map_or_else(|| binary.display().to_string(), |name| name.to_string_lossy().into_owned());
        OciRuntime { binary, state_root: state_root.into(), name }
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--root").arg(&self.state_root);
        command
    }

    fn spawn_error(&self, source: std::io::Error) -> Error {
        Error::RuntimeSpawn { binary: self.binary.clone(), source }
    }

    /// Runs a short management command and returns its stdout; a failure carries the runtime's stderr.
    fn management(
        &self,
        action: &'static str,
        id: &str,
        args: &[&str],
    ) -> Result<Result<Vec<u8>, String>, Error> {
        let output = self
            .command()
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| self.spawn_error(source))?;
        if output.status.success() {
            Ok(Ok(output.stdout))
        } else {
            let message = String::from_utf8_lossy(&output.stderr).trim().to_string();
            tracing::debug!(runtime = %self.name, action, id, %message, "runtime command failed");
            Ok(Err(if message.is_empty() { format!("exited with {}", output.status) } else { message }))
        }
    }

    /// Runs `run` or `exec` in the foreground with a json log file, and turns the outcome into the
    /// container's exit status or the runtime's error. `subcommand` is everything between the global
    /// options and the container id (runc reads no options after the id).
    fn foreground(
        &self,
        action: &'static str,
        id: &str,
        subcommand: &[&OsStr],
        log: &Path,
        tty: bool,
        stdio: Stdio,
    ) -> Result<i32, Error> {
        File::create(log).map_err(|source| Error::Write { path: log.to_path_buf(), source })?;
        let mut command = self.command();
        command.arg("--log").arg(log).args(["--log-format", "json"]).args(subcommand);
        let wants_console = tty
            && !(matches!(stdio.stdin, StdioTarget::Inherit)
                && matches!(stdio.stdout, StdioTarget::Inherit)
                && crate::console::has_controlling_terminal());
        let status = if wants_console {
            let outcome =
                crate::console::run_detached_with_console(id, command, stdio).map_err(
                    |error| match error {
                        crate::console::ConsoleError::Spawn(source) => self.spawn_error(source),
                        crate::console::ConsoleError::Setup(error) => error,
                    },
                )?;
            match outcome {
                crate::console::ConsoleOutcome::RuntimeFailed(status) => status,
                crate::console::ConsoleOutcome::Exited(code) => {
                    // A detached run leaves a stopped container behind; remove it so a tty run ends
                    // like a foreground one.
                    if action == "run" {
                        self.delete(id, true)?;
                    }
                    return Ok(code);
                }
            }
        } else {
            // In the foreground runc relays the terminal itself (raw mode, resizes) when tty is set.
            command
                .arg(id)
                .stdin(stdio.stdin.into_process_stdio())
                .stdout(stdio.stdout.into_process_stdio())
                .stderr(stdio.stderr.into_process_stdio());
            command.status().map_err(|source| self.spawn_error(source))?
        };
        let code = exit_code(status);
        if code == 0 {
            return Ok(0);
        }
        let errors = runtime_errors(log);
        match errors.last() {
            Some(message) => Err(classify_failure(&self.name, action, id, message)),
            None => Ok(code),
        }
    }
}

impl Runtime for OciRuntime {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<i32, Error> {
        let tty = bundle_wants_terminal(bundle)?;
        let log = bundle.join(format!("{}-run.log", self.name));
        self.foreground(
            "run",
            id,
            &[OsStr::new("run"), OsStr::new("--bundle"), bundle.as_os_str()],
            &log,
            tty,
            stdio,
        )
    }

    fn kill(&self, id: &str, signal: i32) -> Result<(), Error> {
        let signal = signal.to_string();
        self.management("kill", id, &["kill", id, &signal])?.map(drop).map_err(|message| {
            Error::RuntimeFailed { runtime: self.name.clone(), action: "kill", id: id.to_string(), message }
        })
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), Error> {
        let args: &[&str] = if force { &["delete", "--force", id] } else { &["delete", id] };
        match self.management("delete", id, args)? {
            Ok(_) => Ok(()),
            Err(message) if is_not_found(&message) => Ok(()),
            Err(message) => Err(Error::RuntimeFailed {
                runtime: self.name.clone(),
                action: "delete",
                id: id.to_string(),
                message,
            }),
        }
    }

    fn state(&self, id: &str) -> Result<Option<State>, Error> {
        let stdout = match self.management("state", id, &["state", id])? {
            Ok(stdout) => stdout,
            Err(message) if is_not_found(&message) => return Ok(None),
            Err(message) => {
                return Err(Error::RuntimeFailed {
                    runtime: self.name.clone(),
                    action: "state",
                    id: id.to_string(),
                    message,
                });
            }
        };
        parse_state(&stdout).map(Some).map_err(|reason| Error::InvalidRuntimeOutput {
            runtime: self.name.clone(),
            action: "state",
            id: id.to_string(),
            reason,
        })
    }

    fn exec(&self, id: &str, process_json: &Path, tty: bool, stdio: Stdio) -> Result<i32, Error> {
        let log = process_json.with_extension("log");
        self.foreground(
            "exec",
            id,
            &[OsStr::new("exec"), OsStr::new("--process"), process_json.as_os_str()],
            &log,
            tty,
            stdio,
        )
    }
}

/// The status a shell would report: the code, or 128+N for death by signal N.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|signal| 128 + signal)).unwrap_or(255)
}

fn is_not_found(message: &str) -> bool {
    message.contains("does not exist") || message.contains("not found")
}

pub(crate) fn bundle_wants_terminal(bundle: &Path) -> Result<bool, Error> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| Error::Read { path: path.clone(), source })?;
    #[derive(Deserialize)]
    struct Config {
        process: Option<Process>,
    }
    #[derive(Deserialize)]
    struct Process {
        terminal: Option<bool>,
    }
    let config: Config = serde_json::from_slice(&text).map_err(|error| Error::Read {
        path,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
    })?;
    Ok(config.process.and_then(|process| process.terminal).unwrap_or(false))
}

/// The `msg` of every error-level line of a runc json log (logrus format: `{"level":..,"msg":..}`).
fn runtime_errors(log: &Path) -> Vec<String> {
    #[derive(Deserialize)]
    struct Line {
        level: Option<String>,
        msg: Option<String>,
    }
    let Ok(text) = std::fs::read_to_string(log) else { return Vec::new() };
    text.lines()
        .filter_map(|line| serde_json::from_str::<Line>(line).ok())
        .filter(|line| matches!(line.level.as_deref(), Some("error" | "fatal" | "panic")))
        .filter_map(|line| line.msg)
        .collect()
}

/// Sorts a runtime failure into the kinds Docker gives distinct exit codes: the command not found (127),
/// not executable (126), anything else.
fn classify_failure(runtime: &str, action: &'static str, id: &str, message: &str) -> Error {
    let (runtime, id, message) = (runtime.to_string(), id.to_string(), message.to_string());
    // runc words these as `exec: "name": executable file not found in $PATH`,
    // `exec: "/abs": stat /abs: no such file or directory` and `exec: "/file": permission denied`.
    let exec_part = message.find("exec: ").or_else(|| message.find("exec ")).map(|start| &message[start..]);
    match exec_part {
        Some(part)
            if part.contains("executable file not found") || part.contains("no such file or directory") =>
        {
            Error::ExecutableNotFound { runtime, id, message }
        }
        Some(part) if part.contains("permission denied") => Error::PermissionDenied { runtime, id, message },
        _ => Error::RuntimeFailed { runtime, action, id, message },
    }
}

/// Reads the JSON `runc state` prints (the embedded helper prints the same shape).
pub(crate) fn parse_state(stdout: &[u8]) -> Result<State, String> {
    #[derive(Deserialize)]
    struct RawState {
        id: String,
        status: String,
        #[serde(default)]
        pid: i32,
        #[serde(default)]
        bundle: PathBuf,
    }
    let raw: RawState = serde_json::from_slice(stdout).map_err(|error| error.to_string())?;
    Ok(State {
        id: raw.id,
        status: ContainerStatus::parse(&raw.status),
        pid: (raw.pid > 0).then_some(raw.pid),
        bundle: raw.bundle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runc_state() {
        let json = br#"{"ociVersion":"1.0.2-dev","id":"c1","pid":4242,"status":"running","bundle":"/b","rootfs":"/b/rootfs","created":"2024-01-01T00:00:00Z","owner":""}"#;
        let state = parse_state(json).unwrap();
        assert_eq!(
            state,
            State { id: "c1".into(), status: ContainerStatus::Running, pid: Some(4242), bundle: "/b".into() }
        );
        let stopped = parse_state(br#"{"id":"c1","pid":0,"status":"stopped"}"#).unwrap();
        assert_eq!((stopped.status, stopped.pid), (ContainerStatus::Stopped, None));
        assert!(parse_state(b"not json").is_err());
    }

    #[test]
    fn classifies_exec_failures_like_docker() {
        let not_found = r#"runc run failed: unable to start container process: exec: "nosuch": executable file not found in $PATH"#;
        let error = classify_failure("runc", "run", "c1", not_found);
        assert!(matches!(error, Error::ExecutableNotFound { .. }));
        assert_eq!(error.container_start_exit_code(), Some(127));
        let absolute = r#"runc run failed: unable to start container process: exec: "/nosuch": stat /nosuch: no such file or directory"#;
        assert!(matches!(classify_failure("runc", "run", "c1", absolute), Error::ExecutableNotFound { .. }));
        let denied =
            r#"runc run failed: unable to start container process: exec: "/etc/passwd": permission denied"#;
        let error = classify_failure("runc", "run", "c1", denied);
        assert!(matches!(error, Error::PermissionDenied { .. }));
        assert_eq!(error.container_start_exit_code(), Some(126));
        let mount = r#"runc run failed: unable to start container process: error during container init: error mounting "/x" to rootfs at "/y": no such file or directory"#;
        let error = classify_failure("runc", "run", "c1", mount);
        assert!(matches!(&error, Error::RuntimeFailed { message, .. } if message.contains("error mounting")));
        assert_eq!(error.container_start_exit_code(), Some(125));
    }

    #[test]
    fn reads_error_lines_from_a_json_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("runc.log");
        std::fs::write(&log, "{\"level\":\"warning\",\"msg\":\"meh\"}\nnot json\n{\"level\":\"error\",\"msg\":\"boom\",\"time\":\"t\"}\n").unwrap();
        assert_eq!(runtime_errors(&log), vec!["boom".to_string()]);
        assert!(runtime_errors(&dir.path().join("missing.log")).is_empty());
    }

    #[test]
    fn signal_deaths_map_to_128_plus_signal() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn name_is_the_binary_file_name() {
        let runtime = OciRuntime::new("/usr/bin/runc", "/run/berth/runc");
        assert_eq!(runtime.name(), "runc");
        assert_eq!(runtime.state_root(), Path::new("/run/berth/runc"));
    }
}
