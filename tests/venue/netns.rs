//! The venue's plumbing: network namespaces with names unique to this run,
//! wired as gateway, phones and upstream, and removed again even when a
//! scenario fails or panics.
//!
//! What must stay true:
//! - every namespace this run creates is deleted by a `Drop`, so an early
//!   return or a panic anywhere still cleans up;
//! - veths are created directly inside the namespaces (`ip -n NS link add
//!   ... peer ... netns OTHER`), so none ever exists in the root namespace
//!   and deleting a namespace takes its veths with it;
//! - only sockets are ever created inside a namespace (on a short-lived
//!   thread, see [`Netns::run`]); a socket keeps the namespace it was made
//!   in, so all I/O afterwards happens on ordinary threads.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, Result, bail};
use nix::sched::{CloneFlags, setns};

/// One network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// `ip netns add NAME`, with loopback up and DAD off (the addresses are
    /// ours alone; DAD would only make the first seconds flaky).
    pub fn add(name: String) -> Result<Netns> {
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        ns.sysctl(&["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])?;
        Ok(ns)
    }

    /// Runs `f` on a fresh thread that has entered this namespace. Network
    /// namespace membership is per thread, so the caller's thread is never
    /// moved; sockets `f` creates stay in this namespace when returned.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            let thread = s.spawn(|| {
                let path = format!("/var/run/netns/{}", self.name);
                let file = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
                setns(file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("entering {}: {e}", self.name));
                f()
            });
            thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// `ip -n NAME ARGS...`, failing with its stderr.
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// `ip netns exec NAME PROGRAM ARGS...`, whatever its exit status.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output> {
        self.command(program, args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {program} in {}", self.name))
    }

    /// The command line that runs `program` inside this namespace.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]).args(args);
        cmd
    }

    pub fn sysctl(&self, settings: &[&str]) -> Result<()> {
        let mut args = vec!["-q", "-w"];
        args.extend_from_slice(settings);
        succeeded(self.exec("sysctl", &args)?, "sysctl")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // A process still inside would keep the namespace alive after
        // `ip netns del` without anyone seeing it: every process the test
        // starts must be gone by now. Say so, count it as a failure of the
        // cleanup check, and end it (only our own processes live here).
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &self.name]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                eprintln!("warning: process {pid} ({}) was still in namespace {}", cmdline.trim(), self.name);
                LINGERING.fetch_add(1, Ordering::Relaxed);
                if let Ok(pid) = pid.parse() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("warning: could not delete namespace {}: {e:#}", self.name);
        }
    }
}

/// How many processes were found still inside a namespace being deleted.
pub static LINGERING: AtomicUsize = AtomicUsize::new(0);

/// A phone: its own namespace, one veth with a fixed MAC, addresses on the
/// venue's LAN and default routes through the gateway. A static phone (A,
/// B) has them from the start and ignores router advertisements; a DHCP
/// phone (C, D) has neither until it joins (`0.0.0.0` and `::` until then),
/// then its lease and its preferred SLAAC address (a temporary one: it has
/// privacy addresses on).
pub struct Phone {
    pub label: &'static str,
    pub mac: &'static str,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
    pub ns: Netns,
}

/// The venue: `gw` (bridge `br-lan` for the phones, `wan0` to upstream,
/// forwarding on), static phones `a` and `b`, DHCP phones `c` and `d`, and
/// `upstream`, the "internet". Field order is drop order: phones and
/// upstream go before the gateway.
pub struct Venue {
    pub a: Phone,
    pub b: Phone,
    pub c: Phone,
    pub d: Phone,
    pub upstream: Netns,
    pub gw: Netns,
    pub lan_v4: Ipv4Addr,
    pub lan_v6: Ipv6Addr,
    pub up_v4: Ipv4Addr,
    pub up_v6: Ipv6Addr,
}

impl Venue {
    /// Creates the gateway namespace alone: if even that fails the machine
    /// cannot run the test at all, which the caller reports as a skip.
    pub fn gateway() -> Result<Netns> {
        Netns::add(format!("{}g", prefix()))
    }

    /// Builds the rest of the venue around the gateway namespace.
    pub fn build(gw: Netns) -> Result<Venue> {
        let prefix = prefix();
        // Addresses only ever live inside our namespaces; `k` from the pid
        // keeps two concurrent runs' logs and captures telling apart.
        let k = 16 + (std::process::id() % 200) as u8;
        let v6 = |net: u16, host: u16| Ipv6Addr::new(0xfd70, u16::from(k), net, 0, 0, 0, 0, host);
        let lan_v4 = Ipv4Addr::new(10, k, 1, 1);
        let lan_v6 = v6(1, 1);
        let up_v4 = Ipv4Addr::new(10, k, 2, 2);
        let up_v6 = v6(2, 2);

        gw.sysctl(&["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])?;
        gw.ip(&["link", "add", "br-lan", "type", "bridge", "stp_state", "0"])?;
        gw.ip(&["link", "set", "br-lan", "up"])?;
        add_addrs(&gw, "br-lan", lan_v4.into(), lan_v6.into())?;

        let upstream = Netns::add(format!("{prefix}u"))?;
        let gw_wan = (Ipv4Addr::new(10, k, 2, 1), v6(2, 1));
        veth(&gw, "wan0", &upstream, "eth0", None)?;
        gw.ip(&["link", "set", "wan0", "up"])?;
        add_addrs(&gw, "wan0", gw_wan.0.into(), gw_wan.1.into())?;
        add_addrs(&upstream, "eth0", up_v4.into(), up_v6.into())?;
        // Two more names' addresses on the same upstream: the walled
        // garden's, and another's that is not in it.
        for host in [GARDEN_HOST_ID, OTHER_HOST_ID] {
            let (v4, v6) = upstream_extra(up_v4, up_v6, host);
            add_addrs(&upstream, "eth0", v4.into(), v6.into())?;
        }
        default_routes(&upstream, gw_wan.0, gw_wan.1)?;

        let phone = |label: &'static str, host: u8, mac: &'static str| -> Result<Phone> {
            let ns = Netns::add(format!("{prefix}{}", label.to_ascii_lowercase()))?;
            let port = format!("lan-{}", label.to_ascii_lowercase());
            veth(&gw, &port, &ns, "eth0", Some(mac))?;
            gw.ip(&["link", "set", &port, "master", "br-lan", "up"])?;
            let phone = Phone { label, mac, v4: Ipv4Addr::new(10, k, 1, host), v6: v6(1, u16::from(host)), ns };
            // The gateway's dnsmasq advertises the LAN prefix; a static
            // phone keeps exactly the addresses the scenarios name.
            phone.ns.sysctl(&["net.ipv6.conf.eth0.accept_ra=0"])?;
            add_addrs(&phone.ns, "eth0", phone.v4.into(), phone.v6.into())?;
            default_routes(&phone.ns, lan_v4, lan_v6)?;
            Ok(phone)
        };
        let a = phone("A", 10, "02:00:00:00:0a:01")?;
        let b = phone("B", 11, "02:00:00:00:0b:01")?;
        // DHCP phones: a bare link; addresses come from dnsmasq when they
        // join. Privacy addresses on, as on Android and iOS (temporary
        // addresses preferred as source), set before any RA arrives.
        let dhcp_phone = |label: &'static str, mac: &'static str| -> Result<Phone> {
            let ns = Netns::add(format!("{prefix}{}", label.to_ascii_lowercase()))?;
            ns.sysctl(&["net.ipv6.conf.all.use_tempaddr=2", "net.ipv6.conf.default.use_tempaddr=2"])?;
            let port = format!("lan-{}", label.to_ascii_lowercase());
            veth(&gw, &port, &ns, "eth0", Some(mac))?;
            ns.sysctl(&["net.ipv6.conf.eth0.use_tempaddr=2", "net.ipv6.conf.eth0.accept_dad=0"])?;
            gw.ip(&["link", "set", &port, "master", "br-lan", "up"])?;
            Ok(Phone { label, mac, v4: Ipv4Addr::UNSPECIFIED, v6: Ipv6Addr::UNSPECIFIED, ns })
        };
        let c = dhcp_phone("C", "02:00:00:00:0c:01")?;
        let d = dhcp_phone("D", "02:00:00:00:0d:01")?;
        Ok(Venue { a, b, c, d, upstream, gw, lan_v4, lan_v6, up_v4, up_v6 })
    }
}

/// The last byte (and group) of the upstream's extra addresses.
pub const GARDEN_HOST_ID: u8 = 4;
pub const OTHER_HOST_ID: u8 = 5;

/// The upstream's address ending in `id`, IPv4 and IPv6.
pub fn upstream_extra(up_v4: Ipv4Addr, up_v6: Ipv6Addr, id: u8) -> (Ipv4Addr, Ipv6Addr) {
    let o = up_v4.octets();
    let v6 = (u128::from(up_v6) & !0xffff) | u128::from(id);
    (Ipv4Addr::new(o[0], o[1], o[2], id), Ipv6Addr::from(v6))
}

impl Venue {
    /// The walled-garden name's addresses on the upstream.
    pub fn garden_addrs(&self) -> [IpAddr; 2] {
        let (v4, v6) = upstream_extra(self.up_v4, self.up_v6, GARDEN_HOST_ID);
        [v4.into(), v6.into()]
    }

    /// The addresses of another name on the same upstream, not in the garden.
    pub fn other_addrs(&self) -> [IpAddr; 2] {
        let (v4, v6) = upstream_extra(self.up_v4, self.up_v6, OTHER_HOST_ID);
        [v4.into(), v6.into()]
    }
}

/// `pv<pid>`: short enough that `pv<pid>g` is a valid interface name too.
pub fn prefix() -> String {
    format!("pv{}", std::process::id())
}

/// Our namespaces that `ip netns list` still shows, and links in the root
/// namespace that carry our prefix (none should: see the module note).
pub fn leftovers(prefix: &str) -> Result<Vec<String>> {
    // `pv81` must not claim `pv811g`, another run's namespace.
    let ours =
        |name: &str| name.strip_prefix(prefix).is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()));
    let mut found = Vec::new();
    let namespaces = Command::new("ip").args(["netns", "list"]).output()?;
    for line in String::from_utf8_lossy(&namespaces.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if ours(name) {
            found.push(format!("namespace {name}"));
        }
    }
    // `5: name@if4: <...`
    let links = Command::new("ip").args(["-o", "link", "show"]).output()?;
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        let name = line.split(':').nth(1).unwrap_or("").trim();
        let name = name.split('@').next().unwrap_or(name);
        if ours(name) {
            found.push(format!("link {name}"));
        }
    }
    Ok(found)
}

/// A veth with one end `name` in `ns` and the other `peer_name` in `peer`.
fn veth(ns: &Netns, name: &str, peer: &Netns, peer_name: &str, mac: Option<&str>) -> Result<()> {
    let mut args = vec!["link", "add", name, "type", "veth", "peer", "name", peer_name];
    if let Some(mac) = mac {
        args.extend(["address", mac]);
    }
    args.extend(["netns", &peer.name]);
    ns.ip(&args)?;
    peer.ip(&["link", "set", peer_name, "up"])
}

fn add_addrs(ns: &Netns, dev: &str, v4: IpAddr, v6: IpAddr) -> Result<()> {
    ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", dev])?;
    ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"])
}

fn default_routes(ns: &Netns, v4: Ipv4Addr, v6: Ipv6Addr) -> Result<()> {
    ns.ip(&["route", "add", "default", "via", &v4.to_string()])?;
    ns.ip(&["-6", "route", "add", "default", "via", &v6.to_string()])
}

/// `ip ARGS...` in the root namespace, failing with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().context("running ip")?;
    succeeded(out, &format!("ip {}", args.join(" ")))
}

pub fn succeeded(out: Output, what: &str) -> Result<()> {
    if !out.status.success() {
        bail!("{what}: {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
