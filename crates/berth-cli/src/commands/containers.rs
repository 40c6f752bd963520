//! ps, logs, stop, kill, rm, exec, inspect, wait: one engine call each.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use berth_engine::Engine;

pub fn ps(engine: &Engine, all: bool, quiet: bool) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    let containers = engine.containers()?;
    if !quiet {
        writeln!(out, "{:<12}  {:<40}  {:<24}  {:<12}  NAME", "ID", "IMAGE", "COMMAND", "STATUS")
            .context("writing to stdout")?;
    }
    for c in containers.into_iter().filter(|c| all || c.status == berth_engine::Status::Running) {
        if quiet {
            writeln!(out, "{}", c.id).context("writing to stdout")?;
            continue;
        }
        let status = match (c.status, c.exit_code) {
            (berth_engine::Status::Exited, Some(code)) => format!("exited ({code})"),
            (status, _) => status.to_string(),
        };
        let mut command = c.command.join(" ");
        if command.len() > 24 {
            command.truncate(21);
            command.push_str("...");
        }
        writeln!(out, "{:<12}  {:<40}  {:<24}  {:<12}  {}", &c.id[..12], c.image, command, status, c.name)
            .context("writing to stdout")?;
    }
    Ok(0)
}

pub async fn logs(engine: &Engine, container: &str, follow: bool) -> anyhow::Result<u8> {
    let mut out = std::io::stdout();
    engine.logs(container, follow, &mut out).await?;
    Ok(0)
}

pub async fn stop(engine: &Engine, containers: &[String], seconds: u64) -> anyhow::Result<u8> {
    for name in containers {
        engine.stop(name, Duration::from_secs(seconds)).await?;
        writeln!(std::io::stdout(), "{name}").context("writing to stdout")?;
    }
    Ok(0)
}

pub fn kill(engine: &Engine, containers: &[String], signal: &str) -> anyhow::Result<u8> {
    let signal = berth_engine::parse_signal(signal)?;
    for name in containers {
        engine.kill(name, signal)?;
        writeln!(std::io::stdout(), "{name}").context("writing to stdout")?;
    }
    Ok(0)
}

pub async fn rm(engine: &Engine, containers: &[String], force: bool) -> anyhow::Result<u8> {
    for name in containers {
        engine.remove(name, force).await?;
        writeln!(std::io::stdout(), "{name}").context("writing to stdout")?;
    }
    Ok(0)
}

pub async fn exec(
    engine: &Engine,
    container: &str,
    command: Vec<String>,
    interactive: bool,
    tty: bool,
) -> anyhow::Result<u8> {
    match engine.exec(container, command, interactive, tty).await {
        Ok(code) => Ok(u8::try_from(code.clamp(0, 255)).unwrap_or(255)),
        Err(e) => {
            let code = e.run_exit_code();
            crate::output::print_error(&anyhow::Error::new(e));
            Ok(u8::try_from(code).unwrap_or(125))
        }
    }
}

pub fn inspect(engine: &Engine, names: &[String]) -> anyhow::Result<u8> {
    let mut values = Vec::new();
    for name in names {
        let value = match engine.container(name) {
            Ok(container) => serde_json::to_value(container).context("encoding")?,
            Err(berth_engine::Error::NoSuchContainer(_)) => engine.inspect_image(name)?,
            Err(e) => return Err(e.into()),
        };
        values.push(value);
    }
    let text = serde_json::to_string_pretty(&values).context("encoding")?;
    writeln!(std::io::stdout(), "{text}").context("writing to stdout")?;
    Ok(0)
}

pub async fn wait(engine: &Engine, containers: &[String]) -> anyhow::Result<u8> {
    for name in containers {
        let code = engine.wait_exit(name, None).await?.unwrap_or(-1);
        writeln!(std::io::stdout(), "{code}").context("writing to stdout")?;
    }
    Ok(0)
}
