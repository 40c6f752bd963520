//! berth-runtime turns an image configuration plus `berth run` options into an OCI runtime spec, prepares
//! the container's root filesystem (overlay mount), and drives an OCI runtime binary (runc conventions).
//!
//! Why a crate of its own: this is the only place that knows about kernels, mounts and runtimes. It must
//! never depend on the registry, auth or store crates; it receives paths (layer dirs, etc files) and plain
//! options, and returns specs, exit codes and errors. Spec building ([`build_spec`]) is pure apart from
//! reading the image's `/etc/passwd` and `/etc/group`, so most rules are unit-tested without root.
//!
//! Order of use in `berth run`: [`mount_overlay`] the image's layers into `<bundle>/rootfs`, [`build_spec`]
//! and write it as `<bundle>/config.json`, [`Runtime::run`] in the foreground (or from a monitor process for
//! detached containers), then [`Runtime::delete`] and [`unmount`].
//!
//! Notes for the engine:
//! - Detached containers: a small monitor process calls [`Runtime::run`] with [`Stdio::files`] pointing at
//!   the log file and records the returned exit status. `run` blocks until the container exits and
//!   returns its status (128+N for signal N); a failure to start is an `Err`, with
//!   [`Error::container_start_exit_code`] giving Docker's 127/126/125.
//! - Signals: in the foreground runc forwards the signals it receives to the container. A Ctrl-C reaches
//!   runc through the terminal's process group; a signal sent to berth alone must be passed on with
//!   [`Runtime::kill`], and berth must not exit before `run` returns.
//! - A runtime failure is also printed by runc on its stderr (the container's stderr).
//! - `-t`: on berth's own terminal runc relays it; with files or no controlling terminal berth runs
//!   runc detached with a console socket and becomes a child subreaper to wait for the container
//!   (see the `console` module), which follows berth's window size there too.

mod cgroup;
mod console;
pub mod embedded;
mod error;
mod mounts;
mod oci;
mod options;
mod overlay;
mod seccomp;
mod spec;
mod user;

pub use cgroup::{CgroupMode, detect_cgroup_mode, memory_swap_supported};
pub use embedded::EmbeddedRuntime;
pub use error::Error;
pub use oci::{ContainerStatus, OciRuntime, Runtime, State, Stdio, StdioTarget};
pub use options::{BindMount, EtcFiles, Network, RunOptions};
pub use overlay::{mount_overlay, mount_read_only_layers, unmount};
pub use spec::{DEFAULT_PATH, build_spec, cgroups_path, exec_process, resolve_process_args};
pub use user::{ResolvedUser, resolve_user};
