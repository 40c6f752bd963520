//! The `berth` command: parse arguments, resolve settings, call the engine, print the result or an
//! error with a `hint:`.
//!
//! Exit codes: 0 success; 1 the operation failed; 2 usage error; for `run`, the container's own exit
//! code, or 125 (berth failed), 126 (command not executable), 127 (command not found) as Docker does.

mod args;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
