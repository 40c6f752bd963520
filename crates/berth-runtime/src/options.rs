//! The resolved `berth run` options the spec is built from. The CLI parses flags; the engine resolves
//! anything that needs the host (e.g. `-e KEY` without a value takes berth's own environment) before
//! handing these over, so spec building stays free of hidden inputs.

use std::path::PathBuf;

use crate::cgroup::CgroupMode;

/// Everything `berth run` can change about a container, already resolved.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--entrypoint`: `Some(vec![])` (from `--entrypoint ""`) clears the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// The arguments after the image name; empty means "use the image's Cmd".
    pub cmd: Vec<String>,
    /// `-e KEY=VALUE` in command-line order, each with a value (`-e KEY` resolved by the caller).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u name|uid[:group|gid]`.
    pub user: Option<String>,
    /// The container id: names the cgroup (`/berth/<id>`) and gives the default hostname (its first 12
    /// characters). `None` leaves cgroup placement to the runtime.
    pub container_id: Option<String>,
    /// `--hostname`; `None` picks the host's name with `--network host`, else the id's first 12 characters.
    pub hostname: Option<String>,
    /// `-v` / `--mount type=bind`.
    pub mounts: Vec<BindMount>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--network`.
    pub network: Network,
    /// `-t`.
    pub tty: bool,
    /// `--memory` in bytes; swap is held to the same value so a process over it is killed, not swapped.
    pub memory: Option<i64>,
    /// `--cpus`: fraction of CPUs, turned into a CFS quota over a 100 ms period.
    pub cpus: Option<f64>,
    /// `--pids-limit`; zero or negative means unlimited (Docker's convention).
    pub pids_limit: Option<i64>,
    /// The host's cgroup layout; `None` detects it (see [`crate::detect_cgroup_mode`]). A cgroup namespace
    /// is created only on a pure cgroup v2 host, as Docker does.
    pub cgroup_mode: Option<CgroupMode>,
    /// `--security-opt seccomp=unconfined`: leave out berth's default seccomp deny-list.
    pub seccomp_unconfined: bool,
}

/// A host path bound into the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// The network namespace choice. berth has no bridge networking yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// A private network namespace holding only the loopback interface (`--network none`).
    #[default]
    None,
    /// The host's network namespace (`--network host`).
    Host,
}

/// Files berth writes per container and binds over the image's own copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcFiles {
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    pub hostname: PathBuf,
}
