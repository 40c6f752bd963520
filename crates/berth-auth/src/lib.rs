//! Credentials for registries and where they come from.
//!
//! This crate exists to answer one question safely: "which credential, if any, goes to this registry for
//! this repository, and where did it come from?" It reads the same files and helpers Docker and podman use
//! (see [`Sources`] for the order), matches keys at path boundaries only, never prints a secret (see
//! [`Secret`]), and writes logins atomically with mode 0600 ([`LoginStore`]). It knows nothing of HTTP.

mod config;
mod error;
pub mod helper;
mod secret;
mod sources;
mod store;
#[cfg(test)]
mod test_support;

pub use error::Error;
pub use secret::{Credential, Secret};
pub use sources::{Found, Source, SourceValues, Sources};
pub use store::{LoginStore, Saved};
