//! A sandbox per test: its own HOME, config dir and store, an empty environment, and helpers to run
//! berth in it and look at what it printed.

use std::path::{Path, PathBuf};
use std::process::Output;

use berth_testkit::{Kind, Testbed};

pub fn testbed() -> &'static Testbed {
    Testbed::shared()
}

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// What one berth invocation did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with everything berth printed unless it exited 0.
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(self.code, 0, "berth failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    /// Panics unless berth failed with exit code 1 and stderr has an `error:` line and a `hint:` line.
    #[track_caller]
    pub fn failure(self) -> Run {
        assert_eq!(self.code, 1, "expected failure:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        assert!(self.stderr.contains("error: "), "no error line:\n{}", self.stderr);
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    /// The `hint:` line, which every failure the user can fix must have.
    #[track_caller]
    pub fn hint(&self) -> String {
        self.stderr
            .lines()
            .find_map(|l| l.strip_prefix("hint: "))
            .unwrap_or_else(|| panic!("no hint line:\n{}", self.stderr))
            .to_string()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home dir");
        let env = vec![
            ("PATH".to_string(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".to_string(), home.display().to_string()),
            ("BERTH_ROOT".to_string(), dir.path().join("store").display().to_string()),
            ("BERTH_CONFIG_DIR".to_string(), dir.path().join("config").display().to_string()),
            ("XDG_RUNTIME_DIR".to_string(), dir.path().join("run").display().to_string()),
            ("BERTH_STALL_TIMEOUT".to_string(), "5".to_string()),
        ];
        Sandbox { dir, env }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.path().join("config")
    }

    /// Where the store keeps the blob of a digest string (`store/blobs/<algorithm>/<hex>`).
    pub fn blob(&self, digest: &str) -> PathBuf {
        let (algorithm, hex) = digest.split_once(':').expect("algorithm:hex");
        self.path().join("store/blobs").join(algorithm).join(hex)
    }

    pub fn env(&mut self, key: &str, value: impl Into<String>) -> &mut Sandbox {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Installs the testbed's CA (and for mTLS the client pair) in berth's own certs.d for every
    /// registry and the token issuer, as a user would.
    pub fn trust_testbed(&self) -> &Sandbox {
        let tb = testbed();
        let root = self.config_dir().join("certs.d");
        for kind in [Kind::Basic, Kind::Mtls, Kind::Token] {
            tb.pki.write_certs_d(&root, &tb.registry(kind).host(), kind == Kind::Mtls).expect("certs.d");
        }
        tb.pki.write_certs_d(&root, &format!("127.0.0.1:{}", tb.issuer.port), false).expect("certs.d issuer");
        self
    }

    pub fn berth(&self, args: &[&str]) -> Run {
        self.berth_stdin(args, "")
    }

    pub fn berth_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let output = assert_cmd::Command::cargo_bin("berth")
            .expect("berth binary")
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .write_stdin(stdin)
            .timeout(std::time::Duration::from_secs(300))
            .output()
            .expect("run berth");
        Run::from(output)
    }

    /// `berth login` as alice to `host`.
    pub fn login(&self, host: &str, user: (&str, &str)) -> Run {
        self.berth_stdin(&["login", "-u", user.0, "--password-stdin", host], &format!("{}\n", user.1))
    }

    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
        path
    }
}

/// `HOST/REPO:TAG` on a registry of the shared testbed.
pub fn image(kind: Kind, repo_tag: &str) -> String {
    format!("{}/{repo_tag}", testbed().registry(kind).host())
}

/// base64 of `user:password`, as config.json stores it.
pub fn basic_auth(user: (&str, &str)) -> String {
    use base64_engine::encode;
    encode(format!("{}:{}", user.0, user.1))
}

mod base64_engine {
    /// RFC 4648 base64 with padding; the tests' own, so they do not share code with what they test.
    pub fn encode(input: impl AsRef<[u8]>) -> String {
        const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let bytes = input.as_ref();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
