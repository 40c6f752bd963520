//! Scratch space for everything a test process starts.
//!
//! Shared fixtures live in statics that are never dropped, so their temp dirs (registry storage holds
//! hundreds of MiB of seeded images) would pile up in `$TMPDIR` run after run. Instead every process
//! gets `$TMPDIR/berth-testkit-<pid>`, and creating it removes the dirs of processes that are gone.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;

const PREFIX: &str = "berth-testkit-";

/// `$TMPDIR/berth-testkit-<pid>`, created on first use; stale siblings of dead processes are removed.
static DIR: OnceLock<PathBuf> = OnceLock::new();

pub(crate) fn process_dir() -> anyhow::Result<&'static Path> {
    if let Some(dir) = DIR.get() {
        return Ok(dir);
    }
    let temp = std::env::temp_dir();
    remove_stale(&temp);
    let dir = temp.join(format!("{PREFIX}{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = DIR.get_or_init(|| dir);
    // Statics are never dropped, but exit(3) runs atexit handlers: the test harness ends with
    // process::exit, so a normal end removes the dir; a killed process leaves it to the next sweep.
    // SAFETY: registering a plain extern "C" function that takes no arguments.
    unsafe { libc::atexit(remove_process_dir) };
    Ok(dir)
}

extern "C" fn remove_process_dir() {
    if let Some(dir) = DIR.get() {
        let _ = fs::remove_dir_all(dir);
    }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission; it sends nothing.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

fn remove_stale(temp: &Path) {
    let Ok(entries) = fs::read_dir(temp) else { return };
    // Bounded: one pass over the temp dir.
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.strip_prefix(PREFIX)) else { continue };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        if pid > 0 && pid != std::process::id() as i32 && !process_alive(pid) {
            // Best effort: a dir we cannot remove only costs disk space.
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_dir_names_this_process() {
        let dir = process_dir().unwrap();
        assert!(dir.is_dir());
        assert!(dir.ends_with(format!("{PREFIX}{}", std::process::id())));
        assert!(process_alive(std::process::id() as i32));
    }
}
