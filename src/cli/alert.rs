//! `portico alert set --config FILE --file NOTICE [--open-gate]` and
//! `portico alert clear --config FILE`: the emergency notice on the running
//! service (see [`crate::alert`]). The notice is checked here first, so a
//! mistake is shown with every problem before anything is sent; the
//! service checks it again, writes it to disk and shows it at once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::alert::{AlertJson, Notice};

#[derive(Subcommand, Debug)]
pub enum AlertAction {
    /// Put an emergency notice on every page, board and poster at once,
    /// until `alert clear`; it survives a restart.
    Set {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The notice: TOML with `languages = [...]` and a `[tag]` table of
        /// `title` and `text` for each.
        #[arg(long, value_name = "NOTICE")]
        file: PathBuf,
        /// Also let every device online without a tap while it lasts.
        #[arg(long)]
        open_gate: bool,
    },
    /// End the notice: the campaign comes back, and an open gate closes
    /// with every grant as it was.
    Clear {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

pub fn run(action: AlertAction) -> anyhow::Result<ExitCode> {
    match action {
        AlertAction::Set { config, file, open_gate } => set(config.as_deref(), &file, open_gate),
        AlertAction::Clear { config } => clear(config.as_deref()),
    }
}

fn set(config: Option<&Path>, file: &Path, open_gate: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let notice = match Notice::parse(&text) {
        Ok(notice) => notice,
        Err(problems) => {
            for p in problems {
                eprintln!("{}: {p}", file.display());
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let admin = super::admin_of(config)?;
    let request = serde_json::to_vec(&AlertJson { notice: text, open_gate, since: None })?;
    let (status, body) = admin.call_with("POST", "/alert", &request)?;
    anyhow::ensure!(status == 200, "the service did not set the alert ({status}): {}", body.trim());
    let languages: Vec<&str> = notice.texts.iter().map(|t| t.tag.as_str()).collect();
    println!("alert set: {:?} ({}){}", notice.texts[0].title, languages.join(", "), gate(open_gate));
    Ok(ExitCode::SUCCESS)
}

fn clear(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let admin = super::admin_of(config)?;
    let (status, body) = admin.call("POST", "/alert/clear")?;
    anyhow::ensure!(status == 200, "the service did not clear the alert ({status}): {}", body.trim());
    println!("alert cleared; the campaign is back");
    Ok(ExitCode::SUCCESS)
}

fn gate(open: bool) -> &'static str {
    if open { "; the gate is open: every device is online without a tap" } else { "" }
}
