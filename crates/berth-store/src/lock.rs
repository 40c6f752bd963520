//! The store lock: an exclusive `flock` on `root/lock` that serializes changes to the store's namespace
//! (refs.json, new ingest and staging entries, prune).
//!
//! `flock` locks belong to an open file description, so two threads that each open the lock file exclude each
//! other just like two processes do. A thread that already holds the lock through this `Store` would
//! deadlock on its own second `flock`, though (for example an engine holding `lock()` around a pull that then
//! calls `set_ref`), so the lock is re-entrant per thread: a nested `lock()` on the same thread only counts.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, ThreadId};

use crate::Error;

/// Which thread holds the lock through this store, and how many guards it has.
#[derive(Default)]
pub(crate) struct LockState {
    holder: Mutex<Option<(ThreadId, usize)>>,
}

impl LockState {
    fn holder(&self) -> MutexGuard<'_, Option<(ThreadId, usize)>> {
        // A panic while holding this mutex leaves a plain counter behind, still meaningful.
        self.holder.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Holds the store lock until dropped.
pub struct StoreLock {
    state: Arc<LockState>,
    /// `Some` for the outermost guard of a thread, which owns the locked file.
    file: Option<File>,
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("StoreLock").field("outermost", &self.file.is_some()).finish()
    }
}

pub(crate) fn acquire(state: &Arc<LockState>, path: PathBuf, wait: bool) -> Result<Option<StoreLock>, Error> {
    let me = thread::current().id();
    {
        let mut holder = state.holder();
        if let Some((thread, depth)) = holder.as_mut()
            && *thread == me
        {
            *depth += 1;
            return Ok(Some(StoreLock { state: Arc::clone(state), file: None }));
        }
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(Error::io("open lock file", &path))?;
    if wait {
        file.lock().map_err(Error::io("lock", &path))?;
    } else {
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(Error::Io { action: "lock", path, source });
            }
        }
    }
    *state.holder() = Some((me, 1));
    Ok(Some(StoreLock { state: Arc::clone(state), file: Some(file) }))
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let mut holder = self.state.holder();
        if let Some((_, depth)) = holder.as_mut() {
            *depth -= 1;
            if *depth == 0 {
                *holder = None;
            }
        }
        // The outermost guard's file closes after the holder is cleared; closing releases the flock.
        drop(holder);
        self.file.take();
    }
}
