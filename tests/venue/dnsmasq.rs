//! dnsmasq (Debian's `dnsmasq-base`), the venue's real DHCP and DNS server,
//! as a gateway runs it beside Portico: DHCPv4 on `br-lan` with RFC 8910
//! option 114 (the RFC 8908 API URL, from `portico dhcp print`), IPv6 by router advertisements for
//! SLAAC (`enable-ra`, `ra-only`), and DNS. A second instance, DNS only,
//! is the "internet's" resolver in the upstream namespace.
//!
//! What must stay true:
//! - DNS is truthful and only ever about the test's own names: the
//!   upstream's (`site.venue.test`, the Android probe host, pointing at the
//!   upstream namespace) and the portal's; dnsmasq forwards nothing
//!   (`no-resolv`, `no-hosts`), so no query leaves the venue;
//! - each instance is a child of this process, run in the foreground, and
//!   killed and reaped on drop, before the namespaces go.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::dns;
use crate::netns::Netns;
use crate::wiring::Venue;

/// A name of the test's own that resolves to the upstream. Under the
/// reserved `.test` TLD, so chromium never upgrades it to https.
pub const SITE_HOST: &str = "site.venue.test";
/// The walled garden's one name (Portico's config lists it), and another
/// name on the same upstream that is not in it; the gateway's dnsmasq
/// forwards both to the upstream's, as a venue's forwards to its ISP, so
/// its `nftset=` line sees the answers.
pub const GARDEN_HOST: &str = "garden.venue.test";
pub const OTHER_HOST: &str = "other.venue.test";
/// The portal's name, as option 114 gives it.
pub const PORTAL_HOST: &str = "portal.venue.test";
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The RFC 8908 API URL the gateway should hand out in option 114, for
/// an https portal on [`PORTAL_HOST`].
pub fn captive_api_url() -> String {
    format!("https://{PORTAL_HOST}/api/captive")
}

/// A running dnsmasq; killed on drop.
pub struct Dnsmasq {
    child: Option<Child>,
    pub leases: PathBuf,
}

impl Dnsmasq {
    /// The gateway's: DHCP (v4 leases, v6 RA) on `br-lan` and DNS there,
    /// with `announce`, the lines of `portico dhcp print`, as they are.
    pub fn gateway(venue: &Venue, dir: &Path, announce: &str) -> Result<Dnsmasq> {
        let lan = venue.lan_v4.octets();
        let pool = |host: u8| Ipv4Addr::new(lan[0], lan[1], lan[2], host);
        let prefix = Ipv6Addr::from(u128::from(venue.lan_v6) & !0xffff_ffff_ffff_ffff);
        let dhcp = format!(
            "interface=br-lan\n\
             dhcp-authoritative\n\
             dhcp-range={},{},255.255.255.0,1h\n\
             dhcp-option=option:router,{lan}\n\
             dhcp-option=option:dns-server,{lan}\n\
             {announce}\
             dhcp-leasefile={leases}\n\
             log-dhcp\n\
             enable-ra\n\
             dhcp-range={prefix},ra-only,64,1h\n\
             ra-param=br-lan,10,1800\n",
            pool(100),
            pool(199),
            lan = venue.lan_v4,
            leases = dir.join("gw.leases").display(),
        );
        let names = format!(
            "{}host-record={PORTAL_HOST},{},{}\nserver=/{GARDEN_HOST}/{up}\nserver=/{OTHER_HOST}/{up}\n",
            upstream_names(venue),
            venue.lan_v4,
            venue.lan_v6,
            up = venue.up_v4
        );
        Dnsmasq::start(&venue.gw, dir, "gw", &format!("{dhcp}{names}"), SocketAddr::new(venue.lan_v4.into(), 53))
    }

    /// The upstream's: DNS only, on its `eth0`.
    pub fn upstream(venue: &Venue, dir: &Path) -> Result<Dnsmasq> {
        let conf = format!("interface=eth0\n{}{}", upstream_names(venue), garden_names(venue));
        Dnsmasq::start(&venue.upstream, dir, "upstream", &conf, SocketAddr::new(venue.up_v4.into(), 53))
    }

    fn start(ns: &Netns, dir: &Path, name: &str, specific: &str, ask: SocketAddr) -> Result<Dnsmasq> {
        let conf = dir.join(format!("dnsmasq-{name}.conf"));
        let log = dir.join(format!("dnsmasq-{name}.log"));
        // `user=root`: the test's folder is root's alone, and dnsmasq would
        // otherwise drop to `nobody` and fail to write its lease file.
        let text = format!(
            "# dnsmasq of the venue test ({name}); written by tests/venue/dnsmasq.rs\n\
             port=53\n\
             bind-interfaces\n\
             no-resolv\n\
             no-hosts\n\
             no-poll\n\
             user=root\n\
             log-queries\n\
             log-facility={}\n\
             {specific}",
            log.display()
        );
        std::fs::write(&conf, text).context("writing the dnsmasq config")?;
        let child = ns
            .command("dnsmasq", &["--keep-in-foreground", "--pid-file=", &format!("--conf-file={}", conf.display())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("dnsmasq-{name}.err")))?)
            .spawn()
            .context("spawning dnsmasq")?;
        let mut dnsmasq = Dnsmasq { child: Some(child), leases: dir.join(format!("{name}.leases")) };
        // Ready when it answers a query for one of its names.
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = dnsmasq.child.as_mut().and_then(|c| c.try_wait().ok()?) {
                let err = std::fs::read_to_string(dir.join(format!("dnsmasq-{name}.err"))).unwrap_or_default();
                dnsmasq.child = None;
                bail!("dnsmasq ({name}) exited at start: {status}: {}", err.trim());
            }
            let socket = ns.run(|| UdpSocket::bind("0.0.0.0:0"))?;
            if dns::query(&socket, ask, crate::dnsmasq::SITE_HOST, dns::A).is_ok() {
                return Ok(dnsmasq);
            }
            if Instant::now() > deadline {
                bail!("dnsmasq ({name}) did not answer DNS at {ask} within {READY_WITHIN:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The lease file's line for `mac`, if dnsmasq wrote one.
    pub fn lease_of(&self, mac: &str) -> Option<String> {
        let text = std::fs::read_to_string(&self.leases).ok()?;
        text.lines().find(|l| l.to_ascii_lowercase().contains(&mac.to_ascii_lowercase())).map(str::to_owned)
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The upstream's names, A and AAAA: a site, and the Android probe host,
/// whose probe the upstream answers as Google's does.
fn upstream_names(venue: &Venue) -> String {
    [SITE_HOST, crate::phone::PROBE_HOST]
        .iter()
        .map(|host| format!("host-record={host},{},{}\n", venue.up_v4, venue.up_v6))
        .collect()
}

/// The upstream's names for the garden checks (only the upstream's
/// dnsmasq answers them, so the gateway's forwards their queries).
fn garden_names(venue: &Venue) -> String {
    let [g4, g6] = venue.garden_addrs();
    let [o4, o6] = venue.other_addrs();
    format!("host-record={GARDEN_HOST},{g4},{g6}\nhost-record={OTHER_HOST},{o4},{o6}\n")
}
