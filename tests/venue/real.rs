//! The scenarios of issue 8: the venue with real third-party parts. Phones
//! C and D join by DHCP (busybox `udhcpc` ← dnsmasq, SLAAC with privacy
//! addresses), C browses with headless chromium behaving like stock Chrome,
//! D never taps. They run after issue 3's scenarios, in order, each
//! building on the last (C's browser keeps its connections and its
//! history, which is the point); each starts Portico if it is not running.
//!
//! Only what takes time by design is polled (a lease, SLAAC, a download
//! being cut, an expiry), always against a deadline. "First try" checks
//! are made once; when one fails, the scenario goes on trying only to say
//! in its failure how long the browser took after all.
//!
//! Lines starting `   measure ` are read by `benches/connect.sh`.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail, ensure};

use crate::browser::Browser;
use crate::dhcp::{Dhcp, Lease, Resolver};
use crate::dnsmasq::{PORTAL_HOST, SITE_HOST, captive_api_url};
use crate::internet::{STREAM_PATH, UPSTREAM_MARK};
use crate::phone::PROBE_HOST;
use crate::portico::PORTAL_PORT;
use crate::scenarios::{Scenario, Site, poll};
use crate::wiring::{Phone, Venue};

/// The bound on how long a grant that ended may keep traffic going.
const CUT_WITHIN: Duration = Duration::from_secs(5);
/// Data that stops for this long, with the connection still open, has
/// been cut (the stream sends every 100 ms).
const STALLED_AFTER: Duration = Duration::from_secs(1);
/// The short session of scenario 15.
const SHORT_SESSION: Duration = Duration::from_secs(6);
/// When a first try fails: how long to keep trying, to report the time.
/// (Each try reuses whatever connection the browser holds, so a connection
/// Portico keeps alive may never time out while this goes on.)
const AFTER_ALL_WITHIN: Duration = Duration::from_secs(15);

pub const ALL: [Scenario; 10] = [
    ("9 C joins by DHCP; chromium opens a site before Connect: the splash", join_and_splash),
    ("10 a real click on Connect in chromium reaches /welcome", click_connect),
    ("11 chromium reaches upstream on its first try: by name (IPv6 first), IPv6 and IPv4", online_first_try),
    ("12 chromium upgrades http:// navigations like stock Chrome (upstream's 443 saw it)", https_upgrades),
    ("13 /api/captive over IPv6: C not captive after its IPv4 grant, D captive", captive_api_v6),
    ("13b C's privacy address changes mid-session: the new one is C's too", new_privacy_address),
    ("14 revoke C: its long download is cut within 5 s, its next request gets the splash", revoke_cuts),
    ("15 6 s session: C's long download is cut within 5 s of expiry, then the splash", expiry_cuts),
    ("16 D, which never tapped, is held throughout (probe 302, 443 refused)", d_held),
    ("17 DHCP: the leases carried option 114, the https captive API URL", dhcp_option_114),
];

/// The real clients' state. Field order is drop order: the browser, then
/// the DHCP clients, then the resolver files (nothing runs there by then).
pub struct Real {
    pub browser: Option<Browser>,
    pub dhcp: Vec<Dhcp>,
    pub leases: Vec<(&'static str, Lease)>,
    /// Scenario 10's click and /welcome loaded, on the browser's clock,
    /// for scenario 11.
    clicked_at: Option<f64>,
    welcome_at: Option<f64>,
    resolvers: Vec<Resolver>,
    dir: PathBuf,
}

impl Real {
    /// The DHCP phones' resolver files, created before anything runs there.
    pub fn new(venue: &Venue, dir: PathBuf) -> Result<Real> {
        let resolvers = vec![Resolver::create(&venue.c.ns.name)?, Resolver::create(&venue.d.ns.name)?];
        Ok(Real {
            browser: None,
            dhcp: Vec::new(),
            leases: Vec::new(),
            clicked_at: None,
            welcome_at: None,
            resolvers,
            dir,
        })
    }

    fn browser(&mut self) -> Result<&mut Browser> {
        self.browser.as_mut().context("C's browser is not running (an earlier scenario failed)")
    }

    /// Starts the phone's DHCP client and waits for its lease; sets the
    /// phone's IPv4 address.
    fn join(&mut self, phone: &mut Phone) -> Result<()> {
        let resolver = if phone.label == "C" { &self.resolvers[0] } else { &self.resolvers[1] };
        let mut dhcp = Dhcp::start(phone, resolver, &self.dir)?;
        let lease = dhcp.lease()?;
        self.dhcp.push(dhcp);
        phone.v4 = match lease.ip {
            ip if ip.is_unspecified() => bail!("phone {}: lease without an address", phone.label),
            ip => ip,
        };
        self.leases.push((phone.label, lease));
        Ok(())
    }

    fn lease(&self, label: &str) -> Result<&Lease> {
        self.leases.iter().find(|(l, _)| *l == label).map(|(_, l)| l).context("no lease recorded (scenario 9 failed?)")
    }
}

fn site_url() -> String {
    format!("http://{SITE_HOST}/")
}

/// Restarts Portico fresh (no grants) with `session`, as a venue would run.
fn fresh_portico(site: &mut Site, session: &str, state: &str) -> Result<()> {
    site.portico.stop()?;
    site.portico.cli(&site.venue.gw, &["firewall", "remove"])?;
    site.portico.configure(site.venue.lan_v4, session, state)?;
    site.portico.start(&site.venue.gw)?;
    let (v, url) = (&site.venue, site.public_url());
    // Start-up may install the table just after /healthz answers; A is
    // static and has no grant in a fresh state folder.
    poll(Duration::from_secs(2), || v.a.expect_held(v.up_v4.into(), &url))?;
    Ok(())
}

fn join_and_splash(site: &mut Site) -> Result<()> {
    fresh_portico(site, "12h", "state-real")?;
    let (profile, log) = (site.real.dir.join("chromium-c"), site.real.dir.join("browser-c.log"));
    // The phone is on before it joins: chromium is up, with no network.
    let browser = Browser::launch(&site.venue.c, &profile, &log)?;
    println!("   chromium {} in phone C", browser.version);
    site.real.browser = Some(browser);
    site.real.join(&mut site.venue.c)?;
    let url = site_url();
    let splash = site.real.browser()?.goto(&url)?;
    let lease_at = site.real.lease("C")?.at.duration_since(UNIX_EPOCH)?.as_secs_f64() * 1000.0;
    println!("   C's lease {}; {url} → {}", site.venue.c.v4, splash.describe());
    println!("   measure lease_to_splash_ms={:.0}", splash.wall - lease_at);
    ensure!(
        splash.on_splash(&site.public_url()),
        "C's browser opening {url}: wanted the splash, saw {}",
        splash.describe()
    );
    let (temporary, stable) = crate::dhcp::slaac(&site.venue.c)?;
    site.venue.c.v6 = temporary;
    println!("   C's SLAAC addresses: {temporary} (temporary, preferred), {stable}");

    // D joins too, and never taps.
    site.real.join(&mut site.venue.d)?;
    site.venue.d.v6 = crate::dhcp::slaac(&site.venue.d)?.0;
    let resolver = std::fs::read_to_string(&site.real.resolvers[1].file)?;
    ensure!(
        resolver.contains(&format!("nameserver {}", site.venue.lan_v4)),
        "D's resolv.conf from its lease names no gateway: {resolver:?}"
    );
    site.dns_answers(&site.venue.d).context("D's DNS, to the gateway's and the upstream's dnsmasq")?;
    d_is_held(site).context("D after joining")
}

fn click_connect(site: &mut Site) -> Result<()> {
    site.portico.ensure_running(&site.venue.gw)?;
    let browser = site.real.browser()?;
    let answer = browser.click_connect()?;
    site.real.clicked_at = Some(answer.t0);
    site.real.welcome_at = Some(answer.t1);
    if let Some(ms) = answer.accept_ms {
        println!("   Portico answered the accept {ms:.0} ms after chromium sent it");
    }
    println!("   clicked {:?}: {}", answer.button.as_deref().unwrap_or("?"), answer.describe());
    ensure!(
        answer.ok && answer.status == Some(200) && answer.url.contains("/welcome"),
        "C's browser after the click: wanted /welcome, saw {}",
        answer.describe()
    );
    Ok(())
}

fn online_first_try(site: &mut Site) -> Result<()> {
    let v = &site.venue;
    let by_name = site_url();
    let urls = [by_name.clone(), format!("http://[{}]/", v.up_v6), format!("http://{}/", v.up_v4)];
    let (clicked_at, welcome_at) = (site.real.clicked_at, site.real.welcome_at);
    let browser = site.real.browser()?;
    let mut failures = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let first = browser.goto(url)?;
        if i == 0
            && let Some(clicked_at) = clicked_at
        {
            let took = first.t1 - clicked_at;
            println!(
                "   measure connect_to_online_ms={took:.0} first_try={} click_to_welcome_ms={:.0}",
                if first.is_upstream() { "yes" } else { "no" },
                welcome_at.map_or(0.0, |w| w - clicked_at)
            );
        }
        if first.is_upstream() {
            println!("   {url}: upstream via {}", first.server.as_deref().unwrap_or("?"));
            if url == &by_name && !first.server.as_deref().is_some_and(|s| s.starts_with('[')) {
                failures
                    .push(format!("{url} reached upstream but over IPv4 ({:?}): chromium prefers IPv6", first.server));
            }
            continue;
        }
        let after_all = keep_trying(browser, url, clicked_at)?;
        failures.push(format!("{url}: first try saw {}; {after_all}", first.describe()));
    }
    d_is_held(site).context("D, after C's Connect")?;
    ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

/// After a failed first try: tries `url` again every 500 ms and says when
/// (after the click) the upstream's page came, if it did.
fn keep_trying(browser: &mut Browser, url: &str, clicked_at: Option<f64>) -> Result<String> {
    let start = Instant::now();
    let mut tries = 1;
    while start.elapsed() < AFTER_ALL_WITHIN {
        std::thread::sleep(Duration::from_millis(500));
        tries += 1;
        let again = browser.goto(url)?;
        if again.is_upstream() {
            let since =
                clicked_at.map_or(String::new(), |c| format!(", {:.1} s after the click", (again.t1 - c) / 1000.0));
            return Ok(format!("upstream only at try {tries}{since}"));
        }
    }
    Ok(format!("still not upstream after {tries} tries over {AFTER_ALL_WITHIN:?}"))
}

fn https_upgrades(site: &mut Site) -> Result<()> {
    // A name under a real TLD, not tried before: chromium upgrades it
    // (a `.test` name it would not), 443 answers garbage, and it falls
    // back to http, which reaches the upstream's port 80.
    let url = format!("http://{PROBE_HOST}/");
    let answer = site.real.browser()?.goto(&url)?;
    println!("   {url} → {}", answer.describe());
    ensure!(
        site.internet.saw_tls_hello_for(PROBE_HOST),
        "the upstream's 443 saw no ClientHello for {PROBE_HOST}: HTTPS upgrades are off (browser saw {})",
        answer.describe()
    );
    ensure!(
        answer.is_upstream(),
        "after its https try, chromium should fall back to http and reach upstream; saw {}",
        answer.describe()
    );
    Ok(())
}

fn captive_api_v6(site: &mut Site) -> Result<()> {
    site.portico.ensure_running(&site.venue.gw)?;
    let v = &site.venue;
    let portal_v6 = SocketAddr::new(v.lan_v6.into(), PORTAL_PORT);
    let mut failures = Vec::new();
    for (phone, want) in [(&v.c, false), (&v.d, true)] {
        let reply = phone.request(portal_v6, "GET", &format!("[{}]:{PORTAL_PORT}", v.lan_v6), "/api/captive", None)?;
        let body = reply.text();
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let says = if compact.contains("\"captive\":false") {
            Some(false)
        } else if compact.contains("\"captive\":true") {
            Some(true)
        } else {
            None
        };
        if reply.status != 200 || says != Some(want) {
            failures.push(format!(
                "phone {} from {}: wanted \"captive\": {want}, got {}: {body}",
                phone.label,
                phone.v6,
                reply.describe()
            ));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

/// What the kernel does when a privacy address is regenerated, done at
/// once instead of after its preferred lifetime: a new address on the
/// phone's link, and the ones it had deprecated, so the new one is the
/// source of everything new (RFC 6724 rule 3). Nothing else changes: same
/// MAC, same grant.
fn new_privacy_address(site: &mut Site) -> Result<()> {
    site.portico.ensure_running(&site.venue.gw)?;
    let c = &site.venue.c;
    let old = c.v6;
    ensure!(!old.is_unspecified(), "C has no IPv6 address (scenario 9 failed?)");
    let prefix = u128::from(site.venue.lan_v6) & !0xffff_ffff_ffff_ffff;
    let iid = 0x0200_0000_0000_b00d | (u128::from(std::process::id()) << 16);
    let new = std::net::Ipv6Addr::from(prefix | (iid & 0xffff_ffff_ffff_ffff));
    c.ns.ip(&["-6", "addr", "add", &format!("{new}/64"), "dev", "eth0", "nodad"])?;
    let out = c.ns.exec("ip", &["-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"])?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(address) = line.split_whitespace().skip_while(|w| *w != "inet6").nth(1) else { continue };
        if !address.starts_with(&format!("{new}/")) {
            c.ns.ip(&["-6", "addr", "change", address, "dev", "eth0", "preferred_lft", "0"])?;
        }
    }
    let portal_v6 = SocketAddr::new(site.venue.lan_v6.into(), PORTAL_PORT);
    let source = c.ns.run(|| -> std::io::Result<IpAddr> {
        let probe = std::net::UdpSocket::bind("[::]:0")?;
        probe.connect(portal_v6)?;
        Ok(probe.local_addr()?.ip())
    })?;
    ensure!(source == IpAddr::from(new), "C's kernel picks {source} as source, not the new {new}");
    site.venue.c.v6 = new;
    println!("   C's new privacy address {new} (was {old})");
    let c = &site.venue.c;
    let mut failures = Vec::new();
    let reply = c.request(portal_v6, "GET", &format!("[{}]:{PORTAL_PORT}", site.venue.lan_v6), "/api/captive", None)?;
    let compact: String = reply.text().chars().filter(|ch| !ch.is_whitespace()).collect();
    if !compact.contains("\"captive\":false") {
        failures.push(format!("/api/captive from {new}: {} {}", reply.describe(), reply.text()));
    }
    let answer = site.real.browser()?.goto(&format!("http://[{}]/", site.venue.up_v6))?;
    if !answer.is_upstream() {
        failures.push(format!("C's browser from {new}: wanted the upstream, saw {}", answer.describe()));
    }
    let list = site.portico.cli(&site.venue.gw, &["clients", "list", "--json"])?;
    if !list.contains(&new.to_string()) {
        failures.push(format!("clients list does not name {new} for C ({}): {list}", c.mac));
    }
    ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

fn revoke_cuts(site: &mut Site) -> Result<()> {
    site.portico.ensure_running(&site.venue.gw)?;
    let v = &site.venue;
    let download = Download::start(&v.c, SocketAddr::new(v.up_v4.into(), 80))?;
    let revoked = Instant::now();
    site.portico.cli(&v.gw, &["clients", "revoke", &v.c.v4.to_string()])?;
    let cut = download.cut(revoked)?;
    println!("   C's download: {cut}");
    let mut failures = Vec::new();
    if cut.after > CUT_WITHIN {
        failures.push(format!("C's download went on {:.1?} after the revoke ({cut})", cut.after));
    }
    failures.extend(next_request_held(site, "revoke")?);
    if let Err(e) = d_is_held(site) {
        failures.push(format!("D, after C's revoke: {e:#}"));
    }
    ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

/// After C's grant ended: its next requests (a probe over IPv4 and IPv6,
/// then the browser's next navigation) get the splash. The failures, if any.
fn next_request_held(site: &mut Site, after: &str) -> Result<Vec<String>> {
    let (v, url) = (&site.venue, site.public_url());
    let mut failures = Vec::new();
    for target in site.upstreams() {
        if let Err(e) = v.c.expect_held(target, &url) {
            failures.push(format!("C's next probe after the {after}: {e:#}"));
        }
    }
    let answer = site.real.browser()?.goto(&site_url())?;
    if !answer.on_splash(&url) {
        failures.push(format!("C's browser after the {after}: wanted the splash, saw {}", answer.describe()));
    }
    Ok(failures)
}

fn expiry_cuts(site: &mut Site) -> Result<()> {
    fresh_portico(site, &format!("{}s", SHORT_SESSION.as_secs()), "state-expiry")?;
    let url = site.public_url();
    let browser = site.real.browser()?;
    let splash = browser.goto(&site_url())?;
    ensure!(splash.on_splash(&url), "C's browser before Connect: wanted the splash, saw {}", splash.describe());
    let clicked = Instant::now();
    let welcome = browser.click_connect()?;
    let granted_by = Instant::now();
    ensure!(welcome.ok && welcome.url.contains("/welcome"), "C's click: {}", welcome.describe());
    let v = &site.venue;
    let download = Download::start(&v.c, SocketAddr::new(v.up_v6.into(), 80))
        .context("a download from C over IPv6 right after Connect")?;
    // The grant was made between the click and /welcome, so it ends
    // between those two instants plus the session.
    let expired_by = granted_by + SHORT_SESSION;
    let cut = download.cut(expired_by)?;
    let lasted = cut.last - clicked;
    println!("   C's download, session {SHORT_SESSION:?}: {cut}, {lasted:.1?} after the click");
    ensure!(
        lasted + Duration::from_millis(500) >= SHORT_SESSION,
        "C's download was cut {lasted:.1?} after the click, before the {SHORT_SESSION:?} session was over"
    );
    let mut failures = Vec::new();
    if cut.after > CUT_WITHIN {
        failures.push(format!("C's download went on {:.1?} after the session was over ({cut})", cut.after));
    }
    failures.extend(next_request_held(site, "expiry")?);
    ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

fn d_held(site: &mut Site) -> Result<()> {
    site.portico.ensure_running(&site.venue.gw)?;
    d_is_held(site)
}

/// D's probe is answered 302 to the portal and its 443 refused, over IPv4
/// and IPv6.
fn d_is_held(site: &Site) -> Result<()> {
    let (d, url) = (&site.venue.d, site.public_url());
    for target in site.upstreams() {
        d.expect_held(target, &url)?;
        d.expect_443_refused(target)?;
    }
    Ok(())
}

fn dhcp_option_114(site: &mut Site) -> Result<()> {
    let want = captive_api_url();
    ensure!(want.starts_with("https://") && want.contains(PORTAL_HOST), "the test's own URL {want}");
    for label in ["C", "D"] {
        let lease = site.real.lease(label)?;
        let got = lease.captive_url();
        ensure!(
            got.as_deref() == Some(want.as_str()),
            "phone {label}'s lease: option 114 is {got:?}, wanted {want:?} (udhcpc gave {:?})",
            lease.vars
        );
        let mac = if label == "C" { site.venue.c.mac } else { site.venue.d.mac };
        let line = site.dnsmasq.lease_of(mac).with_context(|| format!("dnsmasq has no lease for {label}'s {mac}"))?;
        ensure!(
            line.contains(&lease.ip.to_string()),
            "dnsmasq's lease for {label} is {line:?}, udhcpc got {}",
            lease.ip
        );
    }
    println!("   option 114 = {want}");
    Ok(())
}

/// A long download from the upstream's slow stream, read on its own
/// thread; stopped and joined on drop (its socket lives in the phone).
struct Download {
    progress: Arc<Mutex<Progress>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Progress {
    bytes: usize,
    last: Option<Instant>,
    ended: Option<String>,
}

/// How a download stopped.
struct Cut {
    /// When its last bytes came.
    last: Instant,
    /// How long after the moment the grant ended.
    after: Duration,
    how: String,
    bytes: usize,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.after.is_zero() {
            write!(f, "{} bytes, the last before the grant ended, then {}", self.bytes, self.how)
        } else {
            write!(f, "{} bytes, the last {:.1?} after the grant ended, then {}", self.bytes, self.after, self.how)
        }
    }
}

impl Download {
    /// Opens `/stream` at `to` from `phone` and waits for its first bytes,
    /// which must be the upstream's.
    fn start(phone: &Phone, to: SocketAddr) -> Result<Download> {
        let mut stream = phone
            .ns
            .run(|| TcpStream::connect_timeout(&to, Duration::from_secs(2)))
            .with_context(|| format!("phone {} connecting to {to}", phone.label))?;
        let host = match to.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        write!(stream, "GET {STREAM_PATH} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: venue-test\r\n\r\n")?;
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        let progress = Arc::new(Mutex::new(Progress::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (progress.clone(), stop.clone());
        let mut head = Vec::new();
        let thread = std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while !s.load(Ordering::Relaxed) {
                let ended = match stream.read(&mut buf) {
                    Ok(0) => Some("the connection was closed".to_owned()),
                    Ok(n) => {
                        let mut p = p.lock().expect("not poisoned");
                        p.bytes += n;
                        p.last = Some(Instant::now());
                        if head.len() < 512 {
                            head.extend_from_slice(&buf[..n]);
                            if !String::from_utf8_lossy(&head).to_ascii_lowercase().contains(UPSTREAM_MARK)
                                && head.windows(4).any(|w| w == b"\r\n\r\n")
                            {
                                p.ended = Some(format!("not upstream: {:?}", String::from_utf8_lossy(&head)));
                                break;
                            }
                        }
                        None
                    }
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => None,
                    Err(e) => Some(format!("{e}")),
                };
                if let Some(ended) = ended {
                    p.lock().expect("not poisoned").ended = Some(ended);
                    break;
                }
            }
        });
        let download = Download { progress, stop, thread: Some(thread) };
        poll(Duration::from_secs(2), || {
            let p = download.progress.lock().expect("not poisoned");
            if let Some(ended) = &p.ended {
                bail!("phone {}'s download from {to} ended at once: {ended}", phone.label);
            }
            ensure!(p.bytes > 0, "phone {}'s download from {to}: no bytes yet", phone.label);
            Ok(())
        })?;
        if let Some(ended) = &download.progress.lock().expect("not poisoned").ended {
            bail!("phone {}'s download from {to}: {ended}", phone.label);
        }
        Ok(download)
    }

    /// Waits until the download has stopped (closed, reset, or stalled)
    /// and says how long after `ended` (when the grant ended) its last
    /// bytes came. Gives up when it still flows well past the bound.
    fn cut(&self, ended: Instant) -> Result<Cut> {
        let give_up = ended + CUT_WITHIN + STALLED_AFTER * 2;
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let p = self.progress.lock().expect("not poisoned");
            let last = p.last.context("no bytes")?;
            let now = Instant::now();
            let how = match &p.ended {
                Some(how) => Some(how.clone()),
                None if now.duration_since(last) >= STALLED_AFTER && now > ended => {
                    Some(format!("nothing for {STALLED_AFTER:?}, connection still open"))
                }
                None if now > give_up => Some("still flowing".to_owned()),
                None => None,
            };
            if let Some(how) = how {
                return Ok(Cut { last, after: last.saturating_duration_since(ended), how, bytes: p.bytes });
            }
        }
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
