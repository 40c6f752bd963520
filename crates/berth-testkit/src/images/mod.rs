//! Deterministic test images, built in Rust with no network, and a small uploader that pushes them
//! through the registry HTTP API (independent of berth's own client).
