//! The engine's error: what failed, for which image or container, the cause, and a hint for the user.

use std::path::PathBuf;

/// One typed error for every use case. The CLI prints `Display`, the cause chain, then [`Error::hint`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] berth_reference::Error),

    #[error("cannot pull {image}")]
    Registry {
        image: String,
        #[source]
        source: berth_registry::Error,
    },

    #[error("cannot log in to {registry}")]
    Login {
        registry: String,
        #[source]
        source: berth_registry::Error,
    },

    #[error("cannot read credentials for {registry}")]
    Credentials {
        registry: String,
        #[source]
        source: berth_auth::Error,
    },

    #[error("local image store")]
    Store(#[from] berth_store::Error),

    #[error("cannot unpack layer {digest} of {image}")]
    Unpack {
        image: String,
        digest: String,
        #[source]
        source: berth_unpack::Error,
    },

    #[error("container {}", &container[..container.len().min(12)])]
    Runtime {
        container: String,
        #[source]
        source: berth_runtime::Error,
    },

    #[error("no such container: {0}")]
    NoSuchContainer(String),

    #[error("container {id} is {state}: {what}")]
    ContainerState { id: String, state: String, what: String },

    #[error("image {image} is corrupt: {reason}")]
    Corrupt { image: String, reason: String },

    #[error("image {image} is not in the local store")]
    NotLocal { image: String },

    #[error("config file {}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },

    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// A concrete next step for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        // A full disk can surface from the store, the unpacker or an ingest write: whichever layer
        // reported it, the fix is the same.
        if self.is_disk_full() {
            return Some("the disk is full: free space or run `berth image prune`".into());
        }
        match self {
            Error::Registry { source, .. } | Error::Login { source, .. } => source.hint(),
            Error::Runtime { source, .. } => match source.container_start_exit_code() {
                Some(127) => Some("check the command name and the image's PATH".into()),
                Some(126) => Some("the command exists but is not executable: check its mode".into()),
                _ => None,
            },
            Error::NoSuchContainer(_) => Some("list containers with `berth ps -a`".into()),
            Error::NotLocal { image } => Some(format!("run `berth pull {image}`, or drop `--pull never`")),
            Error::Unpack { source: berth_unpack::Error::Read { .. }, .. } => Some(
                "the layer's data is damaged (in transit or at the registry): try again, and tell the registry's operator if it persists"
                    .into(),
            ),
            Error::Store(berth_store::Error::DigestMismatch { .. }) => Some(
                "the registry sent bytes that do not match their digest, so they were damaged (in transit or at the registry) and nothing was stored: try again, and tell the registry's operator if it persists"
                    .into(),
            ),
            Error::Corrupt { .. } => Some("remove it with `berth rmi` and pull it again".into()),
            Error::Credentials { registry, .. } => Some(format!(
                "fix the credential source named above, or log in again with `berth login {registry}`"
            )),
            _ => None,
        }
    }

    /// Whether an `ENOSPC` is anywhere in the cause chain (also inside an `io::Error` that wraps another
    /// error, whose own `source()` skips that payload).
    fn is_disk_full(&self) -> bool {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self);
        // Bounded: cause chains are short, and a cycle must not hang the error path.
        for _ in 0..32 {
            let Some(error) = current else { return false };
            if let Some(io_error) = error.downcast_ref::<std::io::Error>() {
                if io_error.raw_os_error() == Some(libc::ENOSPC) {
                    return true;
                }
                if let Some(inner) = io_error.get_ref() {
                    current = Some(inner);
                    continue;
                }
            }
            current = error.source();
        }
        false
    }

    /// The exit code `berth run` uses for this failure: Docker's 125/126/127.
    pub fn run_exit_code(&self) -> i32 {
        match self {
            Error::Runtime { source, .. } => source.container_start_exit_code().unwrap_or(125),
            _ => 125,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_deep_in_the_chain_gets_the_prune_hint() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let store = berth_store_io(full);
        let error = Error::Io { context: "ingest".into(), source: std::io::Error::other(store) };
        assert_eq!(error.hint().as_deref(), Some("the disk is full: free space or run `berth image prune`"));
        let other =
            Error::Io { context: "x".into(), source: std::io::Error::from_raw_os_error(libc::EACCES) };
        assert_eq!(other.hint(), None);
    }

    /// A non-io error whose source is the given io error, like the store's and the unpacker's.
    fn berth_store_io(source: std::io::Error) -> Error {
        Error::Io { context: "store".into(), source }
    }
}
