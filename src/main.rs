//! The `eventfold` binary: parse the command line, run it, map errors to exit code 2.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the collector and workers allocate many small, short-lived values per event.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = eventfold::cli::Cli::parse();
    match eventfold::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("eventfold: {error:#}");
            ExitCode::from(2)
        }
    }
}
