//! Where berth keeps things. One place decides every path so that `--root`, root vs. rootless and the XDG
//! variables are handled the same way by every command.

use std::path::{Path, PathBuf};

/// The directories and files one berth invocation uses.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The store: blobs, layers, refs, containers. `/var/lib/berth` for root, `$XDG_DATA_HOME/berth` else.
    pub root: PathBuf,
    /// berth's own configuration directory: `$XDG_CONFIG_HOME/berth` (also for root, like Docker's `~/.docker`).
    pub config_dir: PathBuf,
    /// berth's login file, Docker `config.json` format.
    pub auth_file: PathBuf,
    /// certs.d roots in the order they are searched.
    pub cert_roots: Vec<PathBuf>,
    /// Config files read in order; later ones add to earlier ones.
    pub config_files: Vec<PathBuf>,
}

impl Paths {
    /// Paths from the environment, with `root` overriding the store location.
    pub fn from_env(root: Option<&Path>) -> Paths {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
        let xdg = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .unwrap_or_else(|| home.join(default))
        };
        let is_root = rustix_is_root();
        let root = match root {
            Some(r) => r.to_path_buf(),
            None if is_root => PathBuf::from("/var/lib/berth"),
            None => xdg("XDG_DATA_HOME", ".local/share").join("berth"),
        };
        let config_dir = std::env::var_os("BERTH_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| xdg("XDG_CONFIG_HOME", ".config").join("berth"));
        let cert_roots = vec![
            config_dir.join("certs.d"),
            PathBuf::from("/etc/berth/certs.d"),
            PathBuf::from("/etc/docker/certs.d"),
            PathBuf::from("/etc/containers/certs.d"),
        ];
        let config_files = vec![PathBuf::from("/etc/berth/config.toml"), config_dir.join("config.toml")];
        Paths { auth_file: config_dir.join("auth.json"), root, config_dir, cert_roots, config_files }
    }

    /// Where containers keep their state, upper dirs and logs.
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// The runtime's own state (runc `--root`).
    pub fn runtime_state(&self) -> PathBuf {
        self.root.join("runtime")
    }
}

fn rustix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
