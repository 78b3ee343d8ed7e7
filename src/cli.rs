//! The command line: raw arguments (clap) on one side, the commands that
//! act on a validated [`Config`] on the other. Each command returns the
//! process's exit code; errors bubble up to `main` as `anyhow` chains.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::campaign::Campaign;
use crate::config::{CampaignSource, Config};
use crate::server::{self, Listeners};

#[derive(Parser, Debug)]
#[command(
    name = "portico",
    version,
    about = "A captive-portal banner for public Wi-Fi"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the portal. Without --config: the demo on http://127.0.0.1:8080/.
    Run {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Check a config file and its campaign; one line per problem.
    Check {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// The packet-filter rules Portico owns.
    Firewall {
        #[command(subcommand)]
        action: FirewallAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum FirewallAction {
    /// Print the ruleset Portico installs.
    Print {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config } => run_server(config.as_deref()),
        Command::Check { config } => Ok(check(&config)),
        Command::Firewall {
            action: FirewallAction::Print { config },
        } => {
            let config = Config::load(&config)?;
            let firewall = crate::firewall::from_config(&config)?;
            print!("{}", firewall.ruleset());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_server(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = match path {
        Some(path) => Config::load(path)?,
        None => Config::demo(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shutdown = server::shutdown_signal()?;
        let listeners = Listeners::bind(&config).await?;
        if path.is_none() {
            println!(
                "Portico demo (built-in Bluezone campaign, firewall none, state in {}).\nOpen {} in a browser; add ?lang=en for English. Ctrl-C stops.",
                config.state.dir.display(),
                config.portal.public_url.url
            );
        }
        server::run(config, listeners, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `portico check`: every problem on its own line, then exit 1; or a
/// one-line summary and exit 0.
fn check(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("{problems}");
            return ExitCode::FAILURE;
        }
    };
    let mut problems = Vec::new();
    let campaign = match Campaign::load(&config.portal.campaign) {
        Ok(c) => Some(c),
        Err(e) => {
            problems.extend(e.problems);
            None
        }
    };
    if let Some(tls) = &config.tls
        && let Err(e) = crate::http::tls::acceptor(&tls.cert, &tls.key)
    {
        problems.push(format!("{e:#}"));
    }
    if !problems.is_empty() {
        for p in problems {
            eprintln!("{}: {p}", path.display());
        }
        return ExitCode::FAILURE;
    }
    let campaign = campaign.expect("no problems means the campaign loaded");
    let langs: Vec<&str> = campaign.locales.iter().map(|l| l.tag.as_str()).collect();
    let source = match &config.portal.campaign {
        CampaignSource::Builtin(name) => format!("built-in {name}"),
        CampaignSource::Folder(dir) => dir.display().to_string(),
    };
    println!(
        "ok: {}: venue {:?} ({}), campaign {} from {source} ({}), portal {}, session {:?}, firewall {}",
        path.display(),
        config.venue.name,
        config.venue.kind.as_str(),
        campaign.name,
        langs.join(", "),
        config.portal.listen,
        config.portal.session,
        config.firewall.backend_name(),
    );
    ExitCode::SUCCESS
}
