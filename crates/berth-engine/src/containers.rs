//! The lifecycle commands around `run`: ps, logs, stop, kill, rm, wait, exec, inspect.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use crate::container::{self, Container, ContainerDir, Status};
use crate::{Engine, Error};

/// How often state is polled while waiting for a container to change.
const POLL: Duration = Duration::from_millis(50);

impl Engine {
    /// Every container record, with stale "running" records (their monitor died) corrected.
    pub fn containers(&self) -> Result<Vec<Container>, Error> {
        let dir = self.paths.containers();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::Io { context: format!("listing {}", dir.display()), source: e }),
        };
        let mut containers = Vec::new();
        for entry in entries.flatten() {
            let cdir = ContainerDir { dir: entry.path() };
            if let Ok(mut record) = cdir.load() {
                if record.status == Status::Running
                    && !record.monitor_pid.is_some_and(container::process_alive)
                {
                    record.status = Status::Exited;
                }
                containers.push(record);
            }
        }
        containers.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(containers)
    }

    /// A container by full ID, unique ID prefix or name.
    pub fn container(&self, key: &str) -> Result<Container, Error> {
        let all = self.containers()?;
        if let Some(c) = all.iter().find(|c| c.id == key || c.name == key) {
            return Ok(c.clone());
        }
        let matches: Vec<_> = all.iter().filter(|c| !key.is_empty() && c.id.starts_with(key)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NoSuchContainer(key.to_string())),
            _ => Err(Error::Usage(format!(
                "{key:?} matches {} containers: give more of the ID",
                matches.len()
            ))),
        }
    }

    fn dir(&self, container: &Container) -> ContainerDir {
        ContainerDir::new(&self.paths.containers(), &container.id)
    }

    /// Sends `signal` to a running container.
    pub fn kill(&self, key: &str, signal: i32) -> Result<Container, Error> {
        let container = self.container(key)?;
        if container.status != Status::Running {
            return Err(Error::ContainerState {
                id: container.name.clone(),
                state: container.status.to_string(),
                what: "only a running container can be signalled".into(),
            });
        }
        self.runtime(&container.runtime)?
            .kill(&container.id, signal)
            .map_err(|source| Error::Runtime { container: container.id.clone(), source })?;
        Ok(container)
    }

    /// SIGTERM, then SIGKILL after `timeout` if it is still running. Stopping a stopped container is fine.
    pub async fn stop(&self, key: &str, timeout: Duration) -> Result<Container, Error> {
        let container = self.container(key)?;
        if container.status != Status::Running {
            return Ok(container);
        }
        let _ = self.kill(&container.id, libc::SIGTERM);
        if self.wait_exit(&container.id, Some(timeout)).await?.is_none() {
            let _ = self.kill(&container.id, libc::SIGKILL);
            self.wait_exit(&container.id, Some(Duration::from_secs(30))).await?;
        }
        self.container(&container.id)
    }

    /// Waits until the container has exited; its exit code, or `None` on timeout.
    pub async fn wait_exit(&self, key: &str, timeout: Option<Duration>) -> Result<Option<i32>, Error> {
        let start = Instant::now();
        loop {
            let container = self.container(key)?;
            if container.status == Status::Exited {
                return Ok(Some(container.exit_code.unwrap_or(-1)));
            }
            if timeout.is_some_and(|t| start.elapsed() > t) {
                return Ok(None);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Removes a container; a running one only with `force` (it is killed first).
    pub async fn remove(&self, key: &str, force: bool) -> Result<Container, Error> {
        let container = self.container(key)?;
        if container.status == Status::Running {
            if !force {
                return Err(Error::ContainerState {
                    id: container.name.clone(),
                    state: "running".into(),
                    what: "stop it first or use `berth rm -f`".into(),
                });
            }
            let _ = self.kill(&container.id, libc::SIGKILL);
            self.wait_exit(&container.id, Some(Duration::from_secs(30))).await?;
        }
        if let Ok(runtime) = self.runtime(&container.runtime) {
            let _ = runtime.delete(&container.id, true);
        }
        let _lock = self.store.lock()?;
        self.remove_container_files(&self.dir(&container))?;
        Ok(container)
    }

    /// Copies the container's log to `out`; with `follow`, keeps copying until the container exits.
    pub async fn logs(&self, key: &str, follow: bool, out: &mut (dyn Write + Send)) -> Result<(), Error> {
        let container = self.container(key)?;
        let path = self.dir(&container).log();
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !container.detached => {
                return Err(Error::Usage(format!(
                    "container {} ran in the foreground: its output went to the terminal, not a log",
                    container.name
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::Io { context: format!("opening {}", path.display()), source: e }),
        };
        let mut buffer = vec![0u8; 64 * 1024];
        let mut position = 0u64;
        loop {
            file.seek(SeekFrom::Start(position)).map_err(Error::io(format!("reading {}", path.display())))?;
            loop {
                let n = file.read(&mut buffer).map_err(Error::io(format!("reading {}", path.display())))?;
                if n == 0 {
                    break;
                }
                position += n as u64;
                if out.write_all(&buffer[..n]).is_err() {
                    return Ok(()); // the reader went away (a closed pipe): nothing left to do
                }
            }
            let _ = out.flush();
            if !follow || self.container(&container.id)?.status == Status::Exited {
                // One more read after exit catches the last lines written before the status changed.
                let n = file.read(&mut buffer).unwrap_or(0);
                let _ = out.write_all(&buffer[..n]);
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `command` inside a running container, with the container's env, user and working dir.
    pub async fn exec(
        &self,
        key: &str,
        command: Vec<String>,
        interactive: bool,
        tty: bool,
    ) -> Result<i32, Error> {
        let container = self.container(key)?;
        if container.status != Status::Running {
            return Err(Error::ContainerState {
                id: container.name.clone(),
                state: container.status.to_string(),
                what: "exec needs a running container".into(),
            });
        }
        if command.is_empty() {
            return Err(Error::Usage("exec needs a command".into()));
        }
        let dir = self.dir(&container);
        let config_path = dir.bundle().join("config.json");
        let spec = oci_spec::runtime::Spec::load(&config_path).map_err(|e| Error::Io {
            context: format!("reading {}", config_path.display()),
            source: std::io::Error::other(e.to_string()),
        })?;
        let process = berth_runtime::exec_process(&spec, &command, tty)
            .map_err(|source| Error::Runtime { container: container.id.clone(), source })?;
        let process_path = dir.dir.join(format!("exec-{}.json", &container::new_id()?[..12]));
        let json = serde_json::to_vec(&process).map_err(|e| Error::Io {
            context: "encoding process.json".into(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&process_path, json)
            .map_err(Error::io(format!("writing {}", process_path.display())))?;
        let runtime = self.runtime(&container.runtime)?;
        let id = container.id.clone();
        let path = process_path.clone();
        let stdio = crate::run::foreground_stdio(interactive, tty);
        let result =
            tokio::task::spawn_blocking(move || runtime.exec(&id, &path, tty, stdio)).await.map_err(|e| {
                Error::Io { context: "exec".into(), source: std::io::Error::other(e.to_string()) }
            })?;
        let _ = std::fs::remove_file(&process_path);
        result.map_err(|source| Error::Runtime { container: container.id, source })
    }
}

/// `-s TERM`, `SIGTERM`, `15`, `KILL`...
pub fn parse_signal(value: &str) -> Result<i32, Error> {
    if let Ok(number) = value.parse::<i32>()
        && (1..=64).contains(&number)
    {
        return Ok(number);
    }
    let name = value.trim_start_matches("SIG").trim_start_matches("sig").to_ascii_uppercase();
    let number = match name.as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "ALRM" => libc::SIGALRM,
        "WINCH" => libc::SIGWINCH,
        _ => return Err(Error::Usage(format!("unknown signal {value:?}"))),
    };
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("SIGKILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
