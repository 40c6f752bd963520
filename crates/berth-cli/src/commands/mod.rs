//! One function per command: resolved settings in, an engine call, output out.

mod containers;
mod login;
mod pull;
mod run;

use std::io::Write;

use anyhow::Context;
use berth_engine::{Engine, EngineOptions};
use clap::CommandFactory;

use crate::args::{Cli, Command, ImageCommand, RegistryArgs};

pub async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let global = cli.global;
    match cli.command {
        Command::Pull { image, platform, max_concurrent, quiet, registry } => {
            let mut options = engine_options(&global.root, &registry)?;
            options.max_concurrent = max_concurrent;
            pull::pull(Engine::new(options)?, &image, platform.as_deref(), quiet).await
        }
        Command::Images { quiet } => images(local(&global.root)?, quiet),
        Command::Login { registry, username, password, password_stdin, registry_args } => {
            let engine = Engine::new(engine_options(&global.root, &registry_args)?)?;
            login::login(engine, registry.as_deref(), username, password, password_stdin).await
        }
        Command::Logout { registry } => {
            let engine = Engine::new(engine_options(&global.root, &RegistryArgs::default())?)?;
            login::logout(engine, registry.as_deref())
        }
        Command::Run(args) => {
            let engine = Engine::new(engine_options(&global.root, &args.registry)?)?;
            run::run(engine, *args).await
        }
        Command::Ps { all, quiet } => containers::ps(&local(&global.root)?, all, quiet),
        Command::Logs { container, follow } => {
            containers::logs(&local(&global.root)?, &container, follow).await
        }
        Command::Stop { containers, time } => {
            containers::stop(&local(&global.root)?, &containers, time).await
        }
        Command::Kill { containers, signal } => containers::kill(&local(&global.root)?, &containers, &signal),
        Command::Rm { containers, force } => containers::rm(&local(&global.root)?, &containers, force).await,
        Command::Exec { interactive, tty, container, command } => {
            containers::exec(&local(&global.root)?, &container, command, interactive, tty).await
        }
        Command::Inspect { names } => containers::inspect(&local(&global.root)?, &names),
        Command::Wait { containers } => containers::wait(&local(&global.root)?, &containers).await,
        Command::Rmi { images } => {
            let engine = local(&global.root)?;
            for image in images {
                let removed = engine.remove_image(&image)?;
                writeln!(std::io::stdout(), "untagged {removed}").context("writing to stdout")?;
            }
            Ok(0)
        }
        Command::Tag { source, target } => {
            local(&global.root)?.tag(&source, &target)?;
            Ok(0)
        }
        Command::Image { command: ImageCommand::Prune } => {
            let pruned = local(&global.root)?.prune_images()?;
            eprintln!(
                "removed {} blobs and {} layers, {} freed",
                pruned.blobs,
                pruned.layers,
                human_size(pruned.bytes)
            );
            Ok(0)
        }
        Command::Image { command: ImageCommand::Ls { quiet } } => images(local(&global.root)?, quiet),
        Command::Monitor { id } => {
            let code = local(&global.root)?.monitor(&id).await?;
            Ok(u8::try_from(code.clamp(0, 255)).unwrap_or(255))
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "berth", &mut std::io::stdout());
            Ok(0)
        }
    }
}

/// An engine for commands that never talk to a registry.
fn local(root: &Option<std::path::PathBuf>) -> anyhow::Result<Engine> {
    Ok(Engine::new(engine_options(root, &RegistryArgs::default())?)?)
}

fn engine_options(
    root: &Option<std::path::PathBuf>,
    registry: &RegistryArgs,
) -> anyhow::Result<EngineOptions> {
    let creds = registry.creds.as_deref().map(login::parse_creds).transpose()?;
    Ok(EngineOptions {
        root: root.clone(),
        creds,
        cert_dir: registry.cert_dir.clone(),
        max_concurrent: None,
        insecure_registries: registry.insecure_registries.clone(),
    })
}

fn images(engine: Engine, quiet: bool) -> anyhow::Result<u8> {
    let images = engine.images()?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for image in images {
            writeln!(out, "{}", image.name).context("writing to stdout")?;
        }
        return Ok(0);
    }
    writeln!(out, "{:<60} {:<19} {:>10}", "NAME", "DIGEST", "SIZE").context("writing to stdout")?;
    for image in images {
        let short = image.manifest_digest.hex().get(..12).unwrap_or_default().to_string();
        writeln!(out, "{:<60} sha256:{:<12} {:>10}", image.name, short, human_size(image.size))
            .context("writing to stdout")?;
    }
    Ok(0)
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}
