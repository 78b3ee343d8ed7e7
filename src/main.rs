//! `portico`: parse the command line, start logging, hand over to the
//! library, and turn an error into a message and an exit code.

#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn main() -> ExitCode {
    let cli = portico::cli::Cli::parse();
    // `RUST_LOG` as `target=level,...` (`portico=debug`, `warn,portico::server=info`):
    // tracing-subscriber's `Targets`, which needs no regex engine in the binary.
    let filter = std::env::var("RUST_LOG").ok().and_then(|v| match v.parse::<Targets>() {
        Ok(targets) => Some(targets),
        Err(e) => {
            eprintln!("portico: RUST_LOG={v:?} ignored ({e}): it takes target=level pairs, like portico=debug");
            None
        }
    });
    tracing_subscriber::registry()
        .with(filter.unwrap_or_else(|| Targets::new().with_target("portico", Level::INFO)))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour only for a person at a terminal, not for journald or a pipe.
                .with_ansi(std::io::stderr().is_terminal()),
        )
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
