//! `berth run`: image → container dir → overlay rootfs → runtime spec → the runtime, in the foreground
//! (berth's exit code is the container's) or detached under a small monitor process that records the exit
//! code and keeps the logs.

use std::path::PathBuf;
use std::sync::Arc;

use berth_reference::Platform;
use berth_runtime::{EmbeddedRuntime, EtcFiles, Network, OciRuntime, RunOptions, Runtime, Stdio};

use crate::container::{self, Container, ContainerDir, Status};
use crate::local::PullPolicy;
use crate::run_options::{parse_mount, parse_volume, read_env_file, resolve_env};
use crate::{Engine, Error, PullObserver};

/// Everything `berth run` was asked, before anything is resolved against the host.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub image: String,
    pub name: Option<String>,
    pub detach: bool,
    pub auto_remove: bool,
    pub interactive: bool,
    pub pull: PullPolicy,
    pub platform: Option<Platform>,
    /// `runc`, `crun`, `youki` or a path; `None` for the default.
    pub runtime: Option<String>,
    /// `-e`, raw (`KEY` alone takes berth's environment).
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub volumes: Vec<String>,
    pub mounts: Vec<String>,
    /// The rest: entrypoint, cmd, workdir, user, hostname, read_only, network, tty, limits.
    pub options: RunOptions,
}

/// How `berth run` ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// The container ran in the foreground and exited with this code.
    Exited(i32),
    /// `-d`: the container's ID.
    Detached(String),
}

/// The runtime built into berth: libcontainer, driven from a single-threaded helper process.
pub const EMBEDDED_RUNTIME: &str = "embedded";

/// The runtime berth uses when `--runtime` is not given (`BERTH_RUNTIME` overrides).
pub const DEFAULT_RUNTIME: &str = EMBEDDED_RUNTIME;

/// How long `run -d` waits for its monitor to report the container started.
const DETACH_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl Engine {
    pub async fn run(
        &self,
        request: RunRequest,
        observer: Arc<dyn PullObserver>,
    ) -> Result<RunOutcome, Error> {
        let image =
            self.local_image(&request.image, request.pull, request.platform.clone(), observer).await?;
        let runtime_name = request
            .runtime
            .clone()
            .or_else(|| std::env::var("BERTH_RUNTIME").ok().filter(|r| !r.is_empty()))
            .unwrap_or_else(|| DEFAULT_RUNTIME.to_string());
        // Fail on a missing runtime before anything is created.
        self.runtime(&runtime_name)?;

        let id = container::new_id()?;
        let name = match &request.name {
            Some(name) => {
                container::validate_name(name)?;
                name.clone()
            }
            None => container::default_name(&id),
        };
        let mut options = request.options.clone();
        options.container_id = Some(id.clone());
        let mut env = Vec::new();
        for file in &request.env_files {
            env.extend(read_env_file(file)?);
        }
        env.extend(request.env.iter().cloned());
        options.env = resolve_env(&env, |key| std::env::var(key).ok());
        for volume in &request.volumes {
            options.mounts.push(parse_volume(volume)?);
        }
        for mount in &request.mounts {
            options.mounts.push(parse_mount(mount)?);
        }
        for bind in &options.mounts {
            std::fs::create_dir_all(&bind.source)
                .map_err(Error::io(format!("creating volume source {}", bind.source.display())))?;
        }

        let dir = ContainerDir::new(&self.paths.containers(), &id);
        let mut record;
        {
            let _lock = self.store.lock()?;
            if self.containers()?.iter().any(|c| c.name == name) {
                return Err(Error::Usage(format!(
                    "the container name {name:?} is already in use: remove it with `berth rm {name}` or pick another"
                )));
            }
            for path in [dir.rootfs(), dir.upper(), dir.work()] {
                std::fs::create_dir_all(&path).map_err(Error::io(format!("creating {}", path.display())))?;
            }
            record = Container {
                id: id.clone(),
                name,
                image: image.reference.to_string(),
                manifest_digest: image.manifest_digest.to_string(),
                command: Vec::new(),
                status: Status::Created,
                created: container::now(),
                started: None,
                finished: None,
                exit_code: None,
                monitor_pid: None,
                auto_remove: request.auto_remove,
                detached: request.detach,
                runtime: runtime_name,
            };
            dir.save(&record)?;
        }
        let prepared = self.prepare(&dir, &image, &options);
        let command = match prepared {
            Ok(command) => command,
            Err(e) => {
                let _ = self.remove_container_files(&dir);
                return Err(e);
            }
        };
        record.command = command;

        if request.detach {
            dir.save(&record)?;
            self.spawn_monitor(&dir).await?;
            return Ok(RunOutcome::Detached(id));
        }
        // In the foreground this process is the supervisor: the record it holds is the current one.
        self.supervise_record(record, foreground_stdio(request.interactive, options.tty))
            .await
            .map(RunOutcome::Exited)
    }

    /// Mounts the rootfs, writes /etc files and config.json. Returns the command the container runs.
    fn prepare(
        &self,
        dir: &ContainerDir,
        image: &crate::local::LocalImage,
        options: &RunOptions,
    ) -> Result<Vec<String>, Error> {
        if image.layers.is_empty() {
            return Err(Error::Corrupt {
                image: image.reference.to_string(),
                reason: "the image has no layers".into(),
            });
        }
        berth_runtime::mount_overlay(&image.layers, &dir.upper(), &dir.work(), &dir.rootfs())
            .map_err(|source| Error::Runtime { container: dir_id(dir), source })?;
        let etc = self.write_etc_files(dir, options)?;
        let spec = berth_runtime::build_spec(&image.config, options, &dir.rootfs(), &etc)
            .map_err(|source| Error::Runtime { container: dir_id(dir), source })?;
        let command = spec.process().as_ref().and_then(|p| p.args().clone()).unwrap_or_default();
        let path = dir.bundle().join("config.json");
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Io {
            context: "encoding config.json".into(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&path, json).map_err(Error::io(format!("writing {}", path.display())))?;
        Ok(command)
    }

    fn write_etc_files(&self, dir: &ContainerDir, options: &RunOptions) -> Result<EtcFiles, Error> {
        let hostname = options.hostname.clone().unwrap_or_else(|| match options.network {
            Network::Host => std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into()),
            Network::None => dir_id(dir)[..12].to_string(),
        });
        let hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
        );
        let resolv = match options.network {
            Network::Host => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            Network::None => String::new(),
        };
        let files = EtcFiles {
            hosts: dir.etc("hosts"),
            resolv_conf: dir.etc("resolv.conf"),
            hostname: dir.etc("hostname"),
        };
        for (path, contents) in
            [(&files.hosts, hosts), (&files.resolv_conf, resolv), (&files.hostname, format!("{hostname}\n"))]
        {
            std::fs::write(path, contents).map_err(Error::io(format!("writing {}", path.display())))?;
        }
        Ok(files)
    }

    /// The runtime called `name`: `embedded` (libcontainer in a helper process that is berth itself), or an
    /// OCI runtime binary by name on PATH or by path.
    pub(crate) fn runtime(&self, name: &str) -> Result<Arc<dyn Runtime + Send + Sync>, Error> {
        if name == EMBEDDED_RUNTIME {
            let exe = std::env::current_exe().map_err(Error::io("finding the berth executable"))?;
            return Ok(Arc::new(EmbeddedRuntime::new(exe, self.paths.root.join("embedded"))));
        }
        let binary = if name.contains('/') {
            PathBuf::from(name)
        } else {
            find_in_path(name).ok_or_else(|| {
                Error::Usage(format!(
                    "the container runtime {name:?} is not installed (looked in PATH); install it (apt-get install {name}), pass --runtime PATH, or use --runtime embedded"
                ))
            })?
        };
        Ok(Arc::new(OciRuntime::new(binary, self.paths.runtime_state())))
    }

    /// Runs a created container to its end, recording its state; forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT
    /// to it. Used by foreground `run` and by the `-d` monitor.
    pub async fn supervise(&self, id: &str, stdio: Stdio) -> Result<i32, Error> {
        let record = ContainerDir::new(&self.paths.containers(), id).load()?;
        self.supervise_record(record, stdio).await
    }

    /// [`Engine::supervise`] with the container's record in hand. Only the supervisor writes the record
    /// while the container runs (`stop` and `kill` signal it, `rm -f` waits for the exit), so it is kept
    /// in memory rather than read back.
    async fn supervise_record(&self, mut record: Container, stdio: Stdio) -> Result<i32, Error> {
        let id = record.id.clone();
        let id = id.as_str();
        let dir = ContainerDir::new(&self.paths.containers(), id);
        let runtime = self.runtime(&record.runtime)?;
        record.status = Status::Running;
        record.started = Some(container::now());
        record.monitor_pid = Some(std::process::id());
        dir.save(&record)?;

        // Handlers first: a signal that came between the container's start and their installation would
        // end berth by its default action and leave the container running unsupervised.
        use tokio::signal::unix::{SignalKind, signal};
        let mut signals = Vec::new();
        for kind in
            [SignalKind::interrupt(), SignalKind::terminate(), SignalKind::hangup(), SignalKind::quit()]
        {
            if let Ok(stream) = signal(kind) {
                signals.push((kind.as_raw_value(), stream));
            }
        }
        let bundle = dir.bundle();
        let run_id = id.to_string();
        let run_runtime = runtime.clone();
        let mut task = tokio::task::spawn_blocking(move || run_runtime.run(&run_id, &bundle, stdio));
        let result = loop {
            let next_signal = futures_util::future::select_all(
                signals
                    .iter_mut()
                    .map(|(number, stream)| Box::pin(async move { stream.recv().await.map(|_| *number) })),
            );
            tokio::select! {
                joined = &mut task => break joined,
                (received, _, _) = next_signal => {
                    if let Some(number) = received {
                        let _ = runtime.kill(id, number);
                    }
                }
            }
        };
        let outcome = result.map_err(|e| Error::Io {
            context: format!("supervising container {id}"),
            source: std::io::Error::other(e.to_string()),
        })?;
        let _ = berth_runtime::unmount(&dir.rootfs());
        let (code, error) = match outcome {
            Ok(code) => (code, None),
            Err(e) => (e.container_start_exit_code().unwrap_or(125), Some(e)),
        };
        record.status = Status::Exited;
        record.finished = Some(container::now());
        record.exit_code = Some(code);
        dir.save(&record)?;
        if record.auto_remove {
            let _ = runtime.delete(id, true);
            self.remove_container_files(&dir)?;
        }
        match error {
            Some(source) => Err(Error::Runtime { container: id.to_string(), source }),
            None => Ok(code),
        }
    }

    /// `run -d`: a detached `berth __monitor ID` in its own session supervises the container with its
    /// output going to the container's log; this returns once the monitor has started it.
    async fn spawn_monitor(&self, dir: &ContainerDir) -> Result<(), Error> {
        let exe = std::env::current_exe().map_err(Error::io("finding the berth executable"))?;
        let id = dir_id(dir);
        let mut command = std::process::Command::new(exe);
        command
            .arg("--root")
            .arg(&self.paths.root)
            .arg("__monitor")
            .arg(&id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: setsid is async-signal-safe and touches only the child's own process state.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(Error::io("starting the container monitor"))?;
        let pid = child.id();
        let deadline = std::time::Instant::now() + DETACH_START_TIMEOUT;
        let runtime = self.runtime(&dir.load()?.runtime)?;
        loop {
            let record = dir.load()?;
            // Started means the runtime knows the container, not just that the monitor began: a `berth
            // exec` or `kill` right after `run -d` must find it.
            let started = match record.status {
                Status::Created => false,
                Status::Exited => true,
                // A runtime may report "stopped" for a container it is still creating (no pid yet);
                // only "running" counts, and a container that is already gone shows up as Exited above.
                Status::Running => runtime
                    .state(&id)
                    .ok()
                    .flatten()
                    .is_some_and(|state| state.status == berth_runtime::ContainerStatus::Running),
            };
            if started {
                return Ok(());
            }
            if !container::process_alive(pid) || std::time::Instant::now() > deadline {
                return Err(Error::Io {
                    context: format!("container {id} did not start; see `berth logs {id}`"),
                    source: std::io::Error::other("the monitor process ended early"),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The `-d` monitor's side: output to the container log, then supervise.
    pub async fn monitor(&self, id: &str) -> Result<i32, Error> {
        let dir = ContainerDir::new(&self.paths.containers(), id);
        let log = dir.log();
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(Error::io(format!("opening {}", log.display())))
        };
        let stdio = Stdio::files(None, open()?, open()?);
        self.supervise(id, stdio).await
    }

    pub(crate) fn remove_container_files(&self, dir: &ContainerDir) -> Result<(), Error> {
        let _ = berth_runtime::unmount(&dir.rootfs());
        match std::fs::remove_dir_all(&dir.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io { context: format!("removing {}", dir.dir.display()), source: e }),
        }
    }
}

/// berth's own streams for a foreground container; stdin only with `-i` or `-t`, as Docker does, so a
/// container never reads a terminal it was not given.
pub(crate) fn foreground_stdio(interactive: bool, tty: bool) -> Stdio {
    if interactive || tty {
        Stdio::inherit()
    } else {
        Stdio {
            stdin: berth_runtime::StdioTarget::Null,
            stdout: berth_runtime::StdioTarget::Inherit,
            stderr: berth_runtime::StdioTarget::Inherit,
        }
    }
}

fn dir_id(dir: &ContainerDir) -> String {
    dir.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}
