//! The `nftables` backend: one `inet` table that Portico owns, driven by
//! the `nft` tool in atomic batches.
//!
//! Why the `nft` tool and not raw netlink: `nft -f -` applies a whole script
//! as one kernel transaction (all or nothing), its syntax is what operators
//! read and `portico firewall print` shows, and its error messages are the
//! ones an operator can search for. The cost, one process per batch, is paid
//! once per *batch*, not per grant: [`super::gate`] coalesces a burst of
//! accepts into one call.
//!
//! What the table does, for traffic arriving on `firewall.interface`:
//! - devices allowed: MAC in `allowed_mac`, or, for a routed client whose MAC
//!   the gateway cannot see, its address in `allowed_v4` / `allowed_v6`; all
//!   three sets carry per-element timeouts, so a grant expires in the kernel
//!   with no action from Portico;
//! - everyone else: TCP/80 to any address but the gateway's own is
//!   redirected to the portal's port (IPv4 and IPv6); DNS passes (a phone
//!   must resolve the probe host to be shown the page at all); every other
//!   forwarded packet is rejected at once (TCP reset, ICMP administratively
//!   prohibited), never dropped, so probes fail fast.
//!
//! A grant that ends, ends: every packet a device forwards is checked
//! against the sets, not only a connection's first (there is no `ct state
//! established accept` on the client side). So when a grant is revoked,
//! removed by a rebuild, or simply times out in the kernel, the device's
//! next packet on a connection it already had (a download's ACK) is
//! answered with a TCP reset, and its stream stops at once, with no action
//! from Portico and no race with the set's own timeout. Deleting the
//! device's conntrack entries instead would need Portico to notice the
//! expiry (the kernel does not announce a set element's timeout) and would
//! still leave a window; the set lookup it costs per packet is one hash
//! probe, the same as a new connection already pays. Answers coming back
//! from the internet are not checked: they enter on the upstream side and
//! only follow what the device's own packets opened. A gateway that
//! offloads established flows to a flowtable (OpenWrt's "flow offloading")
//! bypasses the forward hook for them; there the device's offloaded flows
//! end only when their conntrack entry does.
//!
//! The table only hooks `prerouting` (nat) and `forward` (filter), at a
//! priority just before the standard ones, and never `input`: the gateway's
//! own services (DHCP, DNS, SSH, the portal) are left to the distribution's
//! firewall, which Portico never touches.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use super::{Allowed, Firewall, FirewallError, Found};
use crate::config::Config;
use crate::grant::{Device, MacAddr};

pub struct Nftables {
    table: String,
    interfaces: Vec<String>,
    portal_port: u16,
}

/// Which set a grant lives in, and the element text.
enum Key {
    Mac(MacAddr),
    V4(IpAddr),
    V6(IpAddr),
}

impl Key {
    fn of(allowed: &Allowed) -> Key {
        match allowed.device {
            Device::Mac(mac) => Key::Mac(mac),
            Device::Addr(ip @ IpAddr::V4(_)) => Key::V4(ip),
            Device::Addr(ip @ IpAddr::V6(_)) => Key::V6(ip),
        }
    }

    fn set(&self) -> &'static str {
        match self {
            Key::Mac(_) => "allowed_mac",
            Key::V4(_) => "allowed_v4",
            Key::V6(_) => "allowed_v6",
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Mac(mac) => mac.fmt(f),
            Key::V4(ip) | Key::V6(ip) => ip.fmt(f),
        }
    }
}

impl Nftables {
    /// Checks what can be checked before touching the kernel: the `nft`
    /// tool is installed and every interface exists.
    pub fn new(config: &Config) -> Result<Nftables, FirewallError> {
        for name in &config.firewall.interfaces {
            if !Path::new("/sys/class/net").join(name).exists() {
                return Err(FirewallError::Unavailable(format!(
                    "firewall.interface: there is no interface {name:?} on this machine (see `ip link`)"
                )));
            }
        }
        Ok(Nftables {
            table: config.firewall.table.clone(),
            interfaces: config.firewall.interfaces.clone(),
            portal_port: config.portal.listen.port(),
        })
    }

    /// Builds a backend from parts, for printing without a live machine.
    pub fn from_parts(table: &str, interfaces: &[String], portal_port: u16) -> Nftables {
        Nftables { table: table.into(), interfaces: interfaces.to_vec(), portal_port }
    }

    /// The table definition, without any grant.
    fn definition(&self) -> String {
        let t = &self.table;
        let ifaces = self.interfaces.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
        let port = self.portal_port;
        format!(
            "table inet {t} {{
\tset allowed_mac {{
\t\ttype ether_addr
\t\tflags timeout
\t}}

\tset allowed_v4 {{
\t\ttype ipv4_addr
\t\tflags timeout
\t}}

\tset allowed_v6 {{
\t\ttype ipv6_addr
\t\tflags timeout
\t}}

\tchain prerouting {{
\t\ttype nat hook prerouting priority dstnat - 10; policy accept;
\t\tiifname {{ {ifaces} }} jump gate_nat
\t}}

\tchain gate_nat {{
\t\tether saddr @allowed_mac return
\t\tip saddr @allowed_v4 return
\t\tip6 saddr @allowed_v6 return
\t\tfib daddr type local return
\t\ttcp dport 80 redirect to :{port}
\t}}

\tchain forward {{
\t\ttype filter hook forward priority filter - 10; policy accept;
\t\tiifname {{ {ifaces} }} jump gate_forward
\t}}

\tchain gate_forward {{
\t\tether saddr @allowed_mac accept
\t\tip saddr @allowed_v4 accept
\t\tip6 saddr @allowed_v6 accept
\t\tmeta l4proto {{ tcp, udp }} th dport 53 accept
\t\tmeta l4proto tcp reject with tcp reset
\t\treject with icmpx admin-prohibited
\t}}
}}
"
        )
    }

    /// One `add element` line per set for `grants`, each element with its
    /// time left (one line per set keeps a large batch cheap to parse).
    fn add_elements(&self, grants: &[Allowed], now: SystemTime, out: &mut String) {
        let elements = grants.iter().filter_map(|g| {
            let left = g.remaining(now);
            // Round up, so the kernel never ends a grant before Portico does.
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            (!left.is_zero()).then(|| (Key::of(g), Some(secs)))
        });
        self.by_set("add", elements, out);
    }

    /// Removes elements that may or may not be there: `add` first makes the
    /// `delete` valid in either case, all inside one transaction.
    fn remove_elements(&self, grants: &[Allowed], out: &mut String) {
        self.by_set("add", grants.iter().map(|g| (Key::of(g), Some(1))), out);
        self.by_set("delete", grants.iter().map(|g| (Key::of(g), None)), out);
    }

    /// `<verb> element inet T <set> { e1 timeout Ns, e2 … }`, a line per set,
    /// each element with its timeout in seconds if it has one, written
    /// straight into `out`: a rebuild with 100,000 grants makes one string,
    /// not one per element.
    fn by_set(&self, verb: &str, elements: impl Iterator<Item = (Key, Option<u64>)>, out: &mut String) {
        use std::fmt::Write as _;
        let elements: Vec<(Key, Option<u64>)> = elements.collect();
        for set in ["allowed_mac", "allowed_v4", "allowed_v6"] {
            let mut first = true;
            // Writing to a String cannot fail.
            for (key, timeout) in elements.iter().filter(|(key, _)| key.set() == set) {
                if first {
                    let _ = write!(out, "{verb} element inet {} {set} {{ ", self.table);
                } else {
                    out.push_str(", ");
                }
                let _ = write!(out, "{key}");
                if let Some(secs) = timeout {
                    let _ = write!(out, " timeout {secs}s");
                }
                first = false;
            }
            if !first {
                out.push_str(" }\n");
            }
        }
    }

    /// Runs a script as one transaction.
    fn run(&self, script: &str) -> Result<String, FirewallError> {
        nft(&["-f", "-"], Some(script))
    }

    /// Deletes Portico's table, if it is there.
    pub fn remove(&self) -> Result<(), FirewallError> {
        self.run(&format!("add table inet {t}\ndelete table inet {t}\n", t = self.table)).map(|_| ())
    }
}

impl Firewall for Nftables {
    fn name(&self) -> &'static str {
        "nftables"
    }

    /// Replaces the whole table and its grants in one transaction, so there
    /// is no moment without rules (and none in which a granted device is
    /// held). This is both start-up reconciliation and drift repair: the
    /// kernel ends up with exactly the live grants of the store.
    ///
    /// The script goes to nft a few thousand elements at a time: with
    /// 100,000 grants, building it whole cost megabytes that the allocator
    /// kept afterwards. It is still one script, so one transaction.
    fn install(&self, live: &[Allowed], now: SystemTime) -> Result<(), FirewallError> {
        nft_fed(&["-f", "-"], true, |pipe| {
            pipe.write_all(self.ruleset().as_bytes())?;
            let mut piece = String::new();
            for grants in live.chunks(4096) {
                piece.clear();
                self.add_elements(grants, now, &mut piece);
                pipe.write_all(piece.as_bytes())?;
            }
            Ok(())
        })
        .map(|_| ())
    }

    fn allow(&self, fresh: &[Allowed], renewed: &[Allowed], now: SystemTime) -> Result<(), FirewallError> {
        // A renewed grant is removed then added: an `add` of an element
        // already present would keep its old timeout. Fresh ones are only
        // added: a transaction with a `delete` waits several times longer in
        // the kernel, and a new device has nothing to delete.
        let mut script = String::new();
        self.remove_elements(renewed, &mut script);
        let all: Vec<Allowed> = renewed.iter().chain(fresh).copied().collect();
        self.add_elements(&all, now, &mut script);
        self.run(&script).map(|_| ())
    }

    fn revoke(&self, grants: &[Allowed]) -> Result<(), FirewallError> {
        let mut script = String::new();
        self.remove_elements(grants, &mut script);
        self.run(&script).map(|_| ())
    }

    fn validate(&self) -> Result<(), FirewallError> {
        nft(&["-c", "-f", "-"], Some(&self.ruleset())).map(|_| ())
    }

    fn generation(&self) -> Option<u32> {
        super::generation::read().map_err(|e| tracing::debug!(error = %e, "cannot read the ruleset generation")).ok()
    }

    fn check(&self, live: &[Allowed], now: SystemTime) -> Result<Found, FirewallError> {
        let listing = match nft(&["-j", "list", "table", "inet", &self.table], None) {
            Ok(listing) => listing,
            // The table is gone (`nft flush ruleset`, a firewall reload).
            Err(FirewallError::Failed(_)) => return Ok(Found::Broken),
            Err(e) => return Err(e),
        };
        let parsed = super::listing::Listing::parse(&listing)
            .map_err(|e| FirewallError::Failed(format!("cannot read `nft -j list table` output: {e}")))?;
        if parsed.rules != EXPECTED_RULES || parsed.chains != EXPECTED_CHAINS {
            return Ok(Found::Broken);
        }
        // A grant about to expire may already be gone from the kernel.
        let missing: Vec<Allowed> = live
            .iter()
            .filter(|g| g.remaining(now).as_secs() > 2)
            .filter(|g| {
                let key = Key::of(g);
                !parsed.has(key.set(), &key.to_string())
            })
            .copied()
            .collect();
        Ok(if missing.is_empty() { Found::Intact } else { Found::Missing(missing) })
    }

    fn ruleset(&self) -> String {
        // `add` then `delete` makes the script idempotent: it replaces any
        // earlier version of the table, and works when there is none.
        format!("add table inet {t}\ndelete table inet {t}\n{}", self.definition(), t = self.table)
    }
}

/// Rules and chains in [`Nftables::definition`]; a listing with other counts
/// has been changed by someone else.
const EXPECTED_RULES: usize = 13;
const EXPECTED_CHAINS: usize = 4;

/// Runs `nft` with `args`, feeding `stdin`; turns its failures into errors
/// that say what to install or fix.
fn nft(args: &[&str], stdin: Option<&str>) -> Result<String, FirewallError> {
    match stdin {
        Some(text) => nft_fed(args, true, |pipe| pipe.write_all(text.as_bytes())),
        None => nft_fed(args, false, |_| Ok(())),
    }
}

/// Runs `nft` with `args`, `feed` writing its standard input (when `piped`):
/// a large script goes to nft in pieces instead of being built whole.
fn nft_fed(
    args: &[&str],
    piped: bool,
    feed: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<String, FirewallError> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if piped { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => FirewallError::Unavailable(
                "the `nft` command is not installed: install the nftables package (apt-get install nftables)".into(),
            ),
            _ => FirewallError::Unavailable(format!("cannot run nft: {e}")),
        })?;
    if let Some(pipe) = child.stdin.take() {
        let mut pipe = std::io::BufWriter::with_capacity(64 * 1024, pipe);
        feed(&mut pipe)
            .and_then(|()| pipe.flush())
            .map_err(|e| FirewallError::Failed(format!("writing to nft: {e}")))?;
    }
    let out = child.wait_with_output().map_err(|e| FirewallError::Failed(format!("waiting for nft: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().find(|l| l.contains("Error")).unwrap_or(stderr.trim()).trim().to_owned();
    if stderr.contains("Operation not permitted") {
        return Err(FirewallError::Unavailable(format!(
            "nft was refused ({first}): Portico needs root or the CAP_NET_ADMIN capability"
        )));
    }
    if stderr.contains("Protocol not supported") || stderr.contains("not supported") {
        return Err(FirewallError::Unavailable(format!(
            "the kernel lacks nftables support ({first}): it needs nf_tables with inet nat, fib, redirect and reject"
        )));
    }
    Err(FirewallError::Failed(format!("nft {}: {first}", args.join(" "))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn backend() -> Nftables {
        Nftables::from_parts("portico", &["br-lan".into(), "wlan0".into()], 8080)
    }

    #[test]
    fn ruleset_counts_match_what_check_expects() {
        let text = backend().definition();
        let chains = text.matches("\tchain ").count();
        let rules = text
            .lines()
            .filter(|l| {
                l.starts_with("\t\t") && !l.trim_start().starts_with("type ") && !l.trim_start().starts_with("flags ")
            })
            .count();
        assert_eq!((chains, rules), (EXPECTED_CHAINS, EXPECTED_RULES), "{text}");
        assert!(text.contains("iifname { \"br-lan\", \"wlan0\" } jump gate_nat"));
        assert!(text.contains("redirect to :8080"));
    }

    #[test]
    fn elements_carry_the_time_left_and_go_to_the_right_set() {
        let now = SystemTime::now();
        let routed = |ip: &str, expires| {
            let ip: IpAddr = ip.parse().unwrap();
            Allowed { device: Device::Addr(ip), expires }
        };
        let phone = Device::Mac("02:00:00:00:00:07".parse().unwrap());
        let grants = [
            Allowed { device: phone, expires: now + Duration::from_millis(90_500) },
            routed("10.0.0.8", now + Duration::from_secs(60)),
            routed("fd00::9", now + Duration::from_secs(60)),
            routed("10.0.0.10", now - Duration::from_secs(1)),
        ];
        let mut out = String::new();
        backend().add_elements(&grants, now, &mut out);
        assert_eq!(
            out,
            "add element inet portico allowed_mac { 02:00:00:00:00:07 timeout 91s }\n\
             add element inet portico allowed_v4 { 10.0.0.8 timeout 60s }\n\
             add element inet portico allowed_v6 { fd00::9 timeout 60s }\n"
        );
        let mut out = String::new();
        backend().remove_elements(&grants[1..3], &mut out);
        assert_eq!(
            out,
            "add element inet portico allowed_v4 { 10.0.0.8 timeout 1s }\n\
             add element inet portico allowed_v6 { fd00::9 timeout 1s }\n\
             delete element inet portico allowed_v4 { 10.0.0.8 }\n\
             delete element inet portico allowed_v6 { fd00::9 }\n"
        );
    }
}
