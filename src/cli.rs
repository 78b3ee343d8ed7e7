//! The command line: raw arguments (clap) on one side, the commands that
//! act on a validated [`Config`] on the other. Each command returns the
//! process's exit code; errors bubble up to `main` as `anyhow` chains.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

mod admin_client;
mod alert;

use crate::campaign::Campaign;
use crate::campaign::CampaignSource;
use crate::config::{AdminToken, Backend, Config};
use crate::firewall::{Firewall, Nftables, NoFirewall};
use crate::reload::ConfigSource;
use crate::server::{self, Control, Listeners};

#[derive(Parser, Debug)]
#[command(name = "portico", version, about = "A captive-portal banner for public Wi-Fi")]
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
    /// The devices with a grant, and the trusted ones, on the running service.
    Clients {
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// An emergency notice on every page, board and poster at once.
    Alert {
        #[command(subcommand)]
        action: alert::AlertAction,
    },
    /// What the venue's DHCP server announces (RFC 8910).
    Dhcp {
        #[command(subcommand)]
        action: DhcpAction,
    },
    /// The daily counts, one row per venue and day (the service may run);
    /// or with --merge, many venues' CSV reports made one.
    Report {
        #[arg(long, value_name = "FILE", required_unless_present = "merge")]
        config: Option<PathBuf>,
        /// The first day (YYYY-MM-DD, the venue's); by default the oldest kept.
        #[arg(long, value_name = "DATE", value_parser = parse_day)]
        from: Option<crate::counts::Day>,
        /// The last day (YYYY-MM-DD); by default today.
        #[arg(long, value_name = "DATE", value_parser = parse_day)]
        to: Option<crate::counts::Day>,
        #[arg(long, value_enum, default_value = "csv")]
        format: crate::report::Format,
        /// Combine these reports (of many venues, CSV or JSON) into one.
        #[arg(long, value_name = "REPORT", num_args = 1.., conflicts_with_all = ["config", "from", "to"])]
        merge: Vec<PathBuf>,
    },
    /// Campaign bundles, for a fleet of gateways to fetch.
    Campaign {
        #[command(subcommand)]
        action: CampaignAction,
    },
}

fn parse_day(s: &str) -> Result<crate::counts::Day, String> {
    s.parse()
}

#[derive(Subcommand, Debug)]
pub enum DhcpAction {
    /// Print the dnsmasq lines: the RFC 8908 API in options 114 and 103.
    Print {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClientsAction {
    /// List the devices online now.
    List {
        /// The running service's config; without it, the demo's.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print JSON instead of a table (the grants, or with --trusted the
        /// trusted devices).
        #[arg(long)]
        json: bool,
        /// Only the trusted devices.
        #[arg(long)]
        trusted: bool,
    },
    /// End a device's grant now: it sees the page again.
    Revoke {
        /// The device's IP or MAC address.
        target: String,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Let a device through with no grant and no timeout (a signage screen,
    /// a card reader), durably; again with another --name renames it.
    Trust {
        /// The device's MAC address.
        mac: String,
        /// What to call it in the list ("hall screen A").
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// End a device's trust (one trusted with `clients trust`): it sees the
    /// page again.
    Untrust {
        /// The device's MAC address.
        mac: String,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum FirewallAction {
    /// Print the ruleset Portico installs (`nft -f` accepts it).
    Print {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print instead the lines OpenWrt's fw4 includes at the head of
        /// its input chain, so that its zones let held devices reach the
        /// portal (see deploy/openwrt/).
        #[arg(long)]
        fw4: bool,
    },
    /// Delete Portico's table: every device is let through ungated.
    Remove {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config } => run_server(config.as_deref()),
        Command::Check { config } => Ok(check(&config)),
        Command::Firewall { action: FirewallAction::Print { config, fw4 } } => {
            let config = Config::load(&config)?;
            if fw4 {
                print!("{}", crate::firewall::fw4::input_include(&config));
            } else {
                print!("{}", printable_firewall(&config).ruleset());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Firewall { action: FirewallAction::Remove { config } } => {
            let config = Config::load(&config)?;
            if config.firewall.backend != Backend::Nftables {
                println!("firewall.backend is not nftables: nothing to remove");
                return Ok(ExitCode::SUCCESS);
            }
            printable_nftables(&config).remove()?;
            println!("removed table inet {}", config.firewall.table);
            Ok(ExitCode::SUCCESS)
        }
        Command::Clients { action: ClientsAction::List { config, json, trusted } } => {
            clients_list(config.as_deref(), json, trusted)
        }
        Command::Clients { action: ClientsAction::Trust { mac, name, config } } => {
            clients_trust(config.as_deref(), &mac, &name)
        }
        Command::Clients { action: ClientsAction::Untrust { mac, config } } => clients_untrust(config.as_deref(), &mac),
        Command::Clients { action: ClientsAction::Revoke { target, config } } => {
            clients_revoke(config.as_deref(), &target)
        }
        Command::Alert { action } => alert::run(action),
        Command::Report { merge, format, .. } if !merge.is_empty() => crate::report::merge_command(&merge, format),
        Command::Report { config, from, to, format, .. } => {
            let config = config.expect("clap requires --config without --merge");
            crate::report::command(&config, from, to, format)
        }
        Command::Dhcp { action: DhcpAction::Print { config } } => {
            let config = Config::load(&config)?;
            if let Some(warning) = crate::dhcp::api_url_warning(&config.portal.public_url) {
                eprintln!("warning: {warning}");
            }
            print!("{}", crate::dhcp::dnsmasq(&config));
            Ok(ExitCode::SUCCESS)
        }
        Command::Campaign { action: CampaignAction::Pack { dir, out } } => campaign_pack(&dir, &out),
    }
}

/// The backend as configured, built without touching the machine, so the
/// rules can be printed anywhere.
fn printable_firewall(config: &Config) -> Box<dyn Firewall> {
    match config.firewall.backend {
        Backend::Nftables => Box::new(printable_nftables(config)),
        Backend::None => Box::new(NoFirewall),
    }
}

fn printable_nftables(config: &Config) -> Nftables {
    Nftables::from_parts(crate::firewall::nftables::Parts::of(config))
}

/// The admin listener of the service that `--config` (or the demo) runs,
/// with the token of its `admin.token_file`.
fn admin_of(path: Option<&Path>) -> anyhow::Result<admin_client::Target> {
    let Some(path) = path else {
        let addr = Config::demo().admin.listen;
        return Ok(admin_client::Target {
            addr,
            hint: "of the demo; give --config FILE for a configured service".into(),
            token: None,
        });
    };
    let admin = Config::load(path)?.admin;
    let token = match &admin.token_file {
        None => None,
        Some(file) => Some(AdminToken::read(file).map_err(|problem| {
            // Most often: an operator without sudo, the file being the
            // service user's alone.
            let denied = std::fs::File::open(file).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
            let advice = if denied {
                "; the clients commands send the service's admin token: run them as root (sudo portico clients …) \
                 or as a user who may read that file"
            } else {
                ""
            };
            anyhow::anyhow!("{}: {problem}{advice}", path.display())
        })?),
    };
    Ok(admin_client::Target { addr: admin.listen, hint: format!("in {}", path.display()), token })
}

#[derive(serde::Deserialize)]
struct ClientRow {
    ip: String,
    mac: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
    seconds_remaining: u64,
}

/// A trusted device as the admin listener lists it.
#[derive(serde::Deserialize)]
struct TrustedRow {
    mac: String,
    name: String,
    source: String,
}

fn clients_list(path: Option<&Path>, json: bool, only_trusted: bool) -> anyhow::Result<ExitCode> {
    let admin = admin_of(path)?;
    let get = |path: &str| -> anyhow::Result<String> {
        let (status, body) = admin.call("GET", path)?;
        anyhow::ensure!(status == 200, "the admin listener answered {status}: {}", body.trim());
        Ok(body)
    };
    let trusted = if json && !only_trusted { String::new() } else { get("/clients/trusted")? };
    let body = if only_trusted { String::new() } else { get("/clients")? };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match (json, only_trusted) {
        (true, true) => out.write_all(trusted.as_bytes()),
        (true, false) => out.write_all(body.as_bytes()),
        (false, _) => {
            let trusted: Vec<TrustedRow> = serde_json::from_str(&trusted)?;
            let rows: Vec<ClientRow> = if only_trusted { Vec::new() } else { serde_json::from_str(&body)? };
            trusted_table(&mut out, &trusted)
                .and_then(|()| if only_trusted { Ok(()) } else { client_table(&mut out, &rows) })
        }
    };
    match written.and_then(|()| out.flush()) {
        // `portico clients list | head` is done when head is.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        other => other.map(|()| ExitCode::SUCCESS).context("writing the list"),
    }
}

fn client_table(out: &mut impl Write, rows: &[ClientRow]) -> std::io::Result<()> {
    writeln!(out, "{:<17} {:>7}  ADDRESSES", "MAC", "LEFT")?;
    for r in rows {
        let left = format!("{}h{:02}m", r.seconds_remaining / 3600, r.seconds_remaining % 3600 / 60);
        let addresses = if r.addresses.is_empty() { r.ip.clone() } else { r.addresses.join(" ") };
        writeln!(out, "{:<17} {:>7}  {addresses}", r.mac.as_deref().unwrap_or("-"), left)?;
    }
    writeln!(out, "{} device(s) online", rows.len())
}

fn trusted_table(out: &mut impl Write, rows: &[TrustedRow]) -> std::io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "{:<17} {:<7} NAME", "TRUSTED", "FROM")?;
    for r in rows {
        writeln!(out, "{:<17} {:<7} {}", r.mac, r.source, r.name)?;
    }
    writeln!(out, "{} trusted device(s)\n", rows.len())
}

fn clients_trust(path: Option<&Path>, mac: &str, name: &str) -> anyhow::Result<ExitCode> {
    let mac: crate::grant::MacAddr = mac.parse().map_err(|_| anyhow::anyhow!("{mac:?} is not a MAC address"))?;
    let name = crate::trusted::check_name(name).map_err(|e| anyhow::anyhow!("--name {e}"))?;
    let admin = admin_of(path)?;
    let request = serde_json::json!({ "mac": mac.to_string(), "name": name }).to_string();
    let (status, body) = admin.call_with("POST", "/clients/trust", request.as_bytes())?;
    anyhow::ensure!(status == 200, "the admin listener answered {status}: {}", body.trim());
    println!("trusted {mac}{}", if name.is_empty() { String::new() } else { format!(" ({name})") });
    Ok(ExitCode::SUCCESS)
}

fn clients_untrust(path: Option<&Path>, mac: &str) -> anyhow::Result<ExitCode> {
    let mac: crate::grant::MacAddr = mac.parse().map_err(|_| anyhow::anyhow!("{mac:?} is not a MAC address"))?;
    let admin = admin_of(path)?;
    let (status, body) = admin.call("POST", &format!("/clients/untrust?mac={mac}"))?;
    match status {
        200 => {
            println!("untrusted {mac}");
            Ok(ExitCode::SUCCESS)
        }
        404 | 409 => {
            eprintln!("{}", body.trim());
            Ok(ExitCode::FAILURE)
        }
        _ => anyhow::bail!("the admin listener answered {status}: {}", body.trim()),
    }
}

fn clients_revoke(path: Option<&Path>, target: &str) -> anyhow::Result<ExitCode> {
    let valid = target.parse::<std::net::IpAddr>().is_ok() || target.parse::<crate::grant::MacAddr>().is_ok();
    anyhow::ensure!(valid, "{target:?} is neither an IP address nor a MAC address");
    let admin = admin_of(path)?;
    let (status, body) = admin.call("POST", &format!("/clients/revoke?target={target}"))?;
    match status {
        200 => {
            let rows: Vec<ClientRow> = serde_json::from_str(&body)?;
            for r in rows {
                println!("revoked {} {}", r.ip, r.mac.as_deref().unwrap_or(""));
            }
            Ok(ExitCode::SUCCESS)
        }
        404 => {
            eprintln!("{}", body.trim());
            Ok(ExitCode::FAILURE)
        }
        _ => anyhow::bail!("the admin listener answered {status}: {}", body.trim()),
    }
}

fn run_server(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = match path {
        Some(path) => Config::load(path)?,
        None => Config::demo(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let shutdown = server::shutdown_signal()?;
        let reloads = server::reload_signal()?;
        let listeners = Listeners::bind(&config).await?;
        if path.is_none() {
            println!(
                "Portico demo (built-in Bluezone campaign, firewall none, state in {}).\nOpen {} in a browser; add ?lang=en for English. Ctrl-C stops.",
                config.state.dir.display(),
                config.portal.public_url.url
            );
        }
        let source = match path {
            Some(p) => ConfigSource::File(p.to_owned()),
            None => ConfigSource::Demo,
        };
        // On a worker thread, not this one: the accept loops then run
        // where the connections they spawn run, and a new connection is
        // served on the thread that accepted it instead of waking another.
        let serving = tokio::spawn(server::run(config, listeners, Control { shutdown, reloads, source }));
        serving.await?
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
    let campaign = match &config.portal.campaign {
        // The service fetches it; until then it shows the kept copy, or
        // the built-in campaign.
        CampaignSource::Bundle(b) => {
            problems.extend(bundle_ca_problem("portal.campaign_ca", b));
            let kept = crate::campaign::store::campaign(&config.state.dir, b);
            Some(kept.map_or_else(|| Campaign::load(&CampaignSource::Builtin("bluezone".into())), Ok))
        }
        source => Some(Campaign::load(source)),
    }
    .and_then(|loaded| match loaded {
        Ok(c) => Some(c),
        Err(e) => {
            problems.extend(e.problems);
            None
        }
    });
    // Each scheduled campaign is checked as the service will load it; a
    // bundle is fetched and checked by the running service.
    let mut scheduled: Vec<Option<String>> = Vec::new();
    for (i, entry) in config.campaigns.iter().enumerate() {
        scheduled.push(match &entry.source {
            CampaignSource::Bundle(b) => {
                problems.extend(bundle_ca_problem(&format!("campaigns[{}].ca", i + 1), b));
                crate::campaign::store::campaign(&config.state.dir, b).map(|c| c.name)
            }
            source => match Campaign::load(source) {
                Ok(c) => Some(c.name),
                Err(e) => {
                    problems.extend(e.problems.into_iter().map(|p| format!("campaigns[{}]: {p}", i + 1)));
                    None
                }
            },
        });
    }
    if config.firewall.backend == Backend::Nftables {
        // The same checks `run` makes before touching the kernel.
        if let Err(e) = Nftables::new(&config) {
            problems.push(e.to_string());
        }
    }
    if let Some(tls) = &config.tls
        && let Err(e) = crate::tls::acceptor(&tls.cert, &tls.key)
    {
        problems.push(format!("{e:#}"));
    }
    // Read as the service will read it (`check` runs as its user under
    // systemd), so an unreadable or bad token file fails here first.
    let mut token_warning = None;
    if let Some(file) = &config.admin.token_file {
        match AdminToken::read(file) {
            Ok(token) => token_warning = token.permissions_warning(file),
            Err(problem) => problems.push(problem.to_string()),
        }
    }
    if !problems.is_empty() {
        for p in problems {
            eprintln!("{}: {p}", path.display());
        }
        return ExitCode::FAILURE;
    }
    // Not a problem: iOS and desktops still use an http API.
    if let Some(warning) = crate::dhcp::api_url_warning(&config.portal.public_url) {
        eprintln!("{}: warning: {warning}", path.display());
    }
    if let Some(warning) = token_warning {
        eprintln!("{}: warning: {warning}", path.display());
    }
    let campaign = campaign.expect("no problems means the campaign loaded");
    let langs: Vec<&str> = campaign.locales.iter().map(|l| l.tag.as_str()).collect();
    let source = config.portal.campaign.to_string();
    let mut gate = String::new();
    if let Some(rate) = config.firewall.device_rate {
        gate.push_str(&format!(", {rate} per device"));
    }
    if let Some(rate) = config.firewall.device_upload_rate {
        gate.push_str(&format!(", {rate} upload per device"));
    }
    if !config.walled_garden.is_empty() {
        gate.push_str(&format!(", walled garden of {} name(s)", config.walled_garden.hosts.len()));
    }
    if !config.trusted.is_empty() {
        gate.push_str(&format!(", {} trusted device(s)", config.trusted.len()));
    }
    println!(
        "ok: {}: venue {:?} ({}), campaign {} from {source} ({}), portal {}, session {:?}, firewall {}{gate}",
        path.display(),
        config.venue.name,
        config.venue.kind.as_str(),
        campaign.name,
        langs.join(", "),
        config.portal.listen,
        config.portal.session,
        config.firewall.backend_name(),
    );
    if !config.campaigns.is_empty() {
        print_schedule(&config, &campaign.name, &scheduled);
    }
    ExitCode::SUCCESS
}

/// A bundle's `ca` file that cannot be read, as `check` reports it.
fn bundle_ca_problem(key: &str, b: &crate::campaign::BundleSource) -> Option<String> {
    let ca = b.ca.as_ref()?;
    crate::campaign::fetch::read_ca(ca).err().map(|e| format!("{key}: {}: {e}", ca.display()))
}

/// The next 30 of the venue's days, as runs of the same campaigns on the
/// air, each with its share of the devices.
fn print_schedule(config: &Config, default: &str, names: &[Option<String>]) {
    let zone = &config.venue.timezone;
    let today = zone.day(crate::counts::zone::unix_secs(std::time::SystemTime::now()));
    println!("on the air at this {} ({}), the next 30 days:", config.venue.kind.as_str(), zone.name());
    for run in crate::schedule::runs(&config.campaigns, config.venue.kind, today, 30) {
        let days = if run.first == run.last { run.first.to_string() } else { format!("{} to {}", run.first, run.last) };
        let total: u32 = run.on_air.iter().map(|&i| config.campaigns[i].weight).sum();
        let shown: Vec<String> = run
            .on_air
            .iter()
            .map(|&i| {
                let entry = &config.campaigns[i];
                let name = match &names[i] {
                    Some(name) => name.clone(),
                    None => format!("the bundle {} (not fetched yet: the default until it is)", entry.source),
                };
                if run.on_air.len() > 1 { format!("{name} ({}/{total} of devices)", entry.weight) } else { name }
            })
            .collect();
        let shown = if shown.is_empty() { format!("{default} (the default)") } else { shown.join(", ") };
        println!("  {days}: {shown}");
    }
}

#[derive(Subcommand, Debug)]
pub enum CampaignAction {
    /// Pack a campaign folder into a bundle, checked as `check` checks it,
    /// to sign with `minisign -S` and publish.
    Pack {
        /// The campaign folder: campaign.toml, locales/, images.
        dir: PathBuf,
        /// The bundle to write (outside the folder).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// `portico campaign pack`: one line per problem and exit 1, or the bundle
/// written whole (beside, then renamed) and what to do with it next.
fn campaign_pack(dir: &Path, out: &Path) -> anyhow::Result<ExitCode> {
    // Inside the folder, the bundle would be packed into the next one.
    let folder = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let out_folder = std::path::absolute(out)?.ancestors().skip(1).find_map(|a| std::fs::canonicalize(a).ok());
    if out_folder.is_some_and(|f| f.starts_with(&folder)) {
        anyhow::bail!("--out {}: is inside the campaign folder; write the bundle elsewhere", out.display());
    }
    let bundle = match crate::campaign::bundle::pack(dir) {
        Ok(bundle) => bundle,
        Err(e) => {
            for problem in e.problems {
                eprintln!("{problem}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let campaign =
        crate::campaign::bundle::load(&bundle, &dir.display().to_string()).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::durable::replace(out, &bundle).with_context(|| format!("writing {}", out.display()))?;
    let name = out.file_name().map_or_else(|| out.display().to_string(), |n| n.to_string_lossy().into_owned());
    let langs: Vec<&str> = campaign.locales.iter().map(|l| l.tag.as_str()).collect();
    println!(
        "wrote {}: campaign {:?} ({}), {} bytes of at most {}",
        out.display(),
        campaign.name,
        langs.join(", "),
        bundle.len(),
        crate::campaign::bundle::MAX_BUNDLE_BYTES
    );
    println!(
        "next: sign it with `minisign -Sm {}`, then publish {name} and {name}.minisig side by side over https: \
         the gateways fetch URL and URL.minisig (source = \"https://…/{name}\", key = the second line of \
         your minisign.pub)",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
