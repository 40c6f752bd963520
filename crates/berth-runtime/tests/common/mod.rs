//! What the runtime integration tests share: the backend under test, a busybox rootfs, a bundle with a spec
//! from `build_spec`, and a container that is force-deleted when the test ends, for whichever backend runs
//! it. A backend is plain data ([`Backend`]) so that one conformance case can run against every backend.
#![allow(dead_code)] // each test binary uses its own part

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_runtime::{Error, EtcFiles, RunOptions, Runtime, Stdio, build_spec, unmount};
use oci_spec::image::{ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder};

pub const APPLETS: &[&str] = &[
    "sh", "echo", "true", "false", "cat", "id", "head", "tail", "dd", "seq", "sleep", "touch", "env", "ls",
    "tty", "wc", "grep", "tr",
];

/// A runtime behind the trait, shareable with the thread that waits on a running container.
pub type SharedRuntime = Arc<dyn Runtime + Send + Sync>;

/// One runtime backend under test: how to make it and what it needs from this machine.
pub struct Backend {
    /// Goes into container ids, so that the backends' containers never share a name.
    pub id_prefix: &'static str,
    /// Files the backend needs besides root and /bin/busybox (the runtime binary, the helper).
    pub needs: fn() -> Vec<PathBuf>,
    /// The backend keeping its containers' state under the given root.
    pub runtime: fn(PathBuf) -> SharedRuntime,
}

impl Backend {
    /// Whether this machine can run real containers with this backend; says why not when it cannot.
    pub fn available(&self) -> bool {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipping: needs root");
            return false;
        }
        let mut needs = (self.needs)();
        needs.push(PathBuf::from("/bin/busybox"));
        if let Some(missing) = needs.iter().find(|path| !path.exists()) {
            eprintln!("skipping: needs {}", missing.display());
            return false;
        }
        true
    }
}

/// A busybox root filesystem: /bin/busybox, applet links, and accounts root and app (1000).
pub fn populate_rootfs(rootfs: &Path) {
    for dir in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
}

pub fn image(cmd: &[&str]) -> ImageConfiguration {
    let config = ConfigBuilder::default()
        .cmd(cmd.iter().map(|part| part.to_string()).collect::<Vec<_>>())
        .env(vec!["PATH=/bin".to_string()])
        .build()
        .unwrap();
    ImageConfigurationBuilder::default().config(config).build().unwrap()
}

/// One container: its bundle, state root and id; force-deleted on drop.
pub struct Container {
    pub runtime: SharedRuntime,
    pub id: String,
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
}

impl Container {
    /// An empty bundle, and `backend` with a state root of the container's own.
    pub fn new(name: &str, backend: &Backend) -> Container {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("bundle/rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let runtime = (backend.runtime)(dir.path().join("state"));
        let id = format!("berth-{}-{}-{name}", backend.id_prefix, std::process::id());
        Container { runtime, id, dir, rootfs }
    }

    /// A bundle whose rootfs is the busybox one.
    pub fn busybox(name: &str, backend: &Backend) -> Container {
        let container = Container::new(name, backend);
        populate_rootfs(&container.rootfs);
        container
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    /// Where the backend keeps this container's state (its `--root` is `<dir>/state`).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state").join(&self.id)
    }

    pub fn etc_files(&self) -> EtcFiles {
        let etc = self.dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("hosts"), "127.0.0.1 localhost\n").unwrap();
        std::fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        std::fs::write(etc.join("hostname"), "box\n").unwrap();
        EtcFiles {
            hosts: etc.join("hosts"),
            resolv_conf: etc.join("resolv.conf"),
            hostname: etc.join("hostname"),
        }
    }

    pub fn write_spec(&self, cmd: &[&str], opts: RunOptions) {
        let opts = RunOptions { container_id: Some(self.id.clone()), ..opts };
        let spec = build_spec(&image(cmd), &opts, &self.rootfs, &self.etc_files()).unwrap();
        spec.save(self.bundle().join("config.json")).unwrap();
    }

    /// Runs to completion; returns the result and the captured stdout and stderr.
    pub fn run(&self, cmd: &[&str], opts: RunOptions) -> (Result<i32, Error>, String, String) {
        self.write_spec(cmd, opts);
        let stdout_path = self.dir.path().join("stdout");
        let stderr_path = self.dir.path().join("stderr");
        let stdio =
            Stdio::files(None, File::create(&stdout_path).unwrap(), File::create(&stderr_path).unwrap());
        let result = self.runtime.run(&self.id, &self.bundle(), stdio);
        let stdout = std::fs::read_to_string(&stdout_path).unwrap();
        let stderr = std::fs::read_to_string(&stderr_path).unwrap();
        (result, stdout, stderr)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.runtime.delete(&self.id, true);
        let _ = unmount(&self.rootfs);
    }
}
