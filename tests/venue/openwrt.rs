//! The scenario of issue 11: Portico beside OpenWrt's firewall. The gateway
//! gets a ruleset shaped as fw4 renders it (`venue/fw4.nft`: `table inet
//! fw4`, the venue's LAN as a guest zone whose input is rejected, DHCP, DNS
//! and ICMPv6 allowed as OpenWrt's guest Wi-Fi guide does), with the
//! include of `portico firewall print --fw4` where fw4 pastes
//! `/usr/share/nftables.d/chain-pre/input/*.nft`. Reloading fw4 is what
//! fw4 does: `nft -f` of the whole file, which flushes its own table first.
//!
//! It runs last and deletes fw4's table when it ends, however it ends.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};

use crate::netns::Netns;
use crate::portico::{BIN, TABLE, metric};
use crate::scenarios::{Scenario, Site, poll};

pub const ALL: [Scenario; 1] = [(
    "21 fw4 with a guest zone rejecting input: without the include the portal is shut; with it A is \
     redirected and held, B taps and is online; each survives the other's reload",
    fw4,
)];

/// Changes take effect within this.
const WITHIN: Duration = Duration::from_secs(5);

const FW4: &str = include_str!("fw4.nft");

/// fw4's table in the gateway namespace, deleted on drop.
struct Fw4 {
    /// The gateway namespace.
    ns: String,
    file: PathBuf,
}

impl Fw4 {
    /// Loads the ruleset with `include` pasted at fw4's `chain-pre/input`
    /// position.
    fn load(gw: &Netns, dir: &Path, include: &Path) -> Result<Fw4> {
        let file = dir.join("fw4.nft");
        std::fs::write(&file, FW4.replace("@PORTICO_INCLUDE@", &include.to_string_lossy()))?;
        let fw4 = Fw4 { ns: gw.name.clone(), file };
        fw4.reload()?;
        Ok(fw4)
    }

    fn nft(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("ip").args(["netns", "exec", &self.ns, "nft"]).args(args).output()?;
        ensure!(out.status.success(), "nft {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `fw4 reload`: the whole file again, as one transaction.
    fn reload(&self) -> Result<()> {
        self.nft(&["-f", &self.file.to_string_lossy()]).map(drop)
    }

    /// fw4's chains and rules, without the counters that move.
    fn rules(&self) -> Result<String> {
        let text = self.nft(&["list", "table", "inet", "fw4"])?;
        Ok(text.lines().map(strip_counter).collect::<Vec<_>>().join("\n"))
    }
}

impl Drop for Fw4 {
    fn drop(&mut self) {
        if let Err(e) = self.nft(&["delete", "table", "inet", "fw4"]) {
            eprintln!("warning: could not delete fw4's table: {e:#}");
        }
    }
}

/// `… counter packets 12 bytes 840 accept` → `… counter accept`.
fn strip_counter(line: &str) -> String {
    let mut words = line.split(' ').peekable();
    let mut out = Vec::new();
    while let Some(w) = words.next() {
        out.push(w);
        if w == "packets" || w == "bytes" {
            words.next();
        }
    }
    out.join(" ")
}

fn fw4(site: &mut Site) -> Result<()> {
    site.portico.ensure_running(&site.venue.gw)?;
    let v = &site.venue;
    let gw = &v.gw;
    // Both held to begin with (a device without a grant is refused, which
    // is as good).
    for phone in [&v.a, &v.b] {
        site.portico.cli_output(gw, &["clients", "revoke", phone.mac])?;
    }
    let dir = site.portico.config.parent().context("the config's folder")?.to_owned();

    // fw4 alone, with an empty include: its guest zone rejects the portal.
    let include = dir.join("fw4-input.nft");
    std::fs::write(&include, "# nothing\n")?;
    let fw4 = Fw4::load(gw, &dir, &include)?;
    let shut = v.b.request(site.portal(), "GET", &site.portal().to_string(), "/", None);
    ensure!(shut.is_err(), "with fw4 and no include the portal answered: {}", shut.map(|r| r.describe())?);

    // The include Portico prints, and fw4 reloaded with it.
    let out = Command::new(BIN).args(["firewall", "print", "--fw4", "--config"]).arg(&site.portico.config).output()?;
    ensure!(out.status.success(), "firewall print --fw4: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&include, &out.stdout)?;
    fw4.reload()?;
    for phone in [&v.a, &v.b] {
        site.held(phone).with_context(|| format!("{} with fw4 and the include", phone.label))?;
    }
    let reply = v.b.accept(site.portal(), &[])?;
    ensure!(reply.status == 303, "B's tap with fw4: {}", reply.describe());
    site.online(&v.b).context("B after its tap, through fw4's forward chain")?;
    site.held(&v.a).context("A, who did not tap, with fw4")?;

    // fw4 reloads (an interface came up, an operator saved a rule): Portico's
    // table and B's grant are untouched, nothing needed repairing.
    let repairs = metric(gw, "portico_firewall_repairs_total")?;
    let granted = || -> Result<Vec<String>> {
        let listed = site.nft(&["list", "set", "inet", TABLE, "allowed_mac"])?;
        let mut macs: Vec<String> = listed
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| w.len() == 17 && w.matches(':').count() == 5)
            .map(str::to_owned)
            .collect();
        macs.sort();
        Ok(macs)
    };
    let before = granted()?;
    ensure!(before.iter().any(|m| m == v.b.mac), "B is not in allowed_mac: {before:?}");
    fw4.reload()?;
    ensure!(granted()? == before, "fw4's reload changed Portico's grants: {before:?}, then {:?}", granted()?);
    site.online(&v.b).context("B after fw4's reload")?;
    site.held(&v.a).context("A after fw4's reload")?;
    ensure!(metric(gw, "portico_firewall_repairs_total")? == repairs, "fw4's reload made Portico repair its table");

    // Portico reloads, then restarts after kill -9 (its table rebuilt from
    // its journal): fw4's table is as it was each time.
    let fw4_before = fw4.rules()?;
    let reloads = metric(gw, "portico_reloads_total")?;
    site.portico.reload()?;
    poll(WITHIN, || {
        ensure!(metric(gw, "portico_reloads_total")? > reloads, "no reload counted yet");
        Ok(())
    })?;
    site.online(&v.b).context("B after Portico's reload")?;
    site.held(&v.a).context("A after Portico's reload")?;
    ensure!(fw4.rules()? == fw4_before, "Portico's reload changed fw4's table");
    site.portico.kill()?;
    site.portico.start(gw)?;
    poll(WITHIN, || site.online(&v.b)).context("B after Portico's restart")?;
    site.held(&v.a).context("A after Portico's restart")?;
    ensure!(fw4.rules()? == fw4_before, "Portico's restart changed fw4's table");
    drop(fw4);
    Ok(())
}
