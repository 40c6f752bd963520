//! Real containers through runc, as root: the conformance suite (tests/conformance) run by `OciRuntime`
//! with runc's binary. Each test has its own state root and container id and force-deletes the container
//! when it ends, pass or fail. Skipped (with a message) when not root or runc or /bin/busybox is missing.
//!
//! runc has no cases of its own: everything it must do, the embedded backend must do too.

mod common;
mod conformance;

mod runc {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use berth_runtime::OciRuntime;

    use crate::common::Backend;

    /// The packaged binary; the `/usr/bin` link to it where `/usr/sbin` has none.
    fn binary() -> PathBuf {
        let installed = ["/usr/sbin/runc", "/usr/bin/runc"].into_iter().find(|path| Path::new(path).exists());
        PathBuf::from(installed.unwrap_or("/usr/sbin/runc"))
    }

    const BACKEND: Backend = Backend {
        id_prefix: "rt",
        needs: || vec![binary()],
        runtime: |state| Arc::new(OciRuntime::new(binary(), state)),
    };

    crate::conformance::suite!(BACKEND);
}
