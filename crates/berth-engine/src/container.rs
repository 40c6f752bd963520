//! Container records: one directory per container under the store, holding a `container.json` that every
//! berth process reads and updates under the store lock, so `ps`, `stop` and `rm` from other processes see
//! the same state and never corrupt it.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        })
    }
}

/// What berth remembers about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// The image name as the user typed it, normalized.
    pub image: String,
    pub manifest_digest: String,
    pub command: Vec<String>,
    pub status: Status,
    /// Seconds since the epoch.
    pub created: u64,
    pub started: Option<u64>,
    pub finished: Option<u64>,
    pub exit_code: Option<i32>,
    /// PID of the process that supervises the container (berth itself, or its monitor for `-d`).
    pub monitor_pid: Option<u32>,
    pub auto_remove: bool,
    pub detached: bool,
    pub runtime: String,
}

/// The files of one container.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub dir: PathBuf,
}

impl ContainerDir {
    pub fn new(containers: &Path, id: &str) -> ContainerDir {
        ContainerDir { dir: containers.join(id) }
    }
    pub fn record(&self) -> PathBuf {
        self.dir.join("container.json")
    }
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("container.log")
    }
    pub fn etc(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn load(&self) -> Result<Container, Error> {
        let bytes = std::fs::read(self.record())
            .map_err(Error::io(format!("reading {}", self.record().display())))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Io {
            context: format!("container record {}", self.record().display()),
            source: std::io::Error::other(e),
        })
    }

    /// Writes the record by tmp + rename, so a reader never sees half of it.
    pub fn save(&self, container: &Container) -> Result<(), Error> {
        let tmp = self.dir.join(".container.json.tmp");
        let bytes = serde_json::to_vec_pretty(container).map_err(|e| Error::Io {
            context: "encoding a container record".into(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&tmp, bytes).map_err(Error::io(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, self.record())
            .map_err(Error::io(format!("writing {}", self.record().display())))
    }
}

/// A 64-hex-digit container ID from the kernel's random source.
pub fn new_id() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    let mut file = std::fs::File::open("/dev/urandom").map_err(Error::io("opening /dev/urandom"))?;
    std::io::Read::read_exact(&mut file, &mut bytes).map_err(Error::io("reading /dev/urandom"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A generated name for containers started without `--name`: `berth-` and the first 12 ID characters.
pub fn default_name(id: &str) -> String {
    format!("berth-{}", &id[..12.min(id.len())])
}

/// Container names follow Docker: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        Ok(())
    } else {
        Err(Error::Usage(format!("invalid container name {name:?}: use letters, digits, '_', '.' and '-'")))
    }
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Whether a process still exists (signal 0 probes without sending anything).
pub fn process_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("web-1.a_b").is_ok());
        assert!(validate_name("-web").is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("a/b").is_err());
    }

    #[test]
    fn ids_are_random_hex() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(default_name(&a).len(), "berth-".len() + 12);
    }

    #[test]
    fn record_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = ContainerDir::new(dir.path(), "abc");
        std::fs::create_dir_all(&cdir.dir).unwrap();
        let c = Container {
            id: "abc".into(),
            name: "n".into(),
            image: "i".into(),
            manifest_digest: "d".into(),
            command: vec!["true".into()],
            status: Status::Running,
            created: 1,
            started: Some(2),
            finished: None,
            exit_code: None,
            monitor_pid: Some(1),
            auto_remove: false,
            detached: true,
            runtime: "runc".into(),
        };
        cdir.save(&c).unwrap();
        let back = cdir.load().unwrap();
        assert_eq!(back.status, Status::Running);
        assert_eq!(back.command, vec!["true".to_string()]);
    }
}
