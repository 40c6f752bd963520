//! berth's side of a container terminal (`process.terminal`) under the embedded runtime. libcontainer
//! creates the pseudo-terminal inside the container and sends its master side over a unix socket as one
//! `SCM_RIGHTS` message, the same console-socket protocol runc follows (runc `docs/terminals.md`,
//! "detached new terminal"), so berth receives it with the code the runc backend uses. Unlike runc, the
//! helper stays in the foreground and waits for the container, so its exit status is still the
//! container's: berth only relays bytes between the master and its own stdio while the helper runs.
//!
//! When berth's stdin is a terminal it is put in raw mode (the container's terminal does the line
//! editing and echo), and the container's terminal takes its size, again whenever it changes: a thread
//! compares the sizes a few times a second instead of catching SIGWINCH, because a signal handler is
//! process-wide and berth's engine may want that signal for itself.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::console::{ConsoleSocket, RawMode, Received, copy_window_size, dup_file};
use crate::error::Error;
use crate::oci::{Stdio, StdioTarget};

/// How long output may keep arriving after the helper exited: a process the container left behind may
/// hold the terminal open, and berth must not wait for it forever.
const OUTPUT_DRAIN: Duration = Duration::from_secs(5);

/// How often the size of berth's terminal is compared with the container's.
const RESIZE_POLL: Duration = Duration::from_millis(200);

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

/// The threads copying between the container's terminal and berth's stdio, and berth's terminal mode.
struct Relay {
    output_done: mpsc::Receiver<()>,
    stop_resizing: Arc<AtomicBool>,
    _raw_mode: Option<RawMode>,
}

type SetupFailure = (&'static str, std::io::Error);

impl Relay {
    fn start(master: File, stdin: StdioTarget, stdout: StdioTarget) -> Result<Relay, SetupFailure> {
        let stdout_is_own = matches!(stdout, StdioTarget::Inherit);
        let input = match stdin {
            StdioTarget::Inherit => Some(dup_file(0).map_err(|source| ("cannot use stdin", source))?),
            StdioTarget::Null => None,
            StdioTarget::File(file) => Some(file),
        };
        let output: Box<dyn Write + Send> = match stdout {
            StdioTarget::Inherit => Box::new(dup_file(1).map_err(|source| ("cannot use stdout", source))?),
            StdioTarget::Null => Box::new(std::io::sink()),
            StdioTarget::File(file) => Box::new(file),
        };
        // The size comes from berth's terminal: its stdin, else its stdout.
        let size_source = input
            .as_ref()
            .map(|input| input.as_raw_fd())
            .filter(|&fd| is_terminal(fd))
            .or_else(|| (stdout_is_own && is_terminal(1)).then_some(1));
        let raw_mode = input.as_ref().and_then(|input| RawMode::enter(input.as_raw_fd()));

        let stop_resizing = Arc::new(AtomicBool::new(false));
        if let Some(fd) = size_source {
            copy_window_size(fd, master.as_raw_fd());
            let from = borrow_owned(fd).map_err(|source| ("cannot use the terminal", source))?;
            let to = master.try_clone().map_err(|source| ("cannot duplicate the terminal", source))?;
            let stop = Arc::clone(&stop_resizing);
            std::thread::spawn(move || follow_window_size(from, to, &stop));
        }
        if let Some(mut input) = input {
            let mut to_master =
                master.try_clone().map_err(|source| ("cannot duplicate the terminal", source))?;
            // Not joined: it may sit in read(2) on berth's stdin after the container is gone; it ends
            // when its next write finds the terminal closed, or with the process.
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut input, &mut to_master);
            });
        }
        let (done, output_done) = mpsc::channel();
        let mut from_master = master;
        std::thread::spawn(move || {
            crate::console::copy_terminal_output(&mut from_master, output);
            let _ = done.send(());
        });
        Ok(Relay { output_done, stop_resizing, _raw_mode: raw_mode })
    }

    /// Lets the output drain (bounded), stops following resizes and restores berth's terminal.
    fn finish(self) {
        let _ = self.output_done.recv_timeout(OUTPUT_DRAIN);
        self.stop_resizing.store(true, Ordering::Relaxed);
    }
}

/// Gives the container's terminal each new size of berth's until told to stop.
fn follow_window_size(from: OwnedFd, to: File, stop: &AtomicBool) {
    let mut last = window_size(from.as_raw_fd());
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(RESIZE_POLL);
        let current = window_size(from.as_raw_fd());
        if current != last {
            copy_window_size(from.as_raw_fd(), to.as_raw_fd());
            last = current;
        }
    }
}

/// Rows and columns of a terminal, None when it is not one.
fn window_size(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: winsize is plain data; TIOCGWINSZ only writes that struct.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        (libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) == 0).then_some((size.ws_row, size.ws_col))
    }
}

fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the fd.
    unsafe { libc::isatty(fd) == 1 }
}

fn borrow_owned(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: `fd` is berth's stdout or a file the relay holds for the duration of this call; the borrow
    // ends with the dup.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()
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

    #[test]
    fn no_window_size_for_a_pipe() {
        let (reader, _writer) = std::io::pipe().unwrap();
        assert_eq!(window_size(reader.as_raw_fd()), None);
        assert!(!is_terminal(reader.as_raw_fd()));
    }
}
