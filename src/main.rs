//! `portico`: parse the command line, start logging, hand over to the
//! library, and turn an error into a message and an exit code.

#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = portico::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "portico=info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, not for journald or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match portico::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole chain: "loading the campaign: …: …".
            eprintln!("portico: {e:#}");
            ExitCode::FAILURE
        }
    }
}
