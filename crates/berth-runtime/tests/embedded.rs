//! Real containers through the embedded runtime (libcontainer in a helper process), as root: the
//! conformance suite (tests/conformance) run by `EmbeddedRuntime`, with the test helper binary playing
//! berth's `__embedded-runtime` part, and the cases that only the embedded backend has. Skipped (with a
//! message) when not root or /bin/busybox is missing.

mod common;
mod conformance;

mod embedded {
    use std::fs::File;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use berth_runtime::{EmbeddedRuntime, RunOptions};

    use crate::common::{Backend, Container};

    /// Cargo builds the helper for the integration tests and says where.
    const HELPER: &str = env!("CARGO_BIN_EXE_berth-embedded-helper-test");

    const BACKEND: Backend = Backend {
        id_prefix: "emb",
        needs: || vec![PathBuf::from(HELPER)],
        runtime: |state| Arc::new(EmbeddedRuntime::new(HELPER, state)),
    };

    crate::conformance::suite!(BACKEND);

    /// The helper process is the embedded backend's own: in the foreground it stands where runc would,
    /// and a signal it receives must reach the container's init.
    #[test]
    fn signals_sent_to_the_helper_reach_the_container() {
        if !BACKEND.available() {
            return;
        }
        let container = Container::busybox("forward", &BACKEND);
        // The shell as pid 1 ignores SIGTERM unless it traps it.
        container.write_spec(
            &["sh", "-c", "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done"],
            RunOptions::default(),
        );
        let stdout_path = container.dir.path().join("stdout");
        let helper = std::process::Command::new(HELPER)
            .arg("__embedded-runtime")
            .arg("run")
            .arg(container.dir.path().join("state"))
            .arg(&container.id)
            .arg(container.bundle())
            .arg(container.dir.path().join("run.error"))
            .stdout(File::create(&stdout_path).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !std::fs::read_to_string(&stdout_path).unwrap().contains("ready") {
            assert!(started.elapsed() < Duration::from_secs(30), "container never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: kill(2) only sends a signal, to the helper this test started.
        assert_eq!(unsafe { libc::kill(helper.id() as libc::pid_t, libc::SIGTERM) }, 0);
        let status = helper.wait_with_output().unwrap().status;
        assert_eq!(status.code(), Some(42));
        assert_eq!(std::fs::read_to_string(&stdout_path).unwrap(), "ready\ngot-term\n");
    }
}
