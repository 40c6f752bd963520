//! `berth run`: flags → a RunRequest; the exit code is the container's.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, bail};
use berth_engine::{Engine, Platform, PullPolicy, RunOutcome, RunRequest, runtime};

use crate::args::RunArgs;

pub async fn run(engine: Engine, args: RunArgs) -> anyhow::Result<u8> {
    let request = request(args)?;
    let observer = Arc::new(super::pull::Progress::new(false));
    match engine.run(request, observer).await {
        Ok(RunOutcome::Exited(code)) => Ok(u8::try_from(code.clamp(0, 255)).unwrap_or(255)),
        Ok(RunOutcome::Detached(id)) => {
            writeln!(std::io::stdout(), "{id}").context("writing to stdout")?;
            Ok(0)
        }
        Err(e) => {
            let code = e.run_exit_code();
            crate::output::print_error(&anyhow::Error::new(e));
            Ok(u8::try_from(code).unwrap_or(125))
        }
    }
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(berth_engine::Error::Usage(message.into()))
}

fn request(args: RunArgs) -> anyhow::Result<RunRequest> {
    if !args.publish.is_empty() {
        bail!(usage(
            "-p/--publish needs bridge networking, which berth does not have yet: use --network host and the container's own port"
        ));
    }
    let network = match args.network.as_str() {
        "host" => runtime::Network::Host,
        "none" => runtime::Network::None,
        "bridge" | "default" => {
            bail!(usage("--network bridge is not available yet: use --network host or --network none"))
        }
        other => bail!(usage(format!("unknown network {other:?}: use host or none"))),
    };
    let pull = match args.pull.as_str() {
        "always" => PullPolicy::Always,
        "missing" => PullPolicy::Missing,
        "never" => PullPolicy::Never,
        other => bail!(usage(format!("--pull {other:?}: use always, missing or never"))),
    };
    if args.detach && args.rm && args.tty {
        // Allowed by Docker; nothing special to do, kept explicit for readers.
    }
    let platform =
        args.platform.as_deref().map(Platform::parse).transpose().map_err(berth_engine::Error::from)?;
    let memory = args.memory.as_deref().map(berth_engine::parse_size).transpose()?;
    let entrypoint = args.entrypoint.map(|e| if e.is_empty() { Vec::new() } else { vec![e] });
    Ok(RunRequest {
        image: args.image,
        name: args.name,
        detach: args.detach,
        auto_remove: args.rm,
        interactive: args.interactive,
        pull,
        platform,
        runtime: args.runtime,
        env: args.env,
        env_files: args.env_file,
        volumes: args.volume,
        mounts: args.mount,
        options: runtime::RunOptions {
            entrypoint,
            cmd: args.command,
            workdir: args.workdir,
            user: args.user,
            hostname: args.hostname,
            read_only: args.read_only,
            network,
            tty: args.tty,
            memory,
            cpus: args.cpus,
            pids_limit: args.pids_limit,
            ..Default::default()
        },
    })
}
