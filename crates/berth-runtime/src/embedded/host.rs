//! berth's side of the embedded runtime: [`EmbeddedRuntime`] implements [`Runtime`] by running the helper
//! process (see the parent module for its command line) and reading back its outcome.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{HELPER_COMMAND, HELPER_NOT_FOUND};
use crate::error::Error;
use crate::oci::{Runtime, State, Stdio, bundle_wants_terminal, exit_code, parse_state};

/// The name this backend gives itself in messages.
const NAME: &str = "embedded";

/// Containers run by libcontainer in a helper process (`helper_exe __embedded-runtime ...`), with their
/// state under `state_root`. `helper_exe` is berth's own binary in production.
#[derive(Clone, Debug)]
pub struct EmbeddedRuntime {
    helper_exe: PathBuf,
    state_root: PathBuf,
}

impl EmbeddedRuntime {
    pub fn new(helper_exe: impl Into<PathBuf>, state_root: impl Into<PathBuf>) -> EmbeddedRuntime {
        EmbeddedRuntime { helper_exe: helper_exe.into(), state_root: state_root.into() }
    }

    pub fn helper_exe(&self) -> &Path {
        &self.helper_exe
    }

    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    /// The helper's command line up to and including the operands every action takes.
    fn command(&self, action: &str, id: &str) -> Command {
        let mut command = Command::new(&self.helper_exe);
        command.arg(HELPER_COMMAND).arg(action).arg(&self.state_root).arg(id);
        command
    }

    fn spawn_error(&self, source: std::io::Error) -> Error {
        Error::RuntimeSpawn { binary: self.helper_exe.clone(), source }
    }

    fn failed(&self, action: &'static str, id: &str, message: String) -> Error {
        Error::RuntimeFailed { runtime: NAME.to_string(), action, id: id.to_string(), message }
    }

    /// Runs a management action; `Ok(None)` when the helper reports that the container does not exist.
    fn management(&self, action: &'static str, id: &str, args: &[&str]) -> Result<Option<Vec<u8>>, Error> {
        let output = self
            .command(action, id)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| self.spawn_error(source))?;
        if output.status.success() {
            return Ok(Some(output.stdout));
        }
        if output.status.code() == Some(HELPER_NOT_FOUND) {
            return Ok(None);
        }
        let message = String::from_utf8_lossy(&output.stderr).trim().to_string();
        tracing::debug!(runtime = NAME, action, id, %message, "embedded runtime helper failed");
        Err(self.failed(
            action,
            id,
            if message.is_empty() { format!("exited with {}", output.status) } else { message },
        ))
    }

    /// Runs `run` or `exec` with the caller's stdio, through a terminal when `terminal` is set; the
    /// container's status, or the helper's error read from `error_file`.
    fn foreground(
        &self,
        action: &'static str,
        id: &str,
        operand: &Path,
        error_file: &Path,
        terminal: bool,
        stdio: Stdio,
    ) -> Result<i32, Error> {
        File::create(error_file).map_err(|source| Error::Write { path: error_file.to_path_buf(), source })?;
        let mut command = self.command(action, id);
        command.arg(operand).arg(error_file);
        let status = if terminal {
            super::terminal::run_with_console(id, command, stdio)
        } else {
            command
                .stdin(stdio.stdin.into_process_stdio())
                .stdout(stdio.stdout.into_process_stdio())
                .stderr(stdio.stderr.into_process_stdio())
                .status()
                .map_err(|source| self.spawn_error(source))
        };
        let message = std::fs::read_to_string(error_file).unwrap_or_default();
        let _ = std::fs::remove_file(error_file);
        let status = status?;
        let message = message.trim();
        if message.is_empty() { Ok(exit_code(status)) } else { Err(classify_failure(action, id, message)) }
    }
}

impl Runtime for EmbeddedRuntime {
    fn name(&self) -> &str {
        NAME
    }

    fn run(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<i32, Error> {
        let terminal = bundle_wants_terminal(bundle)?;
        self.foreground("run", id, bundle, &bundle.join("embedded-run.error"), terminal, stdio)
    }

    fn kill(&self, id: &str, signal: i32) -> Result<(), Error> {
        match self.management("kill", id, &[&signal.to_string()])? {
            Some(_) => Ok(()),
            None => Err(self.failed("kill", id, format!("container {id} does not exist"))),
        }
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), Error> {
        // The `run` helper deletes its container when it ends, so after `run --rm` there is usually
        // nothing left: starting a second helper only to hear that would cost a process per container.
        if !self.state_root.join(id).exists() {
            return Ok(());
        }
        self.management("delete", id, &[if force { "force" } else { "keep" }]).map(drop)
    }

    fn state(&self, id: &str) -> Result<Option<State>, Error> {
        let Some(stdout) = self.management("state", id, &[])? else { return Ok(None) };
        parse_state(&stdout).map(Some).map_err(|reason| Error::InvalidRuntimeOutput {
            runtime: NAME.to_string(),
            action: "state",
            id: id.to_string(),
            reason,
        })
    }

    fn exec(&self, id: &str, process_json: &Path, tty: bool, stdio: Stdio) -> Result<i32, Error> {
        self.foreground("exec", id, process_json, &process_json.with_extension("error"), tty, stdio)
    }
}

/// Sorts a helper failure into the kinds Docker gives distinct exit codes (127, 126, else 125).
/// libcontainer checks the command before it starts the container and words the outcome as
/// `executable 'x' not found in $PATH` and `executable 'x' at path '..' does not have correct
/// permissions`; an execvp(2) failure after that check reads `error 'ENOENT: ...' executing ...`.
fn classify_failure(action: &'static str, id: &str, message: &str) -> Error {
    let (runtime, id, message) = (NAME.to_string(), id.to_string(), message.to_string());
    let executing = message.contains(" executing ");
    if message.contains("not found in $PATH") || (executing && message.contains("ENOENT")) {
        Error::ExecutableNotFound { runtime, id, message }
    } else if message.contains("does not have correct permissions")
        || (executing && message.contains("EACCES"))
    {
        Error::PermissionDenied { runtime, id, message }
    } else {
        Error::RuntimeFailed { runtime, action, id, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_libcontainer_start_failures_like_docker() {
        let not_found = "failed to run container process: exec process failed with error error in executing process : executable 'nosuch' not found in $PATH";
        let error = classify_failure("run", "c1", not_found);
        assert!(matches!(error, Error::ExecutableNotFound { .. }), "{error:?}");
        assert_eq!(error.container_start_exit_code(), Some(127));
        let denied = "executable '/etc/passwd' at path '\"/etc/passwd\"' does not have correct permissions";
        let error = classify_failure("run", "c1", denied);
        assert!(matches!(error, Error::PermissionDenied { .. }), "{error:?}");
        assert_eq!(error.container_start_exit_code(), Some(126));
        let exec = "error 'EACCES: Permission denied' executing '\"/x\"' with args '[]'";
        assert!(matches!(classify_failure("run", "c1", exec), Error::PermissionDenied { .. }));
        let other = "failed to create cgroup: ENOENT";
        let error = classify_failure("run", "c1", other);
        assert!(matches!(&error, Error::RuntimeFailed { message, .. } if message == other));
        assert_eq!(error.container_start_exit_code(), Some(125));
    }

    #[test]
    fn missing_helper_is_a_spawn_error_with_125() {
        let runtime = EmbeddedRuntime::new("/nonexistent/berth-helper", "/tmp/state");
        let error = runtime.state("c1").unwrap_err();
        assert!(
            matches!(&error, Error::RuntimeSpawn { binary, .. } if binary == Path::new("/nonexistent/berth-helper"))
        );
        assert_eq!(error.container_start_exit_code(), Some(125));
        assert_eq!(runtime.name(), "embedded");
    }
}
