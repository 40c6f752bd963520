//! `berth-testkit serve [--state DIR]`: the testbed as a long-running process for scripts and demos.
//!
//! Prints `export BERTH_TESTKIT_…=…` lines on stdout (for `eval`), `ready` on stderr once the images
//! are seeded, and runs until SIGTERM or SIGINT, then stops every registry.
//!
//! `berth-testkit synth --registry HOST:PORT --repo NAME --tag TAG --layers N --total-mib M [--zstd]`:
//! builds a synthetic image of that shape (for the pull scaling benchmark), pushes it to the
//! plain-HTTP registry and prints its manifest digest.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use berth_testkit::Testbed;
use berth_testkit::images::synthetic::{self, SyntheticSpec};

const USAGE: &str = "usage: berth-testkit serve [--state DIR]\n       \
    berth-testkit synth --registry HOST:PORT --repo NAME --tag TAG --layers N --total-mib M [--zstd]";

fn main() -> anyhow::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let mut state: Option<PathBuf> = None;
    match arguments.next().as_deref() {
        Some("serve") => {}
        Some("synth") => return synth(arguments),
        Some("-h" | "--help") => {
            eprintln!("{USAGE}");
            return Ok(());
        }
        _ => bail!("{USAGE}"),
    }
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--state" => state = Some(arguments.next().context("--state needs a directory")?.into()),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    serve(state)
}

fn serve(state: Option<PathBuf>) -> anyhow::Result<()> {
    let testbed = match &state {
        Some(state) => Testbed::start_in(state)?,
        None => Testbed::start()?,
    };
    berth_testkit::images::seed(&testbed)
        .with_context(|| format!("seeding the test images\n{}", testbed.log_tails(20)))?;
    let certs_d_root = match &state {
        Some(state) => state.join("certs.d"),
        None => testbed.pki.dir.join("certs.d"),
    };
    let certs_d = testbed.certs_d(&certs_d_root)?;

    let mut stdout = std::io::stdout().lock();
    for (name, value) in [
        ("PLAIN", testbed.plain.host()),
        ("BASIC", testbed.basic.host()),
        ("MTLS", testbed.mtls.host()),
        ("TOKEN", testbed.token.host()),
        ("AUTH", testbed.issuer.realm()),
        ("CA", testbed.pki.ca_cert.display().to_string()),
        ("CLIENT_CERT", testbed.pki.client_cert.display().to_string()),
        ("CLIENT_KEY", testbed.pki.client_key.display().to_string()),
        ("CERTS_D", certs_d.display().to_string()),
    ] {
        writeln!(stdout, "export BERTH_TESTKIT_{name}={}", shell_quote(&value))
            .context("writing to stdout")?;
    }
    stdout.flush().context("writing to stdout")?;
    drop(stdout);
    eprintln!("ready");

    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    runtime.block_on(async {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("SIGTERM handler")?;
        tokio::select! {
            _ = terminate.recv() => {}
            result = tokio::signal::ctrl_c() => result.context("SIGINT handler")?,
        }
        anyhow::Ok(())
    })?;
    eprintln!("stopping");
    drop(testbed);
    Ok(())
}

fn synth(mut arguments: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let (mut registry, mut repository, mut tag) = (None, None, None);
    let (mut layers, mut total_mib, mut zstd) = (None, None, false);
    while let Some(argument) = arguments.next() {
        let mut value = || arguments.next().with_context(|| format!("{argument} needs a value\n{USAGE}"));
        match argument.as_str() {
            "--registry" => registry = Some(value()?),
            "--repo" => repository = Some(value()?),
            "--tag" => tag = Some(value()?),
            "--layers" => layers = Some(value()?.parse::<u32>().context("--layers: not a number")?),
            "--total-mib" => total_mib = Some(value()?.parse::<u64>().context("--total-mib: not a number")?),
            "--zstd" => zstd = true,
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let spec = SyntheticSpec {
        repository: repository.with_context(|| format!("--repo is required\n{USAGE}"))?,
        tag: tag.with_context(|| format!("--tag is required\n{USAGE}"))?,
        layers: layers.with_context(|| format!("--layers is required\n{USAGE}"))?,
        total_mib: total_mib.with_context(|| format!("--total-mib is required\n{USAGE}"))?,
        zstd,
    };
    let registry = registry.with_context(|| format!("--registry is required\n{USAGE}"))?;
    let image = synthetic::build_and_push(&registry, &spec)?;
    writeln!(std::io::stdout(), "{}", image.manifest.digest).context("writing to stdout")?;
    Ok(())
}

/// Single-quoted for POSIX shells.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}
