//! Everything berth prints besides data: logs, warnings, progress and errors, all on stderr.

use std::io::IsTerminal;

/// `--debug` turns on request logs; `BERTH_LOG` takes a tracing filter for finer control.
pub fn init_logging(debug: bool) {
    let default = if debug { "debug,hyper=info,h2=info,rustls=info,reqwest=info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

pub fn warn(message: &str) {
    eprintln!("warning: {message}");
}

/// `error: what failed`, each cause on its own line, then `hint:` when the engine has one.
pub fn print_error(error: &anyhow::Error) {
    let mut causes = error.chain();
    if let Some(top) = causes.next() {
        eprintln!("error: {top}");
    }
    let mut previous = error.to_string();
    for cause in causes {
        let text = cause.to_string();
        // Transparent wrappers repeat their source's message; print each sentence once.
        if text != previous {
            eprintln!("  caused by: {text}");
        }
        previous = text;
    }
    if let Some(hint) =
        error.chain().find_map(|e| e.downcast_ref::<berth_engine::Error>()).and_then(|e| e.hint())
    {
        eprintln!("hint: {hint}");
    }
}

/// 2 for usage errors, 1 for everything else.
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<berth_engine::Error>() {
        Some(berth_engine::Error::Usage(_)) | Some(berth_engine::Error::Reference(_)) => 2,
        _ => 1,
    }
}

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
