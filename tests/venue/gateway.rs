//! The scenarios of issue 10: the venue's network around the gate. The
//! walled garden, filled by the gateway's real dnsmasq as it resolves the
//! garden's name (with the `nftset=` line of `portico dhcp print`); trusted
//! devices, through a restart, a kill and an `nft flush ruleset`; and each
//! device's fair share of the link, measured.
//!
//! They run last, after issue 8's (D has never tapped, and is held).
//! Lines starting `   measure ` are the figures the note quotes.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::dns;
use crate::dnsmasq::{GARDEN_HOST, OTHER_HOST};
use crate::internet::{BULK_PATH, SINK_PORT};
use crate::portico::{Extra, TABLE, metric};
use crate::scenarios::{Scenario, Site, poll};
use crate::wiring::Phone;

pub const ALL: [Scenario; 4] = [
    ("18 walled garden: held D reaches the garden's name on 443 once dnsmasq resolves it, not another name", garden),
    (
        "19 trusted D passes without a tap, through a restart, a kill -9 and nft flush ruleset; untrust holds it",
        trusted,
    ),
    ("19b [[trusted]] in the config applies on reload and cannot be untrusted at run time", trusted_in_config),
    ("20 device_rate: A and B downloading at once each get close to 4 Mbit/s; the upload to 2 Mbit/s", fair_use),
];

/// Repairs and reloads take effect within this.
const WITHIN: Duration = Duration::from_secs(5);

/// What `phone` is told `name` is, asking the gateway's dnsmasq (A or AAAA
/// as `server` is IPv4 or IPv6), and when the answer came.
fn resolve(phone: &Phone, server: IpAddr, name: &str, v6: bool) -> Result<(Vec<IpAddr>, Instant)> {
    let any: SocketAddr = if server.is_ipv4() { "0.0.0.0:0".parse()? } else { "[::]:0".parse()? };
    let socket = phone.ns.run(|| UdpSocket::bind(any))?;
    let qtype = if v6 { dns::AAAA } else { dns::A };
    let got = dns::query(&socket, SocketAddr::new(server, 53), name, qtype)?;
    Ok((got, Instant::now()))
}

fn garden(site: &mut Site) -> Result<()> {
    site.portico.ensure_running(&site.venue.gw)?;
    let v = &site.venue;
    let d = &v.d;
    let (garden, other) = (v.garden_addrs(), v.other_addrs());
    // Nothing resolved yet (or an earlier run's answers flushed): held.
    site.nft(&["flush", "set", "inet", TABLE, "garden_v4"])?;
    site.nft(&["flush", "set", "inet", TABLE, "garden_v6"])?;
    for ip in garden.iter().chain(&other) {
        d.expect_443_refused(*ip).context("before any DNS answer")?;
    }
    for (i, want) in garden.iter().enumerate() {
        let (got, answered) = resolve(d, v.lan_v4.into(), GARDEN_HOST, i == 1)?;
        ensure!(got.contains(want), "dnsmasq says {GARDEN_HOST} is {got:?}, wanted {want}");
        // The first try, right after the answer: dnsmasq adds the address
        // to the set before it answers.
        let first = d.expect_443_open(*want);
        let took = answered.elapsed();
        if let Err(e) = first {
            let after_all = poll(WITHIN, || d.expect_443_open(*want));
            bail!("{want}:443 not reachable on the first try after the answer ({e:#}); after all: {after_all:?}");
        }
        println!("   measure garden_reachable_after_answer {want} {:.1} ms (first try)", took.as_secs_f64() * 1e3);
    }
    let set = site.nft(&["list", "set", "inet", TABLE, "garden_v4"])?;
    ensure!(set.contains(&garden[0].to_string()), "dnsmasq did not fill garden_v4: {set}");
    // Another name on the same upstream: resolved, and still refused.
    for (i, want) in other.iter().enumerate() {
        let (got, _) = resolve(d, v.lan_v4.into(), OTHER_HOST, i == 1)?;
        ensure!(got.contains(want), "dnsmasq says {OTHER_HOST} is {got:?}, wanted {want}");
        d.expect_443_refused(*want).context("a name outside the garden")?;
    }
    // Only the garden's ports: its port 80 still lands on the portal.
    for ip in garden {
        d.expect_held(ip, &site.public_url()).context("port 80 of the garden's address (ports = [443])")?;
    }
    // And D's probes are still captured.
    for target in site.upstreams() {
        d.expect_held(target, &site.public_url())?;
        d.expect_443_refused(target)?;
    }
    // dnsmasq's additions changed the ruleset under Portico; the drift
    // check read the table (over netlink, then listed it) and found
    // nothing to repair, so the garden's addresses are still there.
    let repairs = metric(&site.venue.gw, "portico_firewall_repairs_total")?;
    let comparisons = metric(&site.venue.gw, "portico_firewall_comparisons_total")?;
    // (The upstream answers with TTL 0, so this answer is fresh too.)
    resolve(d, v.lan_v4.into(), GARDEN_HOST, false)?;
    std::thread::sleep(CHECK_ROUNDS);
    ensure!(
        metric(&site.venue.gw, "portico_firewall_repairs_total")? == repairs,
        "dnsmasq's additions to the garden were taken for drift and repaired"
    );
    ensure!(
        metric(&site.venue.gw, "portico_firewall_comparisons_total")? > comparisons,
        "the drift check did not look after dnsmasq changed the ruleset"
    );
    d.expect_443_open(garden[0]).context("after the drift check's rounds")?;
    Ok(())
}

/// Two rounds of the drift check (every 2 s) and a little more.
const CHECK_ROUNDS: Duration = Duration::from_millis(4500);

/// D is online: its probe reaches the upstream, its 443 opens.
fn d_online(site: &Site) -> Result<()> {
    for target in site.upstreams() {
        site.venue.d.expect_online(target)?;
        site.venue.d.expect_443_open(target)?;
    }
    Ok(())
}

fn d_held(site: &Site) -> Result<()> {
    for target in site.upstreams() {
        site.venue.d.expect_held(target, &site.public_url())?;
        site.venue.d.expect_443_refused(target)?;
    }
    Ok(())
}

/// D asks the portal's RFC 8908 API whether it is captive.
fn d_captive(site: &Site) -> Result<bool> {
    let reply = site.venue.d.request(site.portal(), "GET", &site.portal().to_string(), "/api/captive", None)?;
    ensure!(reply.status == 200, "/api/captive: {}", reply.describe());
    let text = reply.text();
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("/api/captive: {text}"))?;
    json["captive"].as_bool().with_context(|| format!("no captive in {text}"))
}

fn trusted(site: &mut Site) -> Result<()> {
    site.portico.ensure_running(&site.venue.gw)?;
    let gw = &site.venue.gw;
    let mac = site.venue.d.mac;
    d_held(site).context("before the trust")?;
    let said = site.portico.cli(gw, &["clients", "trust", mac, "--name", "hall screen A"])?;
    ensure!(said.contains(mac), "clients trust said {said:?}");
    // At once: the command returns once the kernel lets D through.
    d_online(site).context("right after clients trust")?;
    ensure!(!d_captive(site)?, "/api/captive says the trusted D is captive");
    let list = site.portico.cli(gw, &["clients", "list"])?;
    let row = list.lines().find(|l| l.contains(mac)).with_context(|| format!("D is not in clients list:\n{list}"))?;
    ensure!(row.contains("hall screen A") && row.contains("added"), "D's row: {row:?}");
    ensure!(list.starts_with("TRUSTED"), "the trusted devices are listed apart, first:\n{list}");
    let elements = site.nft(&["list", "set", "inet", TABLE, "trusted_mac"])?;
    ensure!(elements.contains(mac) && !elements.contains("expires"), "no timeout in the kernel: {elements}");

    site.portico.stop()?;
    site.portico.start(gw)?;
    poll(WITHIN, || d_online(site)).context("after a clean restart")?;
    site.portico.kill()?;
    d_online(site).context("while Portico is down after kill -9")?;
    site.portico.start(gw)?;
    poll(WITHIN, || d_online(site)).context("after kill -9 and a start")?;

    site.nft(&["flush", "ruleset"])?;
    // With no table at all everyone passes: D counts as back once the
    // rebuilt table lets it through.
    let took = poll(WITHIN, || {
        site.nft(&["list", "set", "inet", TABLE, "trusted_mac"])?;
        d_online(site)
    })
    .context("after nft flush ruleset")?;
    println!("   measure trusted_back_after_flush {:.1} s", took.as_secs_f64());

    let said = site.portico.cli(gw, &["clients", "untrust", mac])?;
    ensure!(said.contains(mac), "clients untrust said {said:?}");
    d_held(site).context("right after clients untrust")?;
    ensure!(d_captive(site)?, "/api/captive says the untrusted D is not captive");
    let list = site.portico.cli(gw, &["clients", "list", "--trusted"])?;
    ensure!(!list.contains(mac), "D is still listed as trusted:\n{list}");
    Ok(())
}

fn trusted_in_config(site: &mut Site) -> Result<()> {
    site.portico.ensure_running(&site.venue.gw)?;
    let (lan, mac) = (site.venue.lan_v4, site.venue.d.mac);
    let extra =
        Extra { tail: format!("\n[[trusted]]\nmac = \"{mac}\"\nname = \"ticket kiosk\"\n"), ..Extra::default() };
    site.portico.configure_with(lan, "12h", "state", &extra)?;
    site.portico.reload()?;
    poll(WITHIN, || d_online(site)).context("after a reload adding [[trusted]]")?;
    let gw = &site.venue.gw;
    let out = site.portico.cli_output(gw, &["clients", "untrust", mac])?;
    let said = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success() && said.contains("config file"), "untrusting a config device: {said:?}");
    d_online(site).context("after the refused untrust")?;
    let list = site.portico.cli(gw, &["clients", "list", "--trusted", "--json"])?;
    let rows: serde_json::Value = serde_json::from_str(&list)?;
    ensure!(
        rows.as_array().is_some_and(|r| r.iter().any(|d| d["mac"] == mac && d["source"] == "config")),
        "clients list --trusted --json: {list}"
    );
    site.portico.configure(lan, "12h", "state")?;
    site.portico.reload()?;
    poll(WITHIN, || d_held(site)).context("after a reload removing it")?;
    Ok(())
}

/// Bytes a download from the upstream's bulk server brought, and over how
/// long, not counting its first second (TCP's slow start).
struct Measured {
    bytes: usize,
    over: Duration,
}

impl Measured {
    fn mbit(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.over.as_secs_f64() / 1e6
    }
}

const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE_FOR: Duration = Duration::from_secs(5);

fn download(phone: &Phone, server: IpAddr) -> Result<Measured> {
    let mut stream = phone.connect(SocketAddr::new(server, 80))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    write!(stream, "GET {BULK_PATH} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n")?;
    let start = Instant::now();
    let mut buf = vec![0; 64 * 1024];
    let (mut bytes, mut from) = (0, None);
    while start.elapsed() < WARM_UP + MEASURE_FOR {
        let n = stream.read(&mut buf).with_context(|| format!("phone {} downloading", phone.label))?;
        ensure!(n > 0, "phone {}: the download ended early", phone.label);
        if start.elapsed() >= WARM_UP {
            from.get_or_insert_with(Instant::now);
            bytes += n;
        }
    }
    let over = from.map_or(Duration::ZERO, |f| f.elapsed());
    Ok(Measured { bytes, over })
}

fn upload(site: &Site, phone: &Phone) -> Result<Measured> {
    let before = site.internet.uploads.lock().expect("not poisoned").len();
    let mut stream = phone.connect(SocketAddr::new(site.venue.up_v4.into(), SINK_PORT))?;
    stream.set_write_timeout(Some(Duration::from_secs(3)))?;
    let chunk = vec![0; 16 * 1024];
    let start = Instant::now();
    while start.elapsed() < WARM_UP + MEASURE_FOR {
        stream.write_all(&chunk).with_context(|| format!("phone {} uploading", phone.label))?;
    }
    drop(stream);
    // The sink's own count: bytes that crossed the gate, not the phone's buffer.
    poll(WITHIN, || {
        let uploads = site.internet.uploads.lock().expect("not poisoned");
        ensure!(uploads.len() > before, "the sink has not seen the upload end");
        Ok(())
    })?;
    let (bytes, over) = site.internet.uploads.lock().expect("not poisoned")[before];
    Ok(Measured { bytes, over })
}

fn fair_use(site: &mut Site) -> Result<()> {
    const RATE: f64 = 4.0;
    const UPLOAD: f64 = 2.0;
    let lan = site.venue.lan_v4;
    let extra = Extra {
        firewall: format!("device_rate = \"{RATE}mbit\"\ndevice_upload_rate = \"{UPLOAD}mbit\"\n"),
        ..Extra::default()
    };
    site.portico.stop()?;
    site.portico.configure_with(lan, "12h", "state-fair", &extra)?;
    site.portico.start(&site.venue.gw)?;
    let result = measure_fair_use(site, RATE, UPLOAD);
    // The rest of the venue runs without a rate.
    site.portico.stop()?;
    site.portico.configure(lan, "12h", "state")?;
    site.portico.start(&site.venue.gw)?;
    result
}

fn measure_fair_use(site: &mut Site, rate: f64, upload_rate: f64) -> Result<()> {
    let v = &site.venue;
    for phone in [&v.a, &v.b] {
        let reply = phone.accept(site.portal(), &[])?;
        ensure!(reply.status == 303, "accept from {}: {}", phone.label, reply.describe());
    }
    let server: IpAddr = v.up_v4.into();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| download(&v.a, server));
        let b = s.spawn(|| download(&v.b, server));
        (a.join().expect("no panic"), b.join().expect("no panic"))
    });
    let (a, b) = (a?, b?);
    println!(
        "   measure device_rate {rate} Mbit/s, A and B at once: A {:.2} Mbit/s, B {:.2} Mbit/s",
        a.mbit(),
        b.mbit()
    );
    // A generous band: a policer holds TCP a little under its rate, and
    // the machines are noisy; a device over it by more is not limited.
    for (label, m) in [("A", &a), ("B", &b)] {
        ensure!(
            m.mbit() > rate * 0.6 && m.mbit() < rate * 1.15,
            "{label} downloaded at {:.2} Mbit/s, the rate is {rate} Mbit/s",
            m.mbit()
        );
    }
    let up = upload(site, &v.a)?;
    println!("   measure device_upload_rate {upload_rate} Mbit/s: A {:.2} Mbit/s", up.mbit());
    ensure!(
        up.mbit() > upload_rate * 0.6 && up.mbit() < upload_rate * 1.15,
        "A uploaded at {:.2} Mbit/s, the rate is {upload_rate} Mbit/s",
        up.mbit()
    );
    // A trusted device is exempt.
    let gw = &site.venue.gw;
    site.portico.cli(gw, &["clients", "trust", v.d.mac, "--name", "signage"])?;
    let d = download(&v.d, server);
    site.portico.cli(gw, &["clients", "untrust", v.d.mac])?;
    let d = d?;
    println!("   measure trusted D, exempt: {:.1} Mbit/s", d.mbit());
    ensure!(d.mbit() > rate * 2.0, "trusted D downloaded at only {:.2} Mbit/s", d.mbit());
    Ok(())
}
