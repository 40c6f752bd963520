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

mod cgroup;
mod console;
mod error;
mod mounts;
mod oci;
mod options;
mod overlay;
mod seccomp;
mod spec;
mod user;

pub use cgroup::{CgroupMode, detect_cgroup_mode, memory_swap_supported};
pub use error::Error;
pub use oci::{ContainerStatus, OciRuntime, Runtime, State, Stdio, StdioTarget};
pub use options::{BindMount, EtcFiles, Network, RunOptions};
pub use overlay::{mount_overlay, mount_read_only_layers, unmount};
pub use spec::{DEFAULT_PATH, build_spec, cgroups_path, exec_process, resolve_process_args};
pub use user::{ResolvedUser, resolve_user};
