//! The embedded runtime's helper for the integration tests: what berth's own binary does when started as
//! `berth __embedded-runtime ...`.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(berth_runtime::embedded::helper_main(&args));
}
