//! `portico`: parse the command line, start logging, hand over to the
//! library, and turn an error into a message and an exit code.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = portico::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "portico=info".into()),
        )
        .with_writer(std::io::stderr)
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
