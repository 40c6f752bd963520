//! The crate's one error type. Every variant names what it was working on (a path, a container id, the
//! runtime binary) so a message read alone tells the user where to look.

use std::path::PathBuf;

/// Failures of spec building, mounting and runtime calls.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither the image nor the command line gave a command to run.
    #[error("no command specified: the image has no Entrypoint or Cmd and none was given")]
    NoCommand,

    /// `-u NAME` (or the image's User) names a user the image's passwd file does not have.
    #[error("unable to find user {name}: no matching entries in {}", file.display())]
    UserNotFound { name: String, file: PathBuf },

    /// `-u USER:GROUP` names a group the image's group file does not have.
    #[error("unable to find group {name}: no matching entries in {}", file.display())]
    GroupNotFound { name: String, file: PathBuf },

    /// A run option holds a value berth cannot turn into a spec (negative cpus, tiny memory limit...).
    #[error("invalid {option} {value:?}: {reason}")]
    InvalidOption { option: &'static str, value: String, reason: String },

    /// Reading a file (inside the image's rootfs, or a runtime's state/log file) failed.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Writing a file (config.json, process.json, a log) failed.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The oci-spec builders refused a value; names the part of the spec being built.
    #[error("cannot build the runtime spec ({part}): {reason}")]
    SpecBuild { part: &'static str, reason: String },

    /// A path cannot be placed in an overlay option string (',' and ':' separate options and layers).
    #[error("path {} cannot be used in an overlay mount: it contains '{character}'", path.display())]
    UnsupportedOverlayPath { path: PathBuf, character: char },

    /// The overlay option string is longer than the kernel accepts (one page), even with relative paths.
    #[error(
        "overlay mount on {} needs {length} bytes of options, more than the kernel's limit of {limit} bytes ({layers} layers)",
        target.display()
    )]
    OverlayOptionsTooLong { target: PathBuf, length: usize, limit: usize, layers: usize },

    /// No layer was given to mount.
    #[error("overlay mount on {} needs at least one lower layer", target.display())]
    NoLayers { target: PathBuf },

    /// mount(2) failed.
    #[error("cannot mount {what} on {}", target.display())]
    Mount {
        what: &'static str,
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// umount(2) failed.
    #[error("cannot unmount {}", target.display())]
    Unmount {
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The runtime binary could not be started at all.
    #[error("cannot start the container runtime {}", binary.display())]
    RuntimeSpawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The runtime ran and reported a failure; `message` is what it said.
    #[error("{runtime} {action} {id} failed: {message}")]
    RuntimeFailed { runtime: String, action: &'static str, id: String, message: String },

    /// The container's command does not exist in its rootfs or PATH (Docker exits 127 for this).
    #[error("{runtime} cannot start container {id}: executable file not found: {message}")]
    ExecutableNotFound { runtime: String, id: String, message: String },

    /// The container's command exists but cannot be executed (Docker exits 126 for this).
    #[error("{runtime} cannot start container {id}: permission denied: {message}")]
    PermissionDenied { runtime: String, id: String, message: String },

    /// The runtime printed something berth could not parse (for `state`).
    #[error("{runtime} {action} {id} printed output berth cannot parse: {reason}")]
    InvalidRuntimeOutput { runtime: String, action: &'static str, id: String, reason: String },

    /// Setting up the terminal (console socket, pty copy) failed.
    #[error("terminal setup for container {id} failed: {reason}")]
    Console {
        id: String,
        reason: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The exit status Docker uses when a container cannot start for this reason: 127 for a missing
    /// command, 126 for a command that cannot be executed, 125 for any other failure of the runtime.
    /// `None` for errors that do not come from starting a container.
    pub fn container_start_exit_code(&self) -> Option<i32> {
        match self {
            Error::ExecutableNotFound { .. } => Some(127),
            Error::PermissionDenied { .. } => Some(126),
            Error::RuntimeFailed { .. } | Error::RuntimeSpawn { .. } | Error::Console { .. } => Some(125),
            _ => None,
        }
    }
}
