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
//! `tests/venue/running.rs`: no `ip netns exec` comes between, which
//! spares the measurement its few milliseconds; `/sys` stays the root
//! namespace's, fine for `lo`), so its pid is Portico's own and start-up is
//! timed from the spawn itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::netns::Netns;
use crate::running::{self, Entry, Running};

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
    running: Running,
    pub pid: u32,
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
        let admin: SocketAddr = ADMIN.parse()?;
        let mut running = Running::start(ns, Entry::Thread, bin, config, LOG_FILTER, &log)?;
        let serving_logged = || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Portico serving"));
        let mut serving = None;
        let spawned = running.started();
        let healthy = ns.run(|| {
            let ready = || {
                if serving.is_none() && serving_logged() {
                    serving = Some(spawned.elapsed());
                }
                running::healthy(admin)
            };
            running.wait_until("portico's /healthz did not answer 200", READY_WITHIN, Duration::from_millis(1), ready)
        })?;
        if serving.is_none() && serving_logged() {
            serving = Some(healthy);
        }
        let pid = running.pid;
        Ok((Portico { running, pid }, Startup { healthy, serving }))
    }

    /// SIGTERM, and wait for the exit; how long the stop took.
    pub fn stop(&mut self) -> Result<Duration> {
        let Some((status, took)) = self.running.stop(STOP_WITHIN)? else {
            bail!("portico is not running");
        };
        if !status.success() {
            bail!("portico exited with {status} after SIGTERM:\n{}", self.running.log_tail(20));
        }
        Ok(took)
    }

    /// Fails, with the log's end, if Portico has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        self.running.check_alive()
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
}

/// `GET PATH` on the admin listener, from inside `ns`: status and body.
pub fn admin_get(ns: &Netns, path: &str) -> Result<(u16, String)> {
    running::admin_get(ns, ADMIN, path)
}
