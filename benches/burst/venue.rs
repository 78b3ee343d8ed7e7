//! The benchmark's venue: three network namespaces with names unique to this
//! run, and what runs in them.
//!
//! - `gw`: bridge `br-lan` (10.X.0.1/16) with one port per phone, `wan0`
//!   towards upstream, forwarding on, and the built `portico` binary with the
//!   nftables backend on `br-lan`;
//! - `up`: the "internet", a TCP listener on 443 that writes a byte and
//!   closes;
//! - `cl`: ONE namespace for all N phones. Phone `i` is the veth `p<i>` with
//!   its own MAC and its own address in 10.X.0.0/16; its peer `b<i>` is a
//!   port of the gateway's bridge. With many interfaces on one subnet, ARP
//!   is made per interface (`arp_ignore=1`, `arp_announce=2`), reverse-path
//!   filtering is off, and each phone has its own default route (`dev p<i>`,
//!   its own metric): a socket bound to `p<i>` (SO_BINDTODEVICE) only ever
//!   uses routes through `p<i>`, so its packets leave with the phone's MAC.
//!
//! The namespaces and the running binary are the venue test's own
//! (`tests/venue/netns.rs` and `tests/venue/running.rs`, included by
//! `benches/burst.rs`), so their rules hold here too: every namespace is
//! deleted by a `Drop`, so an error or a panic still cleans up; veths are
//! created directly inside the namespaces, so none ever lives in the root
//! namespace; only sockets and child processes are created inside a
//! namespace (from a thread that entered it), never the benchmark's own
//! threads moved.
//!
//! The one change outside our namespaces: the kernel's ARP table is shared
//! by every namespace, and its garbage-collection thresholds (default 128 /
//! 512 / 1024 entries, counted over all namespaces) are below the 2 × N
//! entries of a 1000-phone venue. [`NeighbourLimits`] raises them for the
//! run and puts the old values back on drop.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};

use crate::netns::Netns;
use crate::running::{self, Entry, Running};

pub const PORTAL_PORT: u16 = 8080;
pub const ADMIN: &str = "127.0.0.1:9090";
pub const TABLE: &str = "portico_burst";
const READY_WITHIN: Duration = Duration::from_secs(15);

/// IPv6 is off on every interface created in the venue's namespaces
/// (`default.disable_ipv6`): a thousand ports doing DAD, router
/// solicitations and MLD would only add noise to an IPv4 measurement.
/// Loopback keeps IPv6, so Portico's `[::]` listener works.
const NO_IPV6: [&str; 1] = ["net.ipv6.conf.default.disable_ipv6=1"];

/// Addresses and names of one venue of `n` phones. `x` (from the pid) only
/// tells concurrent runs apart in captures; every address lives inside
/// this run's namespaces.
#[derive(Clone)]
pub struct Plan {
    pub n: usize,
    pub x: u8,
    pub prefix: String,
}

impl Plan {
    pub fn new(n: usize) -> Result<Plan> {
        ensure!((1..=1000).contains(&n), "N = {n}: between 1 and 1000 phones (a bridge takes at most 1023 ports)");
        let pid = std::process::id();
        Ok(Plan { n, x: 16 + (pid % 200) as u8, prefix: format!("pb{pid}n{n}") })
    }

    pub fn gw_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.x, 0, 1)
    }

    /// Phones are 10.X.1.0 .. 10.X.4.231.
    pub fn phone_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.x, 1 + (i / 256) as u8, (i % 256) as u8)
    }

    pub fn phone_mac(&self, i: usize) -> String {
        format!("02:b5:{:02x}:{:02x}:{:02x}:01", self.x, i >> 8, i & 0xff)
    }

    pub fn phone_dev(i: usize) -> String {
        format!("p{i}")
    }

    pub fn upstream_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(172, 31, self.x, 2)
    }

    fn wan_gw_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(172, 31, self.x, 1)
    }

    pub fn portal(&self) -> SocketAddr {
        SocketAddr::new(self.gw_ip().into(), PORTAL_PORT)
    }

    pub fn upstream_443(&self) -> SocketAddr {
        SocketAddr::new(self.upstream_ip().into(), 443)
    }
}

/// The namespaces, wired. Field order is drop order.
pub struct Namespaces {
    pub cl: Netns,
    pub up: Netns,
    pub gw: Netns,
}

impl Namespaces {
    pub fn build(plan: &Plan) -> Result<Namespaces> {
        let gw = Netns::add(format!("{}gw", plan.prefix), &NO_IPV6)?;
        let up = Netns::add(format!("{}up", plan.prefix), &NO_IPV6)?;
        let cl = Netns::add(format!("{}cl", plan.prefix), &NO_IPV6)?;
        let (x, n) = (plan.x, plan.n);

        gw.sysctl(&["net.ipv4.ip_forward=1"])?;
        gw.batch(&format!(
            "link add br-lan type bridge stp_state 0 forward_delay 0 mcast_snooping 0\n\
             addr add {gw}/16 dev br-lan\n\
             link set br-lan up\n\
             link add wan0 type veth peer name eth0 netns {up}\n\
             addr add {wan}/24 dev wan0\n\
             link set wan0 up\n",
            gw = plan.gw_ip(),
            wan = plan.wan_gw_ip(),
            up = up.name,
        ))?;
        up.batch(&format!(
            "addr add {ip}/24 dev eth0\nlink set eth0 up\nroute add default via {via}\n",
            ip = plan.upstream_ip(),
            via = plan.wan_gw_ip()
        ))?;

        // Before any phone interface exists, so each one inherits them.
        cl.sysctl(&[
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.default.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
            "net.ipv4.conf.default.arp_announce=2",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ])?;

        let mut ports = String::new();
        for i in 0..n {
            ports += &format!(
                "link add b{i} type veth peer name p{i} address {mac} netns {cl}\nlink set b{i} master br-lan up\n",
                mac = plan.phone_mac(i),
                cl = cl.name
            );
        }
        gw.batch(&ports).context("creating the phones' veths")?;
        let mut phones = String::new();
        for i in 0..n {
            phones += &format!(
                "link set p{i} up\naddr add {ip}/16 dev p{i}\nroute add default via 10.{x}.0.1 dev p{i} metric {m}\n",
                ip = plan.phone_ip(i),
                m = 100 + i
            );
        }
        cl.batch(&phones).context("addressing the phones")?;
        Ok(Namespaces { cl, up, gw })
    }
}

/// The kernel's ARP table limits, raised for the run (see the module note).
pub struct NeighbourLimits {
    old: Vec<(PathBuf, String)>,
}

impl NeighbourLimits {
    pub fn at_least(entries: usize) -> Result<NeighbourLimits> {
        let mut limits = NeighbourLimits { old: Vec::new() };
        // Above gc_thresh2 the kernel evicts entries older than 5 s when it
        // makes a new one; gc_thresh3 is a hard limit. gc_thresh1 only
        // starts the periodic clean-up of entries unused for a minute.
        for (name, want) in [("gc_thresh2", entries), ("gc_thresh3", 2 * entries)] {
            let path = Path::new("/proc/sys/net/ipv4/neigh/default").join(name);
            let old = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            if old.trim().parse::<usize>().unwrap_or(0) < want {
                std::fs::write(&path, want.to_string()).with_context(|| format!("raising {}", path.display()))?;
                limits.old.push((path, old.trim().to_owned()));
            }
        }
        Ok(limits)
    }

    pub fn describe(&self) -> String {
        if self.old.is_empty() {
            return "ARP table limits already high enough".into();
        }
        let changes: Vec<String> = self
            .old
            .iter()
            .map(|(p, old)| {
                let now = std::fs::read_to_string(p).unwrap_or_default();
                format!("{} {old}→{}", p.file_name().unwrap_or_default().to_string_lossy(), now.trim())
            })
            .collect();
        format!("raised net.ipv4.neigh.default.{{{}}} for the run (restored afterwards)", changes.join(", "))
    }
}

impl Drop for NeighbourLimits {
    fn drop(&mut self) {
        // gc_thresh2 was raised first; restoring in reverse keeps 2 ≤ 3.
        for (path, old) in self.old.iter().rev() {
            if let Err(e) = std::fs::write(path, old) {
                eprintln!("warning: could not restore {} to {old}: {e}", path.display());
            }
        }
    }
}

/// The upstream's port 443: accepts, writes one byte, closes. A phone's
/// connect succeeds at the handshake, which the kernel completes without
/// this thread, so polling `accept` here adds nothing to the measurement.
pub struct Upstream {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    pub fn start(up: &Netns) -> Result<Upstream> {
        let listener = up.run(|| -> std::io::Result<TcpListener> {
            use socket2::{Domain, Socket, Type};
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            socket.set_reuse_address(true)?;
            socket.bind(&SocketAddr::from(([0, 0, 0, 0], 443)).into())?;
            // Room for every phone at once: std's default backlog is 128.
            socket.listen(4096)?;
            socket.set_nonblocking(true)?;
            Ok(socket.into())
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.write_all(b"u");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        Ok(Upstream { stop, thread: Some(thread) })
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes the config and starts the built binary in the gateway namespace
/// (killed on drop), once its `/healthz` answers.
pub fn start_portico(bin: &str, gw: &Netns, plan: &Plan, dir: &Path) -> Result<Running> {
    let config = dir.join("portico.toml");
    std::fs::write(
        &config,
        format!(
            r#"[venue]
name = "Ga Thử Tải"
kind = "station"

[portal]
listen = "[::]:{PORTAL_PORT}"
public_url = "http://{gw_ip}:{PORTAL_PORT}/"
session = "12h"

[firewall]
backend = "nftables"
interface = "br-lan"
table = "{TABLE}"

[state]
dir = "{state}"

[admin]
listen = "{ADMIN}"
"#,
            gw_ip = plan.gw_ip(),
            state = dir.join("state").display()
        ),
    )?;
    // RUST_LOG=warn: a log line per request would be measured too.
    let log = dir.join("portico.log");
    let mut running = Running::start(gw, Entry::IpNetnsExec, Path::new(bin), &config, "warn", &log)?;
    let admin = ADMIN.parse()?;
    let tick = Duration::from_millis(50);
    running
        .wait_until("portico's /healthz did not answer", READY_WITHIN, tick, || gw.run(|| running::healthy(admin)))?;
    Ok(running)
}
