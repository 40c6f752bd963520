//! Waiting for a container process in the helper while passing signals on to it, as `runc run` does in
//! the foreground: the signals are blocked and taken with sigtimedwait(2) so no handler runs and no thread
//! is needed; SIGCHLD wakes the loop to reap.

use std::io;

/// The signals passed on to the container: what a terminal or a supervisor sends to stop, interrupt or
/// nudge a process. SIGCHLD is the helper's own business.
const FORWARDED: [libc::c_int; 9] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGALRM,
];

/// The forwarded signals and SIGCHLD, blocked for the life of the value.
pub(super) struct BlockedSignals {
    set: libc::sigset_t,
    previous: libc::sigset_t,
}

impl BlockedSignals {
    pub(super) fn block() -> io::Result<BlockedSignals> {
        // SAFETY: sigset_t is plain data initialised by sigemptyset before use; sigprocmask reads `set`
        // and writes `previous`.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in FORWARDED.into_iter().chain([libc::SIGCHLD]) {
                libc::sigaddset(&mut set, signal);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, &mut previous) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(BlockedSignals { set, previous })
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `block`.
        unsafe {
            libc::sigprocmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut());
        }
    }
}

/// Waits until `pid` (a child of this process) exits, passing forwarded signals on to it; its status as
/// a shell reports it (128+N for signal N). Other children that exit meanwhile are reaped.
pub(super) fn wait_forwarding(pid: libc::pid_t, blocked: &BlockedSignals) -> io::Result<i32> {
    loop {
        // A SIGCHLD that arrived before the mask was set is gone, so reap before every wait.
        if let Some(code) = reap(pid)? {
            return Ok(code);
        }
        // A timeout, so that a SIGCHLD taken by another thread (should the caller have one) delays the
        // reaping by at most a second instead of forever.
        let timeout = libc::timespec { tv_sec: 1, tv_nsec: 0 };
        // SAFETY: sigtimedwait reads the set and the timeout; the info pointer may be null.
        let signal = unsafe { libc::sigtimedwait(&blocked.set, std::ptr::null_mut(), &timeout) };
        if signal < 0 {
            let error = io::Error::last_os_error();
            if matches!(error.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                continue;
            }
            return Err(error);
        }
        if signal != libc::SIGCHLD {
            // SAFETY: kill(2) only sends a signal. The process may already be gone; that is harmless.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }
}

/// Reaps every exited child without blocking; `pid`'s status if it was among them.
fn reap(pid: libc::pid_t) -> io::Result<Option<i32>> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only the status integer.
        let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if reaped == 0 {
            return Ok(None);
        }
        if reaped < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if reaped == pid {
            if libc::WIFEXITED(status) {
                return Ok(Some(libc::WEXITSTATUS(status)));
            }
            if libc::WIFSIGNALED(status) {
                return Ok(Some(128 + libc::WTERMSIG(status)));
            }
        }
    }
}
