//! Spawning child processes that die with the test process.
//!
//! Shared fixtures live in statics, which Rust never drops, so Drop cannot stop their processes. The
//! kernel can: `PR_SET_PDEATHSIG(SIGKILL)` kills a child when its parent goes away. "Parent" is the
//! thread that forked it (prctl(2): the signal is sent when that thread terminates), so every child is
//! forked from one dedicated thread that never exits.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use anyhow::Context;

type Reply = mpsc::Sender<std::io::Result<Child>>;

fn spawner() -> anyhow::Result<&'static Mutex<mpsc::Sender<(Command, Reply)>>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<(Command, Reply)>>> = OnceLock::new();
    if let Some(sender) = SPAWNER.get() {
        return Ok(sender);
    }
    let (sender, requests) = mpsc::channel::<(Command, Reply)>();
    let sender = SPAWNER.get_or_init(|| Mutex::new(sender));
    // A second caller racing here would start a second thread whose sender is dropped immediately; that
    // thread then ends with an empty queue, having spawned nothing, so it is harmless.
    std::thread::Builder::new()
        .name("testkit-spawner".into())
        .spawn(move || {
            // Runs for the life of the process: the static sender is never dropped.
            for (mut command, reply) in requests {
                let _ = reply.send(command.spawn());
            }
        })
        .context("spawning the process-spawner thread")?;
    Ok(sender)
}

/// Spawns `command` from the spawner thread with `PR_SET_PDEATHSIG(SIGKILL)`.
pub(crate) fn spawn_tied(mut command: Command) -> anyhow::Result<Child> {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe functions
    // (prctl, getppid, kill), allocating nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect; then nobody would ever signal us.
            if libc::getppid() != parent {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            Ok(())
        });
    }
    let (reply, answer) = mpsc::channel();
    {
        let sender = spawner()?.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sender.send((command, reply)).ok().context("the spawner thread is gone")?;
    }
    let child = answer.recv().ok().context("the spawner thread dropped the request")?;
    child.context("spawning a child process")
}
