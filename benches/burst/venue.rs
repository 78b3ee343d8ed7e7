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
//! What must stay true, as in tests/venue/netns.rs (copied from there, not
//! shared): every namespace is deleted by a `Drop`, so an error or a panic
//! still cleans up; veths are created directly inside the namespaces, so
//! none ever lives in the root namespace; only sockets and child processes
//! are created inside a namespace (from a thread that entered it), never
//! the benchmark's own threads moved.
//!
//! The one change outside our namespaces: the kernel's ARP table is shared
//! by every namespace, and its garbage-collection thresholds (default 128 /
//! 512 / 1024 entries, counted over all namespaces) are below the 2 × N
//! entries of a 1000-phone venue. [`NeighbourLimits`] raises them for the
//! run and puts the old values back on drop.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use nix::sched::{CloneFlags, setns};

pub const PORTAL_PORT: u16 = 8080;
pub const ADMIN: &str = "127.0.0.1:9090";
pub const TABLE: &str = "portico_burst";
const READY_WITHIN: Duration = Duration::from_secs(15);

/// One network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// `ip netns add NAME` with loopback up. IPv6 is off on every interface
    /// created afterwards (`default.disable_ipv6`): a thousand ports doing
    /// DAD, router solicitations and MLD would only add noise to an IPv4
    /// measurement. Loopback keeps IPv6, so Portico's `[::]` listener works.
    pub fn add(name: String) -> Result<Netns> {
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.batch("link set lo up\n")?;
        ns.sysctl(&["net.ipv6.conf.default.disable_ipv6=1"])?;
        Ok(ns)
    }

    /// Runs `f` on a fresh thread that has entered this namespace; sockets
    /// and processes it creates belong to this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            let thread = s.spawn(|| {
                enter(&self.name);
                f()
            });
            thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// `ip -n NAME -batch -`: many commands for the price of one process.
    pub fn batch(&self, script: &str) -> Result<()> {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name, "-batch", "-"]);
        let out = pipe(&mut cmd, script)?;
        succeeded(out, &format!("ip -n {} -batch", self.name))
    }

    /// `ip netns exec NAME PROGRAM ARGS...`.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]).args(args);
        cmd
    }

    pub fn sysctl(&self, settings: &[&str]) -> Result<()> {
        let out = self.command("sysctl", &[&["-q", "-w"][..], settings].concat()).stdin(Stdio::null()).output()?;
        succeeded(out, &format!("sysctl in {}", self.name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("warning: could not delete namespace {}: {e:#}", self.name);
        }
    }
}

/// Moves the calling thread into namespace `name`. Panics: a thread that
/// is in the wrong namespace must not go on to measure anything.
pub fn enter(name: &str) {
    let path = format!("/var/run/netns/{name}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
    setns(file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("entering {name}: {e}"));
}

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
        let gw = Netns::add(format!("{}gw", plan.prefix))?;
        let up = Netns::add(format!("{}up", plan.prefix))?;
        let cl = Netns::add(format!("{}cl", plan.prefix))?;
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

/// The built binary, running in the gateway namespace; killed on drop.
pub struct Portico {
    child: Child,
    pub log: PathBuf,
}

impl Portico {
    pub fn start(bin: &str, gw: &Netns, plan: &Plan, dir: &Path) -> Result<Portico> {
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
        let log = dir.join("portico.log");
        let out = File::create(&log)?;
        // RUST_LOG=warn: a log line per request would be measured too.
        let child = gw
            .command(bin, &["run", "--config", &config.to_string_lossy()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("spawning portico")?;
        let mut portico = Portico { child, log };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = portico.child.try_wait()? {
                bail!("portico exited during start-up ({status}): {}", portico.log_tail(20));
            }
            if admin_get(gw, "/healthz").is_ok_and(|(status, _)| status == 200) {
                return Ok(portico);
            }
            if Instant::now() > deadline {
                bail!("portico's /healthz did not answer within {READY_WITHIN:?}: {}", portico.log_tail(20));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Portico {
    fn drop(&mut self) {
        // Nothing may outlive the venue: a process in the gateway namespace
        // would keep it (and its thousand veths) alive after `ip netns del`.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET PATH` on the admin listener, from inside the gateway namespace.
pub fn admin_get(gw: &Netns, path: &str) -> Result<(u16, String)> {
    let admin: SocketAddr = ADMIN.parse()?;
    gw.run(|| -> Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&admin, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {ADMIN}\r\nConnection: close\r\n\r\n")?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw)?;
        let status = raw.split(' ').nth(1).and_then(|s| s.parse().ok()).context("no status line")?;
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        Ok((status, body))
    })
}

/// The value of the first sample of `name` in a Prometheus text body.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// `ip ARGS...` in the root namespace, failing with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().context("running ip")?;
    succeeded(out, &format!("ip {}", args.join(" ")))
}

/// Runs `cmd` with `input` on its stdin and collects its output.
pub fn pipe(cmd: &mut Command, input: &str) -> Result<Output> {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    child.stdin.take().context("no stdin")?.write_all(input.as_bytes())?;
    Ok(child.wait_with_output()?)
}

pub fn succeeded(out: Output, what: &str) -> Result<()> {
    if !out.status.success() {
        bail!("{what}: {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
