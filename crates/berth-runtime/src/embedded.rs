//! The embedded runtime backend: containers created by libcontainer (the library under youki) instead of
//! an external runc binary.
//!
//! Why a helper process: libcontainer forks and clones while it builds a container, and forking a
//! multi-threaded process (berth's engine runs in tokio) leaves the child with locks held by threads that
//! no longer exist. So every operation re-executes berth's own binary as
//! `<helper_exe> __embedded-runtime <action> ...`, and that process, which never starts a thread before the
//! container exists, makes the libcontainer calls. berth's `main` must call [`helper_main`] with the
//! arguments after [`HELPER_COMMAND`] before it starts a runtime or a thread.
//!
//! The helper's command line (positional, all operands given on every call):
//! - `run STATE_ROOT ID BUNDLE ERROR_FILE [CONSOLE_SOCKET]`: create, start, wait, delete; exits with the
//!   container's status.
//! - `exec STATE_ROOT ID PROCESS_JSON ERROR_FILE [CONSOLE_SOCKET]`: run one more process in the
//!   container; its status.
//! - `kill STATE_ROOT ID SIGNAL`, `delete STATE_ROOT ID force|keep`, `state STATE_ROOT ID`.
//!
//! Telling the container's status from the helper's own failure works as with runc's json log: before it
//! exits, a failing `run`/`exec` writes its error text to ERROR_FILE; an empty file means the exit status
//! is the container's. The text also goes to the helper's stderr, which is the container's stderr.
//! Management actions exit 0 on success, [`HELPER_NOT_FOUND`] for an unknown container, 1 otherwise with
//! the message on stderr. `state` prints the same JSON shape as `runc state`.
//!
//! A terminal (`process.terminal` for `run`, the process file's `terminal` for `exec`) needs
//! CONSOLE_SOCKET: the path of a unix socket berth listens on, where libcontainer sends the master side of
//! the container's pseudo-terminal (see the `terminal` module); the helper still runs in the foreground.

mod adapt;
mod cleanup;
mod helper;
mod host;
mod signals;
mod terminal;

pub use helper::helper_main;
pub use host::EmbeddedRuntime;

/// The first argument that turns berth's binary into the embedded runtime's helper.
pub const HELPER_COMMAND: &str = "__embedded-runtime";

/// The helper's exit status for "no such container" in `kill`, `delete` and `state`.
pub const HELPER_NOT_FOUND: i32 = 4;
