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
//! - trusted devices (MAC in `trusted_mac`, no timeout) pass, always;
//! - devices allowed: MAC in `allowed_mac`, or, for a routed client whose MAC
//!   the gateway cannot see, its address in `allowed_v4` / `allowed_v6`; all
//!   three sets carry per-element timeouts, so a grant expires in the kernel
//!   with no action from Portico;
//! - the walled garden, when it has names: any device may reach the
//!   addresses in `garden_v4` / `garden_v6` on the garden's ports. dnsmasq
//!   fills them as it resolves the names (see [`crate::garden`]); each
//!   use refreshes an address's timeout, so an address in use stays;
//! - everyone else: TCP/80 to any address but the gateway's own is
//!   redirected to the portal's port (IPv4 and IPv6); DNS passes (a phone
//!   must resolve the probe host to be shown the page at all); every other
//!   forwarded packet is rejected at once (TCP reset, ICMP administratively
//!   prohibited), never dropped, so probes fail fast.
//!
//! Fair use (`firewall.device_rate`, `device_upload_rate`) is a meter per
//! device in the same table: a dynamic set whose element for a device
//! (created by its first packet, gone a minute after its last) carries a
//! token bucket, `update @down_v4 { ip daddr limit rate over R bytes/second
//! burst B bytes } drop`. Uploads are metered by what the grant is keyed by
//! (the MAC, or the address of a routed client); downloads, which leave
//! towards the device and carry no MAC of it at the forward hook, by its
//! address. Trusted devices are exempt unless `limit_trusted`: their
//! uploads are accepted before any meter, and the addresses they send from
//! are learned (`trusted_v4` / `trusted_v6`, from the packet path) so their
//! downloads skip the meter too.
//!
//! Why nftables and not `tc`: `tc` shapes (queues) where a policer drops,
//! which TCP takes a little better, but per-device shaping needs a class
//! and a filter per device, added and removed as grants come and go (and
//! an `ifb` device for the upload side), outside Portico's one table: a
//! rebuild, a drift check, `firewall remove` and an operator's `nft list`
//! would each have a second place to cover, and 100,000 grants would mean
//! 100,000 classes. The meter lives in the table: the kernel creates and
//! expires each device's bucket by itself, a rebuild replaces it with the
//! rest in one transaction, and it costs a hash lookup per packet (within
//! the noise of `benches/fairuse.sh` at line rate). A policer makes TCP
//! resend what it drops (about a tenth with cubic, half with BBR, in that
//! bench), but each device's goodput stays within a few per cent of its
//! rate, which is the promise.
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
//! An alert's open gate (`portico alert set --open-gate`) is one set,
//! `gate_open`, of interface names: empty, the gate is closed; holding
//! `firewall.interface`'s names, every device arriving on them passes as
//! if granted, `iifname @gate_open return` in the NAT chain (no redirect
//! to the portal) and `iifname @gate_open accept` in the forward chain,
//! IPv4 and IPv6, after the grants and the walled garden. Opening is one
//! transaction (`flush set` then `add element`), closing another (`flush
//! set`); neither touches a grant's or a trusted device's set, so closing
//! holds exactly the devices without a grant again. Why a set and not a
//! rule added and deleted by handle: the rules are the same in both
//! states, so the chains and rules the drift check expects (and the
//! ruleset `firewall print` shows, and the crc a clean stop notes) do not
//! depend on it; the state is one element list that `check` compares and
//! that `install` writes with the rest, so a rebuild while open stays
//! open. The backend remembers the state it was last asked for, even when
//! the kernel refused it, so the rebuild that follows puts it in. Fair use
//! still applies while open: a device with a grant is metered as always;
//! one without is metered by its address, in the same meters a routed
//! client's grant uses (by its MAC, every client behind a downstream
//! router would share one device's rate; by address, a phone with an IPv4
//! and an IPv6 address has a share on each, the lesser harm).
//!
//! The table only hooks `prerouting` (nat) and `forward` (filter), at a
//! priority just before the standard ones, and never `input`: the gateway's
//! own services (DHCP, DNS, SSH, the portal) are left to the distribution's
//! firewall, which Portico never touches.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use super::{Allowed, Firewall, FirewallError, Found};
use crate::config::{Config, Rate};
use crate::grant::{Device, MacAddr};

pub struct Nftables {
    table: String,
    interfaces: Vec<String>,
    portal_port: u16,
    /// The walled garden's ports, when it has hosts.
    garden: Option<Vec<u16>>,
    /// Each device's download and upload share, in bytes per second.
    down: Option<u64>,
    up: Option<u64>,
    limit_trusted: bool,
    /// What [`Nftables::definition`] holds: how many chains and rules.
    expected: (usize, usize),
    /// Whether an alert opened the gate: what `gate_open` holds, and what
    /// `install` puts back.
    open: AtomicBool,
}

/// The parts of a [`Nftables`] that decide its ruleset.
#[derive(Clone, Debug, Default)]
pub struct Parts {
    pub table: String,
    pub interfaces: Vec<String>,
    pub portal_port: u16,
    pub garden_ports: Option<Vec<u16>>,
    pub device_rate: Option<Rate>,
    pub device_upload_rate: Option<Rate>,
    pub limit_trusted: bool,
}

impl Parts {
    pub fn of(config: &Config) -> Parts {
        Parts {
            table: config.firewall.table.clone(),
            interfaces: config.firewall.interfaces.clone(),
            portal_port: config.portal.listen.port(),
            garden_ports: (!config.walled_garden.is_empty()).then(|| config.walled_garden.ports.clone()),
            device_rate: config.firewall.device_rate,
            device_upload_rate: config.firewall.device_upload_rate,
            limit_trusted: config.firewall.limit_trusted,
        }
    }
}

/// One chain of the table.
struct Chain {
    name: &'static str,
    /// `type … hook … priority …; policy …;` for a base chain.
    hook: Option<&'static str>,
    rules: Vec<String>,
}

/// How long a trusted device's address is remembered after its last
/// packet, for its downloads to pass the rate.
const LEARNED_FOR: &str = "10m";
/// How long a walled-garden address stays open after it was last resolved
/// or used: longer than dnsmasq keeps a cached answer, which it gives
/// without adding the address again.
const GARDEN_FOR: &str = "1d";
/// The set whose elements open the gate: Portico's interfaces, or none.
const OPEN_SET: &str = "gate_open";
/// How long a device's rate meter is kept after its last packet.
const METER_FOR: &str = "1m";
/// The most devices metered at once (100,000 grants fit with room).
const METERS: u32 = 262_144;

/// The burst of a rate: a quarter second's worth, and at least 64 KiB.
/// The kernel's bucket for a byte limit holds one second of the rate plus
/// the burst (measured: 632 KB passed at once at 500,000 bytes/second with
/// a burst of 125,000), and a packet larger than the whole bucket never
/// passes: a gateway's WAN card merges incoming segments into packets of
/// up to 64 KiB (GRO), so at a slow rate a smaller bucket would drop those
/// every time. The kernel keeps the burst in 32 bits.
fn burst(bytes_per_second: u64) -> u64 {
    (bytes_per_second / 4).clamp(64 * 1024, u64::from(u32::MAX))
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

    /// The element's key as the kernel holds it (see `shape::key`).
    fn bytes(&self) -> super::shape::Key {
        match self {
            Key::Mac(mac) => super::shape::key(&mac.0),
            Key::V4(ip) | Key::V6(ip) => match ip {
                IpAddr::V4(v4) => super::shape::key(&v4.octets()),
                IpAddr::V6(v6) => super::shape::key(&v6.octets()),
            },
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
        Ok(Nftables::from_parts(Parts::of(config)))
    }

    /// Builds a backend from parts, for printing without a live machine.
    pub fn from_parts(parts: Parts) -> Nftables {
        let mut nft = Nftables {
            table: parts.table,
            interfaces: parts.interfaces,
            portal_port: parts.portal_port,
            garden: parts.garden_ports,
            down: parts.device_rate.map(Rate::bytes_per_second),
            up: parts.device_upload_rate.map(Rate::bytes_per_second),
            limit_trusted: parts.limit_trusted,
            expected: (0, 0),
            open: AtomicBool::new(false),
        };
        let chains = nft.chains();
        nft.expected = (chains.len(), chains.iter().map(|c| c.rules.len()).sum());
        nft
    }

    /// Whether trusted devices' addresses are learned, so that their
    /// downloads, which carry no MAC Portico can match, pass the rate.
    fn learns_trusted(&self) -> bool {
        self.down.is_some() && !self.limit_trusted
    }

    /// The sets: `(name, declaration)`.
    fn sets(&self) -> Vec<(&'static str, String)> {
        let timed = |ty: &str| format!("type {ty}; flags timeout;");
        // Filled from the packet path (or by dnsmasq), each element
        // expiring `timeout` after it was last used.
        let dynamic = |ty: &str, size: u32, timeout: &str| {
            format!("type {ty}; size {size}; flags dynamic,timeout; timeout {timeout};")
        };
        let mut sets = vec![
            ("allowed_mac", timed("ether_addr")),
            ("allowed_v4", timed("ipv4_addr")),
            ("allowed_v6", timed("ipv6_addr")),
            ("trusted_mac", "type ether_addr;".to_owned()),
            // An alert's open gate: see the module's note.
            (OPEN_SET, "type ifname;".to_owned()),
        ];
        if self.learns_trusted() {
            sets.push(("trusted_v4", dynamic("ipv4_addr", 65_536, LEARNED_FOR)));
            sets.push(("trusted_v6", dynamic("ipv6_addr", 65_536, LEARNED_FOR)));
        }
        if self.garden.is_some() {
            sets.push(("garden_v4", dynamic("ipv4_addr", 65_536, GARDEN_FOR)));
            sets.push(("garden_v6", dynamic("ipv6_addr", 65_536, GARDEN_FOR)));
        }
        if self.up.is_some() {
            sets.push(("up_mac", dynamic("ether_addr", METERS, METER_FOR)));
            sets.push(("up_v4", dynamic("ipv4_addr", METERS, METER_FOR)));
            sets.push(("up_v6", dynamic("ipv6_addr", METERS, METER_FOR)));
        }
        if self.down.is_some() {
            sets.push(("down_v4", dynamic("ipv4_addr", METERS, METER_FOR)));
            sets.push(("down_v6", dynamic("ipv6_addr", METERS, METER_FOR)));
        }
        sets
    }

    /// The chains, each with its hook (for a base chain) and its rules.
    fn chains(&self) -> Vec<Chain> {
        let ifaces = self.interfaces.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
        let garden_ports = self.garden.as_ref().map(|p| p.iter().map(u16::to_string).collect::<Vec<_>>().join(", "));
        let limit = |rate: u64| format!("limit rate over {rate} bytes/second burst {} bytes", burst(rate));

        let mut nat = vec![
            "ether saddr @trusted_mac return".to_owned(),
            "ether saddr @allowed_mac return".to_owned(),
            "ip saddr @allowed_v4 return".to_owned(),
            "ip6 saddr @allowed_v6 return".to_owned(),
            format!("iifname @{OPEN_SET} return"),
            "fib daddr type local return".to_owned(),
        ];
        // Port 80 of a garden host is reached, not redirected to the page.
        if let Some(ports) = &garden_ports
            && self.garden.as_ref().is_some_and(|p| p.contains(&80))
        {
            nat.push(format!("ip daddr @garden_v4 tcp dport {{ {ports} }} return"));
            nat.push(format!("ip6 daddr @garden_v6 tcp dport {{ {ports} }} return"));
        }
        nat.push(format!("tcp dport 80 redirect to :{}", self.portal_port));

        let mut forward = Vec::new();
        if self.learns_trusted() {
            forward.push("ether saddr @trusted_mac update @trusted_v4 { ip saddr }".to_owned());
            forward.push("ether saddr @trusted_mac update @trusted_v6 { ip6 saddr }".to_owned());
        }
        if let Some(up) = self.up
            && self.limit_trusted
        {
            forward.push(format!("ether saddr @trusted_mac update @up_mac {{ ether saddr {} }} drop", limit(up)));
        }
        forward.push("ether saddr @trusted_mac accept".to_owned());
        for (set, key, meter) in [
            ("ether saddr @allowed_mac", "ether saddr", "up_mac"),
            ("ip saddr @allowed_v4", "ip saddr", "up_v4"),
            ("ip6 saddr @allowed_v6", "ip6 saddr", "up_v6"),
        ] {
            if let Some(up) = self.up {
                forward.push(format!("{set} update @{meter} {{ {key} {} }} drop", limit(up)));
            }
            forward.push(format!("{set} accept"));
        }
        if let Some(ports) = &garden_ports {
            for (family, set) in [("ip", "garden_v4"), ("ip6", "garden_v6")] {
                forward.push(format!(
                    "{family} daddr @{set} meta l4proto {{ tcp, udp }} th dport {{ {ports} }} update @{set} {{ {family} daddr }} accept"
                ));
            }
        }
        if let Some(up) = self.up {
            forward.push(format!("iifname @{OPEN_SET} update @up_v4 {{ ip saddr {} }} drop", limit(up)));
            forward.push(format!("iifname @{OPEN_SET} update @up_v6 {{ ip6 saddr {} }} drop", limit(up)));
        }
        forward.push(format!("iifname @{OPEN_SET} accept"));
        forward.push("meta l4proto { tcp, udp } th dport 53 accept".to_owned());
        forward.push("meta l4proto tcp reject with tcp reset".to_owned());
        forward.push("reject with icmpx admin-prohibited".to_owned());

        let mut hook = vec![format!("iifname {{ {ifaces} }} jump gate_forward")];
        let mut down = Vec::new();
        if let Some(rate) = self.down {
            hook.push(format!("oifname {{ {ifaces} }} jump gate_down"));
            if self.learns_trusted() {
                down.push("ip daddr @trusted_v4 return".to_owned());
                down.push("ip6 daddr @trusted_v6 return".to_owned());
            }
            down.push(format!("update @down_v4 {{ ip daddr {} }} drop", limit(rate)));
            down.push(format!("update @down_v6 {{ ip6 daddr {} }} drop", limit(rate)));
        }
        let mut chains = vec![
            Chain {
                name: "prerouting",
                hook: Some("type nat hook prerouting priority dstnat - 10; policy accept;"),
                rules: vec![format!("iifname {{ {ifaces} }} jump gate_nat")],
            },
            Chain { name: "gate_nat", hook: None, rules: nat },
            Chain {
                name: "forward",
                hook: Some("type filter hook forward priority filter - 10; policy accept;"),
                rules: hook,
            },
            Chain { name: "gate_forward", hook: None, rules: forward },
        ];
        if !down.is_empty() {
            chains.push(Chain { name: "gate_down", hook: None, rules: down });
        }
        chains
    }

    /// The table definition, without any grant.
    fn definition(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!("table inet {} {{\n", self.table);
        // Writing to a String cannot fail.
        for (name, declaration) in self.sets() {
            if name == OPEN_SET {
                let _ = writeln!(out, "\t# Empty: the gate is closed. An alert's --open-gate adds the interfaces.");
            }
            let _ = writeln!(out, "\tset {name} {{ {declaration} }}");
        }
        for chain in self.chains() {
            let _ = writeln!(out, "\n\tchain {} {{", chain.name);
            if let Some(hook) = chain.hook {
                let _ = writeln!(out, "\t\t{hook}");
            }
            for rule in &chain.rules {
                let _ = writeln!(out, "\t\t{rule}");
            }
            out.push_str("\t}\n");
        }
        out.push_str("}\n");
        out
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

    /// The keys `gate_open` holds in the kernel in the state last asked for.
    fn open_keys(&self) -> foldhash::HashSet<super::shape::Key> {
        match self.open.load(Ordering::Acquire) {
            true => self.interfaces.iter().map(|i| super::shape::key(i.as_bytes())).collect(),
            false => foldhash::HashSet::default(),
        }
    }

    /// `add element … trusted_mac { … }`, or nothing for no device.
    fn trusted_elements(&self, trusted: &[MacAddr]) -> String {
        if trusted.is_empty() {
            return String::new();
        }
        let macs = trusted.iter().map(MacAddr::to_string).collect::<Vec<_>>().join(", ");
        format!("add element inet {} trusted_mac {{ {macs} }}\n", self.table)
    }

    /// What an install writes before the grants: the table, the trusted
    /// devices, and the open gate if an alert opened it.
    fn install_head(&self, trusted: &[MacAddr]) -> String {
        let mut script = self.ruleset();
        script.push_str(&self.trusted_elements(trusted));
        if self.open.load(Ordering::Acquire) {
            script.push_str(&self.open_elements(true));
        }
        script
    }

    /// What makes `gate_open` hold the gate's state: emptied, then, when
    /// open, given every interface.
    fn open_elements(&self, open: bool) -> String {
        let mut script = format!("flush set inet {} {OPEN_SET}\n", self.table);
        if open {
            let ifaces = self.interfaces.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
            script.push_str(&format!("add element inet {} {OPEN_SET} {{ {ifaces} }}\n", self.table));
        }
        script
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
    fn install(&self, live: &[Allowed], trusted: &[MacAddr], now: SystemTime) -> Result<(), FirewallError> {
        nft_fed(&["-f", "-"], true, |pipe| {
            pipe.write_all(self.install_head(trusted).as_bytes())?;
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

    /// One transaction: the set emptied and filled again, and the learned
    /// addresses forgotten (an untrusted device's address must not keep
    /// its downloads exempt).
    fn trust(&self, trusted: &[MacAddr]) -> Result<(), FirewallError> {
        let t = &self.table;
        let mut script = format!("flush set inet {t} trusted_mac\n");
        if self.learns_trusted() {
            script.push_str(&format!("flush set inet {t} trusted_v4\nflush set inet {t} trusted_v6\n"));
        }
        script.push_str(&self.trusted_elements(trusted));
        self.run(&script).map(|_| ())
    }

    /// One transaction on `gate_open` alone. The state is kept first: if
    /// the kernel refuses, the rebuild that follows installs it.
    fn set_open(&self, open: bool) -> Result<(), FirewallError> {
        self.open.store(open, Ordering::Release);
        self.run(&self.open_elements(open)).map(|_| ())
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

    fn rules_intact(&self) -> Option<bool> {
        match super::shape::read(&self.table) {
            Ok(shape) => Some(shape == self.expected),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the table's chains and rules over netlink");
                None
            }
        }
    }

    /// Reads the table over netlink (see `shape`): its chains and rules,
    /// then the sets' elements, never through an `nft` listing.
    fn check(&self, live: &[Allowed], trusted: &[MacAddr], now: SystemTime) -> Result<Found, FirewallError> {
        let unreadable = |e: std::io::Error| FirewallError::Failed(format!("cannot read the table over netlink: {e}"));
        // The table is gone (`nft flush ruleset`, a firewall reload) or changed.
        if super::shape::read(&self.table).map_err(unreadable)? != self.expected {
            return Ok(Found::Broken);
        }
        let held = super::shape::elements(&self.table, "trusted_mac").map_err(unreadable)?;
        if !trusted.iter().all(|mac| held.contains(&super::shape::key(&mac.0))) {
            return Ok(Found::Broken);
        }
        // A gate opened or closed by someone else: the rebuild puts back
        // the state the alert asked for.
        if super::shape::elements(&self.table, OPEN_SET).map_err(unreadable)? != self.open_keys() {
            return Ok(Found::Broken);
        }
        let mut sets = std::collections::HashMap::new();
        let mut missing = Vec::new();
        // A grant about to expire may already be gone from the kernel.
        for grant in live.iter().filter(|g| g.remaining(now).as_secs() > 2) {
            let key = Key::of(grant);
            let elements = match sets.entry(key.set()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(super::shape::elements(&self.table, key.set()).map_err(unreadable)?)
                }
            };
            if !elements.contains(&key.bytes()) {
                missing.push(*grant);
            }
        }
        Ok(if missing.is_empty() { Found::Intact } else { Found::Missing(missing) })
    }

    fn ruleset(&self) -> String {
        // `add` then `delete` makes the script idempotent: it replaces any
        // earlier version of the table, and works when there is none.
        format!("add table inet {t}\ndelete table inet {t}\n{}", self.definition(), t = self.table)
    }
}

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

    fn parts() -> Parts {
        Parts {
            table: "portico".into(),
            interfaces: vec!["br-lan".into(), "wlan0".into()],
            portal_port: 8080,
            ..Parts::default()
        }
    }

    fn backend() -> Nftables {
        Nftables::from_parts(parts())
    }

    /// Chains and rules as the text has them (a rule is a line in a chain
    /// that is not its hook), to compare with what `check` expects.
    fn counted(nft: &Nftables) -> (usize, usize) {
        let text = nft.definition();
        let chains = text.matches("\tchain ").count();
        let rules = text.lines().filter(|l| l.starts_with("\t\t") && !l.trim_start().starts_with("type ")).count();
        (chains, rules)
    }

    #[test]
    fn ruleset_counts_match_what_check_expects() {
        let plain = backend();
        assert_eq!(counted(&plain), plain.expected);
        assert_eq!(plain.expected, (4, 17), "{}", plain.definition());
        let text = plain.definition();
        assert!(text.contains("iifname { \"br-lan\", \"wlan0\" } jump gate_nat"));
        assert!(text.contains("redirect to :8080"));
        assert!(!text.contains("garden") && !text.contains("limit rate"), "{text}");
        let rate = Rate::parse("4mbit").ok();
        for (garden, down, up, limit_trusted) in [
            (Some(vec![443]), None, None, false),
            (Some(vec![80, 443]), rate, None, false),
            (None, rate, rate, false),
            (None, rate, rate, true),
        ] {
            let nft = Nftables::from_parts(Parts {
                garden_ports: garden,
                device_rate: down,
                device_upload_rate: up,
                limit_trusted,
                ..parts()
            });
            assert_eq!(counted(&nft), nft.expected, "{}", nft.definition());
        }
    }

    #[test]
    fn the_rate_is_per_device_and_trusted_devices_are_exempt_unless_told() {
        let rate = Rate::parse("4mbit").ok();
        let nft = Nftables::from_parts(Parts { device_rate: rate, device_upload_rate: rate, ..parts() });
        let text = nft.definition();
        let limit = "limit rate over 500000 bytes/second burst 125000 bytes";
        assert!(text.contains(&format!("update @down_v4 {{ ip daddr {limit} }} drop")), "{text}");
        assert!(text.contains(&format!("ether saddr @allowed_mac update @up_mac {{ ether saddr {limit} }} drop")));
        // Exempt: the trusted device is accepted before any meter, and its
        // downloads pass by the address it was last seen on.
        let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle} missing:\n{text}"));
        assert!(at("ether saddr @trusted_mac accept") < at("update @up_mac"));
        assert!(at("ip daddr @trusted_v4 return") < at("update @down_v4"));
        let held =
            Nftables::from_parts(Parts { device_rate: rate, device_upload_rate: rate, limit_trusted: true, ..parts() });
        let text = held.definition();
        assert!(!text.contains("trusted_v4"), "{text}");
        assert!(
            text.find("ether saddr @trusted_mac update @up_mac").unwrap()
                < text.find("ether saddr @trusted_mac accept").unwrap()
        );
    }

    #[test]
    fn the_garden_opens_only_its_ports_and_its_port_80_is_not_redirected() {
        let nft = Nftables::from_parts(Parts { garden_ports: Some(vec![443]), ..parts() });
        let text = nft.definition();
        assert!(
            text.contains(
                "ip daddr @garden_v4 meta l4proto { tcp, udp } th dport { 443 } update @garden_v4 { ip daddr } accept"
            ),
            "{text}"
        );
        assert!(!text.contains("tcp dport { 443 } return"), "{text}");
        let with_80 = Nftables::from_parts(Parts { garden_ports: Some(vec![80, 443]), ..parts() }).definition();
        let at = |needle: &str| with_80.find(needle).unwrap_or_else(|| panic!("{needle} missing:\n{with_80}"));
        assert!(at("ip daddr @garden_v4 tcp dport { 80, 443 } return") < at("redirect to"));
    }

    #[test]
    fn the_burst_holds_a_merged_packet_and_fits_the_kernels_32_bits() {
        assert_eq!(burst(8_000), 64 * 1024, "64kbit");
        assert_eq!(burst(500_000), 125_000, "4mbit");
        assert!(burst(Rate::MAX.bytes_per_second()) <= u64::from(u32::MAX));
        assert_eq!(burst(u64::MAX), u64::from(u32::MAX));
    }

    #[test]
    fn trusting_replaces_the_whole_set() {
        let nft = backend();
        let macs: Vec<MacAddr> =
            ["02:00:00:00:00:01", "02:00:00:00:00:02"].iter().map(|m| m.parse().unwrap()).collect();
        assert_eq!(
            nft.trusted_elements(&macs),
            "add element inet portico trusted_mac { 02:00:00:00:00:01, 02:00:00:00:00:02 }\n"
        );
        assert_eq!(nft.trusted_elements(&[]), "");
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

    #[test]
    fn the_open_gate_is_one_set_the_rules_test_after_the_grants_and_print_shows_it_closed() {
        let nft = backend();
        let text = nft.ruleset();
        assert!(text.contains("\tset gate_open { type ifname; }\n"), "{text}");
        assert!(!text.contains("add element"), "printed closed: {text}");
        let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle} missing:\n{text}"));
        // Held devices on the gate's interfaces are neither redirected
        // nor rejected while it is open; granted ones match first.
        assert!(at("ip6 saddr @allowed_v6 return") < at("iifname @gate_open return"));
        assert!(at("iifname @gate_open return") < at("tcp dport 80 redirect to :8080"));
        assert!(at("ip6 saddr @allowed_v6 accept") < at("iifname @gate_open accept"));
        assert!(at("iifname @gate_open accept") < at("meta l4proto tcp reject with tcp reset"));
        assert_eq!(text.matches("@gate_open").count(), 2, "{text}");
    }

    #[test]
    fn opening_and_closing_change_the_gate_open_set_alone_and_a_rebuild_keeps_the_state() {
        let nft = backend();
        assert_eq!(
            nft.open_elements(true),
            "flush set inet portico gate_open\nadd element inet portico gate_open { \"br-lan\", \"wlan0\" }\n"
        );
        assert_eq!(nft.open_elements(false), "flush set inet portico gate_open\n");
        let mac: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        let (closed, printed, expected) = (nft.install_head(&[mac]), nft.ruleset(), nft.expected);
        assert!(closed.ends_with("trusted_mac { 02:00:00:00:00:01 }\n"), "{closed}");
        // What `set_open(true)` keeps before it runs its script.
        nft.open.store(true, Ordering::Release);
        let open = nft.install_head(&[mac]);
        assert_eq!(open, format!("{closed}{}", nft.open_elements(true)), "a rebuild while open stays open");
        assert_eq!((nft.ruleset(), nft.expected), (printed, expected), "the rules are the same in both states");
        let keys = nft.open_keys();
        assert!(keys.len() == 2 && keys.contains(&super::super::shape::key(b"wlan0")), "{keys:?}");
        nft.open.store(false, Ordering::Release);
        assert!(nft.open_keys().is_empty());
    }

    #[test]
    fn while_open_a_device_without_a_grant_is_metered_by_its_address() {
        let rate = Rate::parse("4mbit").ok();
        let nft = Nftables::from_parts(Parts { device_rate: rate, device_upload_rate: rate, ..parts() });
        let text = nft.definition();
        let limit = "limit rate over 500000 bytes/second burst 125000 bytes";
        let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle} missing:\n{text}"));
        let v4 = at(&format!("iifname @gate_open update @up_v4 {{ ip saddr {limit} }} drop"));
        let v6 = at(&format!("iifname @gate_open update @up_v6 {{ ip6 saddr {limit} }} drop"));
        assert!(v4 < at("iifname @gate_open accept") && v6 < at("iifname @gate_open accept"));
        // Downloads are metered for every device already, open or not.
        assert!(text.contains("oifname { \"br-lan\", \"wlan0\" } jump gate_down"), "{text}");
        assert_eq!(counted(&nft), nft.expected);
    }
}
