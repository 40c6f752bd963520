//! berth's side of a container terminal (`process.terminal`) under the embedded runtime. libcontainer
//! creates the pseudo-terminal inside the container and sends its master side over a unix socket as one
//! `SCM_RIGHTS` message, the same console-socket protocol runc follows (runc `docs/terminals.md`,
//! "detached new terminal"), so berth receives it with the code the runc backend uses. Unlike runc, the
//! helper stays in the foreground and waits for the container, so its exit status is still the
//! container's: berth only relays bytes between the master and its own stdio while the helper runs, with
//! the same relay as the runc backend (`console::Relay`: raw mode, window size followed).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};

use crate::console::{ConsoleSocket, Received, Relay};
use crate::error::Error;
use crate::oci::Stdio;

/// Spawns the helper `command` with a console socket path appended as its last operand, relays the
/// terminal it sends between the container and `stdio`, and returns the helper's status once it exits.
/// The helper's stderr goes to `stdio.stderr`; its stdin and stdout are /dev/null (the container uses
/// the terminal).
pub(super) fn run_with_console(id: &str, mut command: Command, stdio: Stdio) -> Result<ExitStatus, Error> {
    let setup = |reason: &str, source: std::io::Error| Error::Console {
        id: id.to_string(),
        reason: reason.to_string(),
        source,
    };
    let socket =
        ConsoleSocket::bind("berth-embedded-console").map_err(|(reason, source)| setup(reason, source))?;

    command
        .arg(socket.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stdio.stderr.into_process_stdio());
    let mut child = command
        .spawn()
        .map_err(|source| Error::RuntimeSpawn { binary: PathBuf::from(command.get_program()), source })?;

    let master = match socket.receive_terminal(&mut child) {
        Ok(Received::Terminal(master)) => master,
        // It failed before the container had a terminal; its error file says why.
        Ok(Received::Ended(status)) => return Ok(status),
        Err((reason, source)) => {
            stop(&mut child);
            return Err(setup(reason, source));
        }
    };

    let relay = match Relay::start(master, stdio.stdin, stdio.stdout) {
        Ok(relay) => relay,
        Err((reason, source)) => {
            stop(&mut child);
            return Err(setup(reason, source));
        }
    };
    let status = child.wait().map_err(|source| setup("cannot wait for the helper", source))?;
    relay.finish();
    Ok(status)
}

/// Kills and reaps a helper berth gives up on.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_that_never_connects_returns_its_status() {
        let mut command = Command::new("sh");
        // The socket path lands in $0's arguments; the shell ignores it and fails at once.
        command.args(["-c", "exit 9"]);
        let status = run_with_console("c1", command, Stdio::null()).unwrap();
        assert_eq!(status.code(), Some(9));
    }

    #[test]
    fn a_missing_helper_is_a_spawn_error() {
        let command = Command::new("/nonexistent/berth-helper");
        let error = run_with_console("c1", command, Stdio::null()).unwrap_err();
        assert!(matches!(error, Error::RuntimeSpawn { .. }), "{error:?}");
    }
}
