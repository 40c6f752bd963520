//! The terminal of a `-t` container when berth has no controlling terminal to lend it (a detached
//! container's monitor, tests). In the foreground on a real terminal runc does all of this itself; here it
//! must run detached (`--detach`), because runc refuses a console socket otherwise: it creates a
//! pseudo-terminal inside the container and sends the master side over the unix socket named by
//! `--console-socket`, as one `SCM_RIGHTS` control message (runc `docs/terminals.md`, "detached new
//! terminal"). berth receives that fd and relays it ([`Relay`], shared with the embedded runtime) until
//! the container exits.
//!
//! Waiting for a detached container: berth makes itself a child subreaper (prctl(2)
//! `PR_SET_CHILD_SUBREAPER`), so when runc exits after starting the container, the container's init is
//! reparented to berth, which can then waitpid(2) it for its exit status like a foreground run. The
//! subreaper flag is process-wide and stays set.
//!
//! The relay: when berth's stdin is a terminal it is put in raw mode (the container's terminal does the
//! line editing and echo), and the container's terminal takes its size, again whenever it changes: a
//! thread compares the sizes a few times a second instead of catching SIGWINCH, because a signal handler
//! is process-wide and berth's engine may want that signal for itself.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::oci::{Stdio, StdioTarget};

/// How long runc may take to create the container and send the terminal.
pub(crate) const CONSOLE_WAIT: Duration = Duration::from_secs(120);

static SOCKET_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) enum ConsoleError {
    /// The runtime binary could not be started.
    Spawn(std::io::Error),
    /// Anything about the socket, terminal or waiting.
    Setup(Error),
}

/// How a detached run with a console ended.
pub(crate) enum ConsoleOutcome {
    /// runc itself failed (before or while starting the container); its log says why.
    RuntimeFailed(ExitStatus),
    /// The container's process exited with this status (128+N for signal N).
    Exited(i32),
}

/// Runs `command` (global options and subcommand, without the id) detached with a console socket, relays
/// the terminal between the container and `stdio`, and waits for the container's process.
pub(crate) fn run_detached_with_console(
    id: &str,
    mut command: Command,
    stdio: Stdio,
) -> Result<ConsoleOutcome, ConsoleError> {
    let setup = |reason: &str, source: std::io::Error| {
        ConsoleError::Setup(Error::Console { id: id.to_string(), reason: reason.to_string(), source })
    };
    // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument and changes only this process's flag.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(setup("cannot become a child subreaper", std::io::Error::last_os_error()));
    }
    let socket = ConsoleSocket::bind("berth-console").map_err(|(reason, source)| setup(reason, source))?;
    let pid_path = socket.path().with_extension("pid");
    let _cleanup = RemoveOnDrop(vec![pid_path.clone()]);

    command
        .args(["--detach", "--console-socket"])
        .arg(socket.path())
        .arg("--pid-file")
        .arg(&pid_path)
        .arg(id);
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stdio.stderr.into_process_stdio());
    let mut child = command.spawn().map_err(ConsoleError::Spawn)?;

    let master = match socket.receive_terminal(&mut child) {
        Ok(Received::Terminal(master)) => master,
        Ok(Received::Ended(status)) => return Ok(ConsoleOutcome::RuntimeFailed(status)),
        Err((reason, source)) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(setup(reason, source));
        }
    };

    let relay =
        Relay::start(master, stdio.stdin, stdio.stdout).map_err(|(reason, source)| setup(reason, source))?;

    let runtime_status = child.wait().map_err(|source| setup("cannot wait for the runtime", source))?;
    if !runtime_status.success() {
        return Ok(ConsoleOutcome::RuntimeFailed(runtime_status));
    }
    let pid = std::fs::read_to_string(&pid_path)
        .map_err(|source| setup("cannot read the container's pid file", source))?
        .trim()
        .parse::<libc::pid_t>()
        .map_err(|_| {
            setup("the container's pid file holds no pid", std::io::ErrorKind::InvalidData.into())
        })?;
    let code = wait_for(pid).map_err(|source| setup("cannot wait for the container's process", source))?;
    relay.finish();
    Ok(ConsoleOutcome::Exited(code))
}

/// waitpid(2) for a process reparented to berth; the status as a shell reports it.
fn wait_for(pid: libc::pid_t) -> std::io::Result<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only the status integer.
        let result = unsafe { libc::waitpid(pid, &mut status, 0) };
        if result == pid {
            if libc::WIFEXITED(status) {
                return Ok(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                return Ok(128 + libc::WTERMSIG(status));
            }
            continue;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Whether berth can lend its own terminal to runc: stdin and stdout are berth's and it has a
/// controlling terminal (runc opens /dev/tty to put it in raw mode).
pub(crate) fn has_controlling_terminal() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").is_ok()
}

/// The listening end of a console socket: the runtime connects to it and sends the master side of the
/// container's terminal. It lives in the temp dir under a name unique to this process, because sun_path
/// holds only 108 bytes, too few for some bundle paths; the socket file is removed when this is dropped.
pub(crate) struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

/// What came of waiting on a console socket.
pub(crate) enum Received {
    /// The master side of the container's terminal.
    Terminal(File),
    /// The runtime ended before it sent one (its own error output says why).
    Ended(ExitStatus),
}

impl ConsoleSocket {
    /// A fresh socket named `<prefix>-<pid>-<n>.sock`; on failure, what failed and why.
    pub(crate) fn bind(prefix: &str) -> Result<ConsoleSocket, (&'static str, std::io::Error)> {
        let unique = format!("{}-{}", std::process::id(), SOCKET_COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(format!("{prefix}-{unique}.sock"));
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).map_err(|source| ("cannot create the console socket", source))?;
        let socket = ConsoleSocket { listener, path };
        socket
            .listener
            .set_nonblocking(true)
            .map_err(|source| ("cannot configure the console socket", source))?;
        Ok(socket)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Waits (up to [`CONSOLE_WAIT`]) until the runtime `child` connects and sends the terminal, or ends
    /// first. On an error the child is left as it is: the caller stops it.
    pub(crate) fn receive_terminal(
        &self,
        child: &mut Child,
    ) -> Result<Received, (&'static str, std::io::Error)> {
        let started = Instant::now();
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Some(status) =
                        child.try_wait().map_err(|source| ("cannot wait for the runtime", source))?
                    {
                        return Ok(Received::Ended(status));
                    }
                    if started.elapsed() > CONSOLE_WAIT {
                        return Err((
                            "the runtime never sent the terminal",
                            std::io::ErrorKind::TimedOut.into(),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(source) => return Err(("cannot accept on the console socket", source)),
            }
        };
        match receive_fd(&stream) {
            Ok(master) => Ok(Received::Terminal(File::from(master))),
            Err(source) => match child.try_wait() {
                // A runtime that connected and then died has its own error to report.
                Ok(Some(status)) => Ok(Received::Ended(status)),
                _ => Err(("cannot receive the terminal from the runtime", source)),
            },
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub(crate) struct RemoveOnDrop(pub(crate) Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub(crate) fn dup_file(fd: RawFd) -> std::io::Result<File> {
    // SAFETY: fds 0 and 1 stay open for the life of the process; the borrow ends with the dup.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    Ok(File::from(borrowed.try_clone_to_owned()?))
}

/// Receives one fd sent with SCM_RIGHTS (unix(7), cmsg(3)).
pub(crate) fn receive_fd(stream: &UnixStream) -> std::io::Result<OwnedFd> {
    stream.set_nonblocking(false)?;
    let mut name = [0u8; 4096];
    let mut iov = libc::iovec { iov_base: name.as_mut_ptr().cast(), iov_len: name.len() };
    // Room for one control message holding one int, aligned as cmsghdr requires.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is a plain C struct; zeroed is a valid starting value.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every pointer in `message` refers to a live buffer of the stated length.
    let received = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut message, libc::MSG_CMSG_CLOEXEC) };
    if received < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: CMSG_FIRSTHDR/CMSG_DATA walk the control buffer the kernel just filled, within msg_controllen.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        if header.is_null()
            || (*header).cmsg_level != libc::SOL_SOCKET
            || (*header).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no file descriptor in the console message",
            ));
        }
        let fd: RawFd = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Gives the container's terminal the size of berth's, when berth has one.
pub(crate) fn copy_window_size(from: RawFd, to: RawFd) {
    // SAFETY: winsize is plain data; the ioctls only read/write that struct.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &size);
        }
    }
}

/// berth's terminal in raw mode for the life of the value; restored on drop.
pub(crate) struct RawMode {
    /// Its own copy of the fd: the copy thread may close the original before this is dropped.
    fd: OwnedFd,
    saved: libc::termios,
}

impl RawMode {
    pub(crate) fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: termios is plain data filled by tcgetattr; the calls fail harmlessly on a non-terminal;
        // `fd` is open for the duration of this call (the caller holds it).
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::isatty(fd) != 1 || libc::tcgetattr(fd, &mut saved) != 0 {
                return None;
            }
            let owned = std::os::fd::BorrowedFd::borrow_raw(fd).try_clone_to_owned().ok()?;
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            (libc::tcsetattr(fd, libc::TCSANOW, &raw) == 0).then_some(RawMode { fd: owned, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read from the same fd in `enter`.
        unsafe {
            libc::tcsetattr(self.fd.as_raw_fd(), libc::TCSANOW, &self.saved);
        }
    }
}

/// Copies what the container writes to its terminal until the terminal is gone. The master reads EIO once
/// every slave fd is closed, i.e. when the container's processes that had the terminal have exited.
pub(crate) fn copy_terminal_output(master: &mut File, mut output: Box<dyn Write + Send>) {
    let mut buffer = [0u8; 8192];
    while let Ok(count) = master.read(&mut buffer) {
        if count == 0 || output.write_all(&buffer[..count]).is_err() {
            break;
        }
        let _ = output.flush();
    }
}

/// How long output may keep arriving after the runtime's process exited: a process the container left behind may
/// hold the terminal open, and berth must not wait for it forever.
const OUTPUT_DRAIN: Duration = Duration::from_secs(5);

/// How often the size of berth's terminal is compared with the container's.
const RESIZE_POLL: Duration = Duration::from_millis(200);

/// The threads copying between the container's terminal and berth's stdio, and berth's terminal mode.
pub(crate) struct Relay {
    output_done: mpsc::Receiver<()>,
    stop_resizing: Arc<AtomicBool>,
    _raw_mode: Option<RawMode>,
}

pub(crate) type SetupFailure = (&'static str, std::io::Error);

impl Relay {
    /// Starts relaying between the container's terminal `master` and berth's `stdin` / `stdout`.
    pub(crate) fn start(
        master: File,
        stdin: StdioTarget,
        stdout: StdioTarget,
    ) -> Result<Relay, SetupFailure> {
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

        if let Some(mut input) = input {
            let mut to_master =
                master.try_clone().map_err(|source| ("cannot duplicate the terminal", source))?;
            // Not joined: it may sit in read(2) on berth's stdin after the container is gone; it ends
            // when its next write finds the terminal closed, or with the process.
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut input, &mut to_master);
            });
        }
        // Last, so that no failure above leaves a resize thread without a Relay to stop it.
        let stop_resizing = Arc::new(AtomicBool::new(false));
        if let Some(fd) = size_source {
            copy_window_size(fd, master.as_raw_fd());
            let from = borrow_owned(fd).map_err(|source| ("cannot use the terminal", source))?;
            let to = master.try_clone().map_err(|source| ("cannot duplicate the terminal", source))?;
            let stop = Arc::clone(&stop_resizing);
            std::thread::spawn(move || follow_window_size(from, to, &stop));
        }
        let (done, output_done) = mpsc::channel();
        let mut from_master = master;
        std::thread::spawn(move || {
            copy_terminal_output(&mut from_master, output);
            let _ = done.send(());
        });
        Ok(Relay { output_done, stop_resizing, _raw_mode: raw_mode })
    }

    /// Lets the output drain (bounded), then ends the relay as dropping it does.
    pub(crate) fn finish(self) {
        let _ = self.output_done.recv_timeout(OUTPUT_DRAIN);
    }
}

impl Drop for Relay {
    /// Stops following resizes; berth's terminal mode is restored as `_raw_mode` drops. Dropping without
    /// [`Relay::finish`] (the runtime failed) does not wait for output.
    fn drop(&mut self) {
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
    fn no_window_size_for_a_pipe() {
        let (reader, _writer) = std::io::pipe().unwrap();
        assert_eq!(window_size(reader.as_raw_fd()), None);
        assert!(!is_terminal(reader.as_raw_fd()));
    }
}
