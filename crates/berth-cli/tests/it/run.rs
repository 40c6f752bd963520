//! `berth run` and the commands around it, with real containers (runc) on this machine's kernel.

use std::time::Duration;

use berth_testkit::{ALICE, Kind};

use crate::util::{Sandbox, image, testbed};

fn busybox() -> String {
    image(Kind::Plain, "testbed/busybox:1")
}

#[test]
fn echo_hello_from_every_registry_kind() {
    let sandbox = Sandbox::new();
    sandbox.trust_testbed();
    sandbox.login(&testbed().token.host(), ALICE).success();
    let creds = format!("{}:{}", ALICE.0, ALICE.1);
    for kind in Kind::ALL {
        let reference = image(kind, "testbed/busybox:1");
        let mut args = vec!["run", "--rm"];
        if kind == Kind::Basic {
            args.extend(["--creds", &creds]);
        }
        args.extend([reference.as_str(), "echo", "hello"]);
        let run = sandbox.berth(&args).success();
        assert_eq!(run.stdout, "hello\n", "from {}", kind.name());
    }
}

#[test]
fn exit_codes_are_the_containers_or_dockers() {
    let sandbox = Sandbox::new();
    assert_eq!(sandbox.berth(&["run", "--rm", &busybox(), "sh", "-c", "exit 3"]).code, 3);
    let missing = sandbox.berth(&["run", "--rm", &busybox(), "no-such-command"]);
    assert_eq!(missing.code, 127, "{}", missing.stderr);
    assert!(missing.stderr.contains("hint: "), "{}", missing.stderr);
    let not_executable = sandbox.berth(&["run", "--rm", &busybox(), "/etc/passwd"]);
    assert_eq!(not_executable.code, 126, "{}", not_executable.stderr);
    let no_image =
        sandbox.berth(&["run", "--rm", "--pull", "never", &image(Kind::Plain, "testbed/multi:1"), "true"]);
    assert_eq!(no_image.code, 125, "{}", no_image.stderr);
}

#[test]
fn the_layer_semantics_image_checks_out_under_both_runtimes() {
    let sandbox = Sandbox::new();
    for runtime in ["embedded", "runc"] {
        let run = sandbox
            .berth(&[
                "run",
                "--rm",
                "--runtime",
                runtime,
                &image(Kind::Plain, "testbed/layers:1"),
                "/check.sh",
            ])
            .success();
        assert!(run.stdout.contains("ALL OK"), "{runtime}: {}", run.stdout);
    }
}

#[test]
fn runc_backend_runs_and_reports_exit_codes() {
    let sandbox = Sandbox::new();
    let run = sandbox.berth(&["run", "--rm", "--runtime", "runc", &busybox(), "echo", "hello"]).success();
    assert_eq!(run.stdout, "hello\n");
    assert_eq!(
        sandbox.berth(&["run", "--rm", "--runtime", "runc", &busybox(), "sh", "-c", "exit 3"]).code,
        3
    );
    assert_eq!(sandbox.berth(&["run", "--rm", "--runtime", "runc", &busybox(), "nope"]).code, 127);
    let id = sandbox.berth(&["run", "-d", "--runtime", "runc", &busybox(), "sleep", "60"]).success().stdout;
    let exec = sandbox.berth(&["exec", id.trim(), "echo", "in-runc"]).success();
    assert_eq!(exec.stdout, "in-runc\n");
    sandbox.berth(&["rm", "-f", id.trim()]).success();
}

#[test]
fn env_workdir_user_and_entrypoint() {
    let mut sandbox = Sandbox::new();
    sandbox.env("FROM_BERTH", "inherited");
    let env_file = sandbox.write("env.list", "# comment\nFILE_VAR=from-file\n");
    let run = sandbox
        .berth(&[
            "run",
            "--rm",
            "-e",
            "A=1",
            "-e",
            "FROM_BERTH",
            "--env-file",
            &env_file.display().to_string(),
            "-w",
            "/tmp",
            "-u",
            "65534:65534",
            &busybox(),
            "sh",
            "-c",
            "echo $A $FROM_BERTH $FILE_VAR $(pwd) $(id -u):$(id -g)",
        ])
        .success();
    assert_eq!(run.stdout, "1 inherited from-file /tmp 65534:65534\n");
    let entry =
        sandbox.berth(&["run", "--rm", "--entrypoint", "echo", &busybox(), "from", "entrypoint"]).success();
    assert_eq!(entry.stdout, "from entrypoint\n");
    let named_user = sandbox.berth(&["run", "--rm", "-u", "nobody", &busybox(), "id", "-un"]).success();
    assert_eq!(named_user.stdout, "nobody\n");
}

#[test]
fn volumes_and_read_only() {
    let sandbox = Sandbox::new();
    let host_dir = sandbox.path().join("shared");
    std::fs::create_dir_all(&host_dir).expect("dir");
    std::fs::write(host_dir.join("in.txt"), "from host").expect("write");
    let volume = format!("{}:/data", host_dir.display());
    let run = sandbox
        .berth(&[
            "run",
            "--rm",
            "-v",
            &volume,
            &busybox(),
            "sh",
            "-c",
            "cat /data/in.txt; echo out > /data/out.txt",
        ])
        .success();
    assert_eq!(run.stdout, "from host");
    assert_eq!(std::fs::read_to_string(host_dir.join("out.txt")).expect("written by the container"), "out\n");
    let ro = format!("{}:/data:ro", host_dir.display());
    let denied = sandbox.berth(&["run", "--rm", "-v", &ro, &busybox(), "touch", "/data/x"]);
    assert_ne!(denied.code, 0);
    let read_only = sandbox.berth(&["run", "--rm", "--read-only", &busybox(), "touch", "/x"]);
    assert_ne!(read_only.code, 0);
    assert!(read_only.stderr.contains("Read-only"), "{}", read_only.stderr);
}

#[test]
fn memory_and_pids_limits() {
    let sandbox = Sandbox::new();
    let oom = sandbox.berth(&[
        "run",
        "--rm",
        "--memory",
        "32m",
        &busybox(),
        "sh",
        "-c",
        "head -c 200000000 /dev/zero | tail",
    ]);
    assert_eq!(oom.code, 137, "a process over --memory must be killed: {}", oom.stderr);
    let forks = "for i in $(seq 50); do sleep 5 & done; wait";
    let limited = sandbox.berth(&["run", "--rm", "--pids-limit", "10", &busybox(), "sh", "-c", forks]);
    assert!(limited.stderr.contains("can't fork") || limited.code != 0, "{}", limited.stderr);
}

#[test]
fn detached_logs_exec_stop_rm() {
    let sandbox = Sandbox::new();
    let script = "echo started; trap 'echo stopping; exit 0' TERM; while true; do sleep 0.1; done";
    let id =
        sandbox.berth(&["run", "-d", "--name", "worker", &busybox(), "sh", "-c", script]).success().stdout;
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    let ps = sandbox.berth(&["ps"]).success();
    assert!(ps.stdout.contains("worker") && ps.stdout.contains("running"), "{}", ps.stdout);
    let exec = sandbox.berth(&["exec", "worker", "sh", "-c", "echo inside $$"]).success();
    assert!(exec.stdout.starts_with("inside "), "{}", exec.stdout);
    assert_eq!(sandbox.berth(&["exec", "worker", "sh", "-c", "exit 4"]).code, 4);
    let stop = sandbox.berth(&["stop", "-t", "10", "worker"]).success();
    let logs = sandbox.berth(&["logs", "worker"]).success();
    let ps = sandbox.berth(&["ps", "-a"]).success();
    let inspect = sandbox.berth(&["inspect", "worker"]).success();
    assert_eq!(
        logs.stdout, "started\nstopping\n",
        "stop said: {}\nps -a: {}\ninspect: {}",
        stop.stderr, ps.stdout, inspect.stdout
    );
    assert!(ps.stdout.contains("exited (0)"), "{}", ps.stdout);
    assert_eq!(sandbox.berth(&["wait", "worker"]).success().stdout, "0\n");
    sandbox.berth(&["rm", "worker"]).success();
    assert!(!sandbox.berth(&["ps", "-a"]).success().stdout.contains("worker"));
    assert!(!sandbox.path().join("store/containers").join(id).exists());
}

#[test]
fn kill_and_force_remove() {
    let sandbox = Sandbox::new();
    sandbox.berth(&["run", "-d", "--name", "sleeper", &busybox(), "sleep", "300"]).success();
    let rm = sandbox.berth(&["rm", "sleeper"]);
    assert_eq!(rm.code, 1, "a running container needs -f: {}", rm.stderr);
    sandbox.berth(&["kill", "-s", "KILL", "sleeper"]).success();
    assert_eq!(sandbox.berth(&["wait", "sleeper"]).success().stdout, "137\n");
    sandbox.berth(&["run", "-d", "--name", "sleeper2", &busybox(), "sleep", "300"]).success();
    sandbox.berth(&["rm", "-f", "sleeper2"]).success();
}

#[test]
fn signals_reach_a_foreground_container() {
    let sandbox = Sandbox::new();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("berth"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BERTH_ROOT", sandbox.path().join("store"))
        .env("BERTH_CONFIG_DIR", sandbox.path().join("config"))
        .args([
            "run",
            "--rm",
            &busybox(),
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("berth");
    // Signal berth alone once the shell inside has set its trap (it says so), however loaded the machine.
    let stdout = child.stdout.take().expect("piped stdout");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        let _ = ready_tx.send(line);
    });
    let line = ready_rx.recv_timeout(Duration::from_secs(60)).expect("the container never said it was ready");
    assert_eq!(line, "ready\n");
    // SAFETY: signalling our own child process.
    unsafe { libc_kill(child.id() as i32, 15) };
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(42));
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

#[test]
fn rm_leaves_nothing_and_prune_frees_unused_images() {
    let sandbox = Sandbox::new();
    sandbox.berth(&["run", "--rm", &busybox(), "true"]).success();
    let containers = sandbox.path().join("store/containers");
    let left: Vec<_> = std::fs::read_dir(&containers).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(left.is_empty(), "--rm left {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&containers.display().to_string()), "a mount was left behind");

    sandbox.berth(&["pull", &image(Kind::Plain, "testbed/layers:1")]).success();
    sandbox.berth(&["rmi", &image(Kind::Plain, "testbed/layers:1")]).success();
    let prune = sandbox.berth(&["image", "prune"]).success();
    assert!(
        prune.stderr.contains("removed") && !prune.stderr.contains("removed 0 blobs"),
        "{}",
        prune.stderr
    );
    // busybox is still named: it must still run, offline.
    sandbox.berth(&["run", "--rm", "--pull", "never", &busybox(), "true"]).success();
}

#[test]
fn bridge_networking_and_ports_are_refused_clearly() {
    let sandbox = Sandbox::new();
    let run = sandbox.berth(&["run", "--rm", "--network", "bridge", &busybox(), "true"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--network host"), "{}", run.stderr);
    let run = sandbox.berth(&["run", "--rm", "-p", "8080:80", &busybox(), "true"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn concurrent_runs_keep_state_consistent() {
    let sandbox = Sandbox::new();
    // Warm the store once so the concurrent runs race on container state, not on the pull.
    sandbox.berth(&["pull", &busybox()]).success();
    let runs: Vec<_> = (0..6)
        .map(|i| {
            let name = if i < 4 { format!("c{i}") } else { "same".to_string() };
            let image = busybox();
            let path = sandbox.path().to_path_buf();
            std::thread::spawn(move || {
                let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("berth"))
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("BERTH_ROOT", path.join("store"))
                    .env("BERTH_CONFIG_DIR", path.join("config"))
                    .args(["run", "-d", "--name", &name, &image, "sleep", "60"])
                    .output()
                    .expect("berth");
                (name, output.status.code())
            })
        })
        .map(|handle| handle.join().expect("thread"))
        .collect();
    let started: Vec<_> = runs.iter().filter(|(_, code)| *code == Some(0)).map(|(n, _)| n.clone()).collect();
    assert_eq!(
        started.iter().filter(|n| n.as_str() == "same").count(),
        1,
        "one name, one container: {runs:?}"
    );
    assert_eq!(started.len(), 5, "{runs:?}");
    let ps = sandbox.berth(&["ps", "-q"]).success();
    assert_eq!(ps.stdout.lines().count(), 5, "{}", ps.stdout);
    for name in started {
        sandbox.berth(&["rm", "-f", &name]).success();
    }
    assert!(sandbox.berth(&["ps", "-aq"]).success().stdout.trim().is_empty());
}

#[test]
fn a_terminal_is_allocated_with_dash_t() {
    let sandbox = Sandbox::new();
    for runtime in ["embedded", "runc"] {
        let run = sandbox.berth(&[
            "run",
            "--rm",
            "-t",
            "--runtime",
            runtime,
            &busybox(),
            "sh",
            "-c",
            "tty; exit 4",
        ]);
        assert_eq!(run.code, 4, "{runtime}: {}", run.stderr);
        assert!(run.stdout.starts_with("/dev/pts/"), "{runtime}: {:?}", run.stdout);
        let id =
            sandbox.berth(&["run", "-d", "--runtime", runtime, &busybox(), "sleep", "60"]).success().stdout;
        let exec = sandbox.berth(&["exec", "-t", id.trim(), "tty"]);
        assert_eq!(exec.code, 0, "{runtime}: {}", exec.stderr);
        assert!(exec.stdout.starts_with("/dev/pts/"), "{runtime}: {:?}", exec.stdout);
        sandbox.berth(&["rm", "-f", id.trim()]).success();
    }
}

#[test]
fn a_local_image_starts_without_the_network_unless_asked() {
    let sandbox = Sandbox::new();
    let proxy = berth_testkit::proxy::Proxy::start(&testbed().plain.url(), &testbed().pki).expect("proxy");
    let reference = format!("{}/testbed/busybox:1", proxy.host());
    sandbox.berth(&["pull", "-q", &reference]).success();

    proxy.clear_requests();
    let run = sandbox.berth(&["run", "--rm", "--pull", "missing", &reference, "echo", "local"]).success();
    assert_eq!(run.stdout, "local\n");
    let run = sandbox.berth(&["run", "--rm", &reference, "true"]).success();
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(proxy.requests().is_empty(), "a local image needs no request: {:?}", proxy.requests());

    // `--pull always` asks for the tag once and finds everything else in the store.
    sandbox.berth(&["run", "--rm", "--pull", "always", &reference, "true"]).success();
    let manifests: Vec<_> = proxy.requests().into_iter().filter(|r| r.path.contains("/manifests/")).collect();
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    assert!(proxy.requests().iter().all(|r| !r.path.contains("/blobs/")), "{:?}", proxy.requests());
}
