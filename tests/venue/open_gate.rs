//! Issue 13's open gate at the venue: `portico alert set --open-gate` lets
//! phone B, which never tapped, reach the internet at once over IPv4 and
//! IPv6, with the grant sets left as they were; the open gate survives
//! someone else's change to the ruleset, a rebuild of the table and a
//! `kill -9` with a restart (the alert on disk opens it again); `portico
//! alert clear` holds B again while A, granted before the alert, stays
//! online.
//!
//! It runs after issue 3's scenario 7 (A granted, B revoked), but makes
//! sure of that itself, so it also runs alone (`cargo test --test venue --
//! open-gate`). Whatever happens, it ends with the alert cleared, so the
//! scenarios after it see the gate as usual.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};

use crate::portico::{TABLE, metric};
use crate::scenarios::{Site, poll};

/// A notice as a province would write it.
const NOTICE: &str = "languages = [\"vi\"]\n[vi]\ntitle = \"Cảnh báo\"\ntext = \"Bão.\"\n";
/// The sets that hold grants, which opening and closing must not touch.
const GRANT_SETS: [&str; 3] = ["allowed_mac", "allowed_v4", "allowed_v6"];
/// Repairs and restarts take effect within this.
const WITHIN: Duration = Duration::from_secs(5);
/// Two rounds of the drift check (every 2 s) and a little more.
const CHECK_ROUNDS: Duration = Duration::from_millis(4500);

pub fn open_gate(site: &mut Site) -> Result<()> {
    site.portico.ensure_running(&site.venue.gw)?;
    let notice = site.portico.config.with_file_name("typhoon.toml");
    std::fs::write(&notice, NOTICE).context("writing the notice")?;
    let result = open_then_clear(site, &notice.to_string_lossy());
    if result.is_err() {
        // Whatever failed, the next scenarios must find the gate closed.
        let _ = site.portico.ensure_running(&site.venue.gw);
        let _ = site.portico.cli(&site.venue.gw, &["alert", "clear"]);
    }
    result
}

fn open_then_clear(site: &mut Site, notice: &str) -> Result<()> {
    let v = &site.venue;
    if site.online(&v.a).is_err() {
        let reply = v.a.accept(site.portal(), &[])?;
        ensure!(reply.status == 303, "accept from A: {}", reply.describe());
    }
    if site.held(&v.b).is_err() {
        site.portico.cli(&v.gw, &["clients", "revoke", v.b.mac])?;
    }
    b_held(site).context("B before the alert")?;
    let grants = grant_elements(site)?;
    ensure!(
        grants.iter().any(|e| e == v.a.mac) && !grants.iter().any(|e| e == v.b.mac),
        "A should hold a grant and B none before the alert: {grants:?}"
    );

    site.portico.cli(&v.gw, &["alert", "set", "--open-gate", "--file", notice])?;
    // At once: the command returns once the kernel lets everyone through.
    b_online(site).context("B right after alert set --open-gate")?;
    site.online(&v.a).context("A with the gate open")?;
    ensure!(grant_elements(site)? == grants, "opening the gate changed the grant sets");

    // Someone else's change makes the drift check look: the open gate is
    // what Portico applied, not drift.
    let repairs = metric(&v.gw, "portico_firewall_repairs_total")?;
    let comparisons = metric(&v.gw, "portico_firewall_comparisons_total")?;
    site.nft(&["add", "table", "inet", "venue_someone_else"])?;
    site.nft(&["delete", "table", "inet", "venue_someone_else"])?;
    std::thread::sleep(CHECK_ROUNDS);
    ensure!(
        metric(&v.gw, "portico_firewall_comparisons_total")? > comparisons,
        "the drift check did not look after someone else changed the ruleset"
    );
    ensure!(
        metric(&v.gw, "portico_firewall_repairs_total")? == repairs,
        "the open gate was taken for drift and the table rebuilt"
    );
    b_online(site).context("B after the drift check looked")?;

    // A rebuild while open stays open: the table comes back with the gate
    // open in the same transaction. (With no table at all B would pass
    // too: it counts once the rebuilt table is there.)
    site.nft(&["delete", "table", "inet", TABLE])?;
    let took = poll(WITHIN, || {
        site.nft(&["list", "chain", "inet", TABLE, "gate_forward"])?;
        b_online(site)?;
        site.online(&v.a)
    })
    .context("after the table was deleted with the gate open")?;
    println!("   table rebuilt with the gate open {took:.1?} after the delete");

    // kill -9 and a start: the start rebuilds the table (a new one, so a
    // new handle) and the alert on disk opens it again.
    let before = table_handle(site)?;
    site.portico.kill()?;
    b_online(site).context("B while Portico is down")?;
    site.portico.start(&v.gw)?;
    let took = poll(WITHIN, || {
        ensure!(table_handle(site)? != before, "the table has not been rebuilt yet");
        b_online(site)
    })
    .context("after kill -9 and a start with the alert on")?;
    println!("   the gate was open again {took:.1?} after /healthz answered");
    ensure!(grant_elements(site)? == grants, "the restart changed the grant sets");

    site.portico.cli(&v.gw, &["alert", "clear"])?;
    // At once, like a revoke.
    b_held(site).context("B right after alert clear")?;
    site.online(&v.a).context("A, granted before the alert, after alert clear")?;
    v.a.expect_online(v.up_v6.into()).context("A over IPv6 after alert clear")?;
    ensure!(grant_elements(site)? == grants, "clearing the alert changed the grant sets");
    Ok(())
}

/// B reaches the upstream itself (its 204, not Portico's) and its 443,
/// over IPv4 and IPv6.
fn b_online(site: &Site) -> Result<()> {
    for target in site.upstreams() {
        site.venue.b.expect_online(target)?;
        site.venue.b.expect_443_open(target)?;
    }
    Ok(())
}

/// B's probes are sent to the portal and its 443 refused, over IPv4 and IPv6.
fn b_held(site: &Site) -> Result<()> {
    for target in site.upstreams() {
        site.venue.b.expect_held(target, &site.public_url())?;
        site.venue.b.expect_443_refused(target)?;
    }
    Ok(())
}

/// Every element of the grant sets (a MAC or an address), sorted; their
/// timeouts left out, as they count down.
fn grant_elements(site: &Site) -> Result<Vec<String>> {
    let mut all = Vec::new();
    for set in GRANT_SETS {
        let text = site.nft(&["list", "set", "inet", TABLE, set])?;
        if let Some((_, rest)) = text.split_once("elements = {") {
            let list = rest.split('}').next().unwrap_or_default();
            all.extend(list.split(',').filter_map(|e| e.split_whitespace().next()).map(str::to_owned));
        }
    }
    all.sort();
    Ok(all)
}

/// The kernel's handle of Portico's table, which a rebuild renews.
fn table_handle(site: &Site) -> Result<String> {
    let text = site.nft(&["-a", "list", "table", "inet", TABLE])?;
    let first = text.lines().next().unwrap_or_default();
    let handle = first.split("# handle ").nth(1).map(str::trim).filter(|h| !h.is_empty());
    handle.map(str::to_owned).with_context(|| format!("no handle in {first:?}"))
}
