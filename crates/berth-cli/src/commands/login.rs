//! `berth login` and `berth logout`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use berth_engine::{Credential, Engine, Saved, Secret};

/// Docker Hub, when no registry is named.
const DEFAULT_REGISTRY: &str = "docker.io";

pub async fn login(
    engine: Engine,
    registry: Option<&str>,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
) -> anyhow::Result<u8> {
    let registry = registry.unwrap_or(DEFAULT_REGISTRY);
    let username = match username {
        Some(u) => u,
        None if password_stdin => {
            bail!(berth_engine::Error::Usage("--password-stdin needs --username".into()))
        }
        None => prompt("Username: ")?,
    };
    let password = match (password, password_stdin) {
        (Some(_), true) => {
            bail!(berth_engine::Error::Usage(
                "--password and --password-stdin cannot be used together".into()
            ))
        }
        (Some(p), false) => {
            crate::output::warn(
                "a password given with --password is visible to other users; use --password-stdin",
            );
            p
        }
        (None, true) => read_password_stdin()?,
        (None, false) => rpassword::prompt_password("Password: ").context("reading the password")?,
    };
    if password.is_empty() {
        bail!(berth_engine::Error::Usage("the password is empty".into()));
    }
    let credential = Credential::Basic { username, password: Secret::new(password) };
    match engine.login(registry, credential).await? {
        Saved::File(path) => eprintln!("login succeeded; saved in {}", path.display()),
        Saved::Helper(helper) => eprintln!("login succeeded; saved in credential helper {helper}"),
    }
    Ok(0)
}

pub fn logout(engine: Engine, registry: Option<&str>) -> anyhow::Result<u8> {
    let registry = registry.unwrap_or(DEFAULT_REGISTRY);
    if engine.logout(registry)? {
        eprintln!("removed login for {registry}");
    } else {
        eprintln!("not logged in to {registry}");
    }
    Ok(0)
}

/// `--creds user:password`.
pub fn parse_creds(value: &str) -> anyhow::Result<Credential> {
    match value.split_once(':') {
        Some((user, password)) if !user.is_empty() => {
            Ok(Credential::Basic { username: user.to_string(), password: Secret::new(password) })
        }
        _ => bail!(berth_engine::Error::Usage("--creds must be USER:PASSWORD".into())),
    }
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn prompt(label: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!(berth_engine::Error::Usage("no terminal to ask for a username: use --username".into()));
    }
    eprint!("{label}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the username")?;
    Ok(line.trim().to_string())
}
