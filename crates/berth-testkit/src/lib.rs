//! Test support for berth, never a runtime dependency: the real CNCF Distribution registry started on
//! loopback in its four kinds (plain, basic, mTLS, token), a Docker-protocol token issuer, a test PKI,
//! deterministic test images with their own small uploader, and a fault-injecting proxy.
//!
//! Everything listens on 127.0.0.1 only, lives in temp dirs, and is stopped by PID when dropped.

pub mod http;
pub mod images;
mod jwt;
pub mod pki;
pub mod proxy;
pub mod registry;
mod scratch;
mod spawn;
pub mod testbed;
pub mod token;

pub use http::{reqwest_builder, reqwest_client};
pub use pki::Pki;
pub use proxy::{Fault, Proxy, SeenRequest};
pub use registry::{Kind, Registry};
pub use testbed::{Testbed, jwt_claims};
pub use token::{IssuedToken, TokenIssuer};

/// alice may do everything on every registry that has users.
pub const ALICE: (&str, &str) = ("alice", "wonderland");
/// bob may only pull (token registry); on the basic registry he has no account.
pub const BOB: (&str, &str) = ("bob", "builder");
/// eve has an account on the token issuer but no rights anywhere: her tokens grant nothing, so the
/// registry refuses her even public pulls (a valid credential without the pull right).
pub const EVE: (&str, &str) = ("eve", "nothing");
/// The `service` the token registry names in its challenge and the issuer signs for.
pub const TOKEN_SERVICE: &str = "berth-testkit-registry";
/// The `iss` claim the registry is configured to trust.
pub const TOKEN_ISSUER: &str = "berth-testkit-token-issuer";
