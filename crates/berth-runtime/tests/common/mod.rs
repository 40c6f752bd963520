//! What the runtime integration tests share: a busybox rootfs, a bundle with a spec from `build_spec`, and a
//! container that is force-deleted when the test ends, for whichever backend runs it.
#![allow(dead_code)] // each test binary uses its own part

use std::fs::File;
use std::path::{Path, PathBuf};

use berth_runtime::{Error, EtcFiles, RunOptions, Runtime, Stdio, build_spec, unmount};
use oci_spec::image::{ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder};

pub const APPLETS: &[&str] = &[
    "sh", "echo", "true", "false", "cat", "id", "head", "tail", "dd", "seq", "sleep", "touch", "env", "ls",
    "tty", "wc", "grep", "tr",
];

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
pub struct Container<R: Runtime> {
    pub runtime: R,
    pub id: String,
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
}

impl<R: Runtime> Container<R> {
    /// An empty bundle; `runtime` gets the state root to use. `prefix` keeps the backends' ids apart.
    pub fn new(name: &str, prefix: &str, runtime: impl FnOnce(PathBuf) -> R) -> Container<R> {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("bundle/rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let runtime = runtime(dir.path().join("state"));
        Container { runtime, id: format!("berth-{prefix}-{}-{name}", std::process::id()), dir, rootfs }
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
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

impl<R: Runtime> Drop for Container<R> {
    fn drop(&mut self) {
        let _ = self.runtime.delete(&self.id, true);
        let _ = unmount(&self.rootfs);
    }
}
