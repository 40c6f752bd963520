//! `berth pull IMAGE`: the digest on stdout, progress and warnings on stderr.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use berth_engine::{Digest, Engine, Platform, PullObserver, PullOptions};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub async fn pull(engine: Engine, image: &str, platform: Option<&str>, quiet: bool) -> anyhow::Result<u8> {
    let platform = platform.map(Platform::parse).transpose().map_err(berth_engine::Error::from)?;
    let observer = Arc::new(Progress::new(quiet));
    let pulled = engine.pull(image, &PullOptions { platform }, observer.clone()).await?;
    observer.finish();
    if !quiet {
        eprintln!(
            "pulled {} from {} ({} layers downloaded, {} already present)",
            pulled.reference, pulled.served_by, pulled.layers_downloaded, pulled.layers_cached
        );
    }
    writeln!(std::io::stdout(), "{}", pulled.digest).context("writing to stdout")?;
    Ok(0)
}

/// Progress bars on a terminal, nothing otherwise; warnings always.
pub struct Progress {
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let target = if quiet || !crate::output::stderr_is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Progress { multi: MultiProgress::with_draw_target(target), bars: Mutex::new(HashMap::new()) }
    }

    fn finish(&self) {
        let _ = self.multi.clear();
    }

    fn with_bar(&self, digest: &Digest, f: impl FnOnce(&ProgressBar)) {
        if let Ok(bars) = self.bars.lock()
            && let Some(bar) = bars.get(digest)
        {
            f(bar);
        }
    }
}

impl PullObserver for Progress {
    fn warning(&self, message: &str) {
        self.multi.suspend(|| crate::output::warn(message));
    }

    fn layer_started(&self, digest: &Digest, size: u64) {
        let bar = self.multi.add(ProgressBar::new(size));
        let style = ProgressStyle::with_template("{prefix} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(digest.hex().get(..12).unwrap_or_default().to_string());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(digest.clone(), bar);
        }
    }

    fn layer_progress(&self, digest: &Digest, bytes: u64) {
        self.with_bar(digest, |bar| bar.inc(bytes));
    }

    fn layer_done(&self, digest: &Digest, _cached: bool) {
        self.with_bar(digest, |bar| bar.finish_and_clear());
    }
}
