//! berth's command-line integration tests: the real binary against the testkit's real registries.
//! One test binary, so the registries and images are set up once (`Testbed::shared`).

mod util;

mod auth;
mod errors;
mod errors_more;
mod mirrors;
mod pull;
mod rootfs;
mod run;
mod security;
