//! Portico at the gate of a real venue, built from network namespaces
//! (issue 3): the built binary runs in a gateway namespace with nftables,
//! phones in their own namespaces probe an "internet" namespace through it.
//! Since issue 8 the venue's moving parts are real third-party software:
//! dnsmasq is the gateway's DHCP (option 114, router advertisements) and DNS
//! server, phones C and D join with busybox `udhcpc` and SLAAC, and C
//! browses with headless chromium (`tests/browser/venue-phone.mjs`).
//! Issue 10 adds the network around the gate: the walled garden dnsmasq
//! fills, trusted devices, and each device's rate, measured; issue 11,
//! OpenWrt's firewall (fw4) beside Portico's table.
//!
//! `cargo test --test venue -- WORDS...` runs only the scenarios whose name
//! contains one of the words (the benchmark `benches/connect.sh` does).
//!
//! Not a libtest harness (`harness = false`): the scenarios share one venue
//! and run in order, and the last line is `N passed, N failed`, which CI
//! reads. Each scenario prints `ok NAME` or `FAILED NAME: WHY` followed by
//! the Portico log it produced.
//!
//! Where it cannot run (not root, no `nft`, `ip`, `dnsmasq`, `busybox`,
//! node, chromium or the npm packages, no namespaces) it
//! prints `SKIPPED venue tests: REASON` and passes, except under `CI=true`,
//! where a skip is a failure. Whatever happens, the namespaces it made are
//! deleted (drop guards, and `catch_unwind` around each scenario), and the
//! run ends by checking that none is left.

#![forbid(unsafe_code)]

#[path = "venue/browser.rs"]
mod browser;
#[path = "venue/dhcp.rs"]
mod dhcp;
#[path = "venue/dns.rs"]
mod dns;
#[path = "venue/dnsmasq.rs"]
mod dnsmasq;
#[path = "common/form.rs"]
mod form;
#[path = "venue/gateway.rs"]
mod gateway;
#[path = "venue/internet.rs"]
mod internet;
#[path = "venue/netns.rs"]
mod netns;
#[path = "venue/open_gate.rs"]
mod open_gate;
#[path = "venue/openwrt.rs"]
mod openwrt;
#[path = "venue/phone.rs"]
mod phone;
#[path = "venue/portico.rs"]
mod portico;
#[path = "venue/real.rs"]
mod real;
#[path = "venue/running.rs"]
mod running;
#[path = "venue/scenarios.rs"]
mod scenarios;
#[path = "venue/wiring.rs"]
mod wiring;

use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use anyhow::{Result, bail};

use dnsmasq::Dnsmasq;
use internet::Internet;
use portico::Portico;
use real::Real;
use scenarios::Site;
use wiring::Venue;

fn main() -> ExitCode {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let gw = match preflight().and_then(|()| Venue::gateway()) {
        Ok(gw) => gw,
        Err(reason) => {
            println!("SKIPPED venue tests: {reason:#}");
            if ci {
                println!("(CI=true: the venue tests must run in CI)");
                println!("0 passed, 1 failed");
                return ExitCode::FAILURE;
            }
            return ExitCode::SUCCESS;
        }
    };
    let prefix = Venue::prefix();
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let (mut passed, mut failed) = (0, 0);
    match build(gw) {
        Ok(mut site) => {
            let v = &site.venue;
            println!("venue {prefix}*: LAN {}/{}, upstream {}/{}", v.lan_v4, v.lan_v6, v.up_v4, v.up_v6);
            let chosen = scenarios::ALL
                .into_iter()
                .chain(real::ALL)
                .chain(gateway::ALL)
                .chain(openwrt::ALL)
                .filter(|(name, _)| only.is_empty() || only.iter().any(|word| name.contains(word.as_str())));
            for (name, scenario) in chosen {
                if run_one(&mut site, name, scenario) {
                    passed += 1;
                } else {
                    failed += 1;
                }
            }
            // Portico, servers, namespaces and files, in that order.
            drop(site);
        }
        Err(e) => {
            println!("FAILED venue: could not be built: {e:#}");
            failed += 1;
        }
    }
    let lingering = netns::LINGERING.load(std::sync::atomic::Ordering::Relaxed);
    let etc: Vec<String> = ["c", "d"]
        .iter()
        .map(|p| format!("/etc/netns/{prefix}{p}"))
        .filter(|f| std::path::Path::new(f).exists())
        .collect();
    match netns::leftovers(&prefix) {
        Ok(_) if lingering > 0 => {
            println!("FAILED cleanup: {lingering} processes were still inside namespaces being deleted");
            failed += 1;
        }
        Ok(_) if !etc.is_empty() => {
            println!("FAILED cleanup: still there: {etc:?}");
            failed += 1;
        }
        Ok(left) if left.is_empty() => {
            println!("ok cleanup: no namespace or link of {prefix} is left");
            passed += 1;
        }
        Ok(left) => {
            println!("FAILED cleanup: still there: {left:?}");
            failed += 1;
        }
        Err(e) => {
            println!("FAILED cleanup: {e:#}");
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Runs one scenario, catching a panic as a failure; prints the verdict
/// and, on failure, what Portico logged meanwhile.
fn run_one(site: &mut Site, name: &str, scenario: fn(&mut Site) -> Result<()>) -> bool {
    let log_from = site.portico.log_len();
    let outcome = catch_unwind(AssertUnwindSafe(|| scenario(site)));
    let why = match outcome {
        Ok(Ok(())) => {
            println!("ok {name}");
            return true;
        }
        Ok(Err(e)) => format!("{e:#}"),
        Err(panic) => format!("panicked: {}", netns::panic_message(&*panic)),
    };
    println!("FAILED {name}: {why}");
    let log = site.portico.log_since(log_from, 40);
    if !log.is_empty() {
        println!("   --- Portico's log during this scenario (last 40 lines) ---");
        for line in log.lines() {
            println!("   | {line}");
        }
    }
    let _ = std::io::stdout().flush();
    false
}

/// Why this machine cannot run the venue, if it cannot.
fn preflight() -> Result<()> {
    let tools = [
        ("dnsmasq", "--version", "dnsmasq-base"),
        ("busybox", "--help", "busybox"),
        ("node", "--version", "nodejs"),
        ("chromium", "--version", "chromium"),
    ];
    netns::preflight(&[&netns::TOOLS[..], &tools].concat())?;
    let playwright = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/node_modules/playwright-core");
    if !std::path::Path::new(playwright).is_dir() {
        bail!("{playwright} is missing (run: npm ci --prefix tests/browser)");
    }
    Ok(())
}

fn build(gw: netns::Netns) -> Result<Site> {
    let venue = Venue::build(gw)?;
    let dir = tempfile::Builder::new().prefix("portico-venue-").tempdir()?;
    let internet = Internet::start(&venue.upstream)?;
    let upstream_dns = Dnsmasq::upstream(&venue, dir.path())?;
    let portico = Portico::new(dir.path(), venue.lan_v4)?;
    let dnsmasq = Dnsmasq::gateway(&venue, dir.path(), &portico.dhcp_lines()?)?;
    let real = Real::new(&venue, dir.path().to_owned())?;
    Ok(Site { portico, real, dnsmasq, _upstream_dns: upstream_dns, internet, venue, _dir: dir })
}
