//! The `berth` command: parse arguments, resolve settings, call the engine, print the result or an
//! error with a `hint:`.
//!
//! Exit codes: 0 success; 1 the operation failed; 2 usage error; for `run`, the container's own exit
//! code, or 125 (berth failed), 126 (command not executable), 127 (command not found) as Docker does.

mod args;
mod commands;
mod memory;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The embedded runtime's helper must start no thread before libcontainer forks: it is dispatched
    // before argument parsing, logging and the async runtime.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if raw.first().is_some_and(|first| first == berth_engine::runtime::embedded::HELPER_COMMAND) {
        let code = berth_engine::runtime::embedded::helper_main(&raw);
        return ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(255));
    }
    memory::tune_allocator();
    let args = args::Cli::parse();
    output::init_logging(args.global.debug);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            output::print_error(&anyhow::Error::new(e).context("cannot start the async runtime"));
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(commands::dispatch(args));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(output::exit_code_for(&e))
        }
    }
}
