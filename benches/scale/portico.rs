//! The binary under test as the gateway runs it: `portico run --config F`
//! in the gateway namespace, its log in a file per start, and what the
//! kernel says about the process (`/proc/PID/status` and `/proc/PID/stat`).
//!
//! The config turns every request limit off (the phones come 8 at a time
//! from loopback, far above a real client's rate) and lets 12-hour grants
//! pile up; the portal and the admin listener are on the namespace's
//! loopback, and `firewall.interface = "lo"`, so loopback clients have no
//! neighbour entry and are granted by address into `allowed_v4`.
//!
//! The child is spawned from a thread inside the namespace (see
//! gateway.rs), so its pid is Portico's own and start-up is timed from the
//! spawn itself.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::gateway::Netns;

pub const PORTAL: &str = "127.0.0.1:8080";
const ADMIN: &str = "127.0.0.1:9090";
pub const TABLE: &str = "portico_scale";
/// The longest a start with the whole table restored may take.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// SIGTERM drains for at most 10 s, then flushes the store.
const STOP_WITHIN: Duration = Duration::from_secs(30);
/// Log filter: the "Portico serving" line and warnings, no per-request noise.
const LOG_FILTER: &str = "warn,portico::server=info";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    None,
    Nftables,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::None => "none",
            Backend::Nftables => "nftables",
        }
    }
}

/// Writes the config for `backend` into `dir`, state in `dir/state`.
pub fn write_config(dir: &Path, backend: Backend) -> Result<PathBuf> {
    let config = dir.join("portico.toml");
    let firewall = match backend {
        Backend::None => "backend = \"none\"".to_owned(),
        // With a walled garden, whose sets dnsmasq would fill.
        Backend::Nftables => format!(
            "backend = \"nftables\"\ninterface = \"lo\"\ntable = \"{TABLE}\"\n\n[walled_garden]\nhosts = [\"garden.scale.test\"]"
        ),
    };
    let text = format!(
        r#"[venue]
name = "Sân bay Thử Tải"
kind = "airport"

[portal]
listen = "{PORTAL}"
public_url = "http://{PORTAL}/"
session = "12h"

[firewall]
{firewall}

[state]
dir = "{state}"

[admin]
listen = "{ADMIN}"

[limits]
per_client_rps = 0
global_rps = 0
per_client_connections = 1000
max_connections = 10000
"#,
        state = dir.join("state").display()
    );
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    Ok(config)
}

/// A running Portico; killed (and reaped) on drop.
pub struct Portico {
    child: Option<Child>,
    pub pid: u32,
    pub log: PathBuf,
}

/// How long one start took, from the spawn.
pub struct Startup {
    pub healthy: Duration,
    /// The "Portico serving" line appeared in the log.
    pub serving: Option<Duration>,
}

impl Portico {
    /// Spawns `bin run --config CONFIG` in `ns` (log to `log`) and waits for
    /// the first 200 from `/healthz`, polling every millisecond.
    pub fn start(bin: &Path, ns: &Netns, config: &Path, log: PathBuf) -> Result<(Portico, Startup)> {
        let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let admin: SocketAddr = ADMIN.parse()?;
        let (child, startup) = ns.run(|| -> Result<(Child, Startup)> {
            let started = Instant::now();
            let mut child = Command::new(bin)
                .args(["run", "--config"])
                .arg(config)
                .env("RUST_LOG", LOG_FILTER)
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out)
                .spawn()
                .with_context(|| format!("spawning {}", bin.display()))?;
            let mut serving = None;
            loop {
                if serving.is_none() && std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Portico serving")) {
                    serving = Some(started.elapsed());
                }
                if get(admin, "/healthz", Duration::from_millis(200)).is_ok_and(|(status, _)| status == 200) {
                    let healthy = started.elapsed();
                    if serving.is_none() && std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Portico serving")) {
                        serving = Some(healthy);
                    }
                    return Ok((child, Startup { healthy, serving }));
                }
                if let Some(status) = child.try_wait()? {
                    bail!("portico exited during start-up ({status}):\n{}", tail(&log, 20));
                }
                if started.elapsed() > READY_WITHIN {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("portico's /healthz did not answer 200 within {READY_WITHIN:?}:\n{}", tail(&log, 20));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })?;
        let pid = child.id();
        Ok((Portico { child: Some(child), pid, log }, startup))
    }

    /// SIGTERM, and wait for the exit; how long the stop took.
    pub fn stop(&mut self) -> Result<Duration> {
        let Some(mut child) = self.child.take() else {
            bail!("portico is not running");
        };
        let started = Instant::now();
        kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM).context("sending SIGTERM to portico")?;
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("portico exited with {status} after SIGTERM:\n{}", self.log_tail(20));
                }
                return Ok(started.elapsed());
            }
            if started.elapsed() > STOP_WITHIN {
                let _ = child.kill();
                let _ = child.wait();
                bail!("portico did not stop within {STOP_WITHIN:?} of SIGTERM:\n{}", self.log_tail(20));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Fails, with the log's end, if Portico has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            bail!("portico exited ({status}):\n{}", self.log_tail(20));
        }
        Ok(())
    }

    /// A `VmRSS`-style field of /proc/PID/status, in KiB.
    pub fn status_kib(&self, field: &str) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {field} in {path}"))
    }

    pub fn rss(&self) -> Result<u64> {
        self.status_kib("VmRSS")
    }

    pub fn peak(&self) -> Result<u64> {
        self.status_kib("VmHWM")
    }

    /// CPU used so far, in clock ticks: Portico's own (utime + stime) and
    /// that of its children it has reaped (cutime + cstime: the `nft`
    /// processes the nftables backend runs).
    pub fn cpu_ticks(&self) -> Result<(u64, u64)> {
        let path = format!("/proc/{}/stat", self.pid);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        // The command name may hold spaces; the fields after it do not.
        let rest = text.rsplit_once(") ").map(|(_, r)| r).with_context(|| format!("{path}: {text:?}"))?;
        let fields: Vec<u64> = rest.split(' ').skip(11).take(4).filter_map(|f| f.parse().ok()).collect();
        match fields[..] {
            [utime, stime, cutime, cstime] => Ok((utime + stime, cutime + cstime)),
            _ => bail!("{path}: no utime, stime, cutime, cstime in {text:?}"),
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Portico {
    fn drop(&mut self) {
        // Nothing may outlive the benchmark: a process in the namespace
        // keeps it alive after `ip netns del`.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `GET PATH` on the admin listener, from inside `ns`: status and body.
pub fn admin_get(ns: &Netns, path: &str) -> Result<(u16, String)> {
    let admin: SocketAddr = ADMIN.parse()?;
    ns.run(|| get(admin, path, Duration::from_secs(10))).with_context(|| format!("GET {path} on the admin listener"))
}

/// One HTTP/1.1 GET on a fresh connection with `Connection: close`, read to
/// the end. Must be called from a thread inside the namespace.
pub fn get(to: SocketAddr, path: &str, limit: Duration) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&to, limit)?;
    stream.set_read_timeout(Some(limit))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {to}\r\nAccept-Language: vi\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw.split(' ').nth(1).and_then(|s| s.parse().ok()).context("no status line")?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// The value of the first sample of `name` in a Prometheus text body.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
