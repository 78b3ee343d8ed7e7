//! The built `portico` binary as the gateway runs it: `ip netns exec GW
//! portico run --config F` as a child process (see `running.rs`), its
//! output in a log file the report prints when a scenario fails, and the
//! CLI commands run the same way (they talk to the admin listener on the
//! gateway's loopback).
//!
//! `ip netns exec` execs the program in place, so the child's pid is
//! Portico's own and a kill is a real `kill -9` of Portico.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use nix::sys::signal::Signal;

use crate::netns::Netns;
use crate::running::{self, Entry, Running};

pub const BIN: &str = env!("CARGO_BIN_EXE_portico");
/// The table Portico owns in the gateway namespace.
pub const TABLE: &str = "portico_test";
pub const PORTAL_PORT: u16 = 8080;
const ADMIN: &str = "127.0.0.1:9090";
const READY_WITHIN: Duration = Duration::from_secs(10);
/// SIGTERM drains for at most 10 s (server::DRAIN_DEADLINE), then flushes.
const STOP_WITHIN: Duration = Duration::from_secs(12);

pub struct Portico {
    pub config: PathBuf,
    dir: PathBuf,
    log: PathBuf,
    running: Option<Running>,
    starts: u32,
}

/// Lines a scenario adds to the config: in `[firewall]`, and whole tables
/// at the end (`[[trusted]]`).
#[derive(Clone, Debug, Default)]
pub struct Extra {
    pub firewall: String,
    pub tail: String,
}

impl Portico {
    /// A Portico for the gateway whose LAN address is `lan_v4`, with files in
    /// `dir`; not started yet. Sessions last 12 h until [`Self::configure`].
    pub fn new(dir: &Path, lan_v4: std::net::Ipv4Addr) -> Result<Portico> {
        let portico = Portico {
            config: dir.join("portico.toml"),
            dir: dir.to_owned(),
            log: dir.join("portico.log"),
            running: None,
            starts: 0,
        };
        portico.configure(lan_v4, "12h", "state")?;
        Ok(portico)
    }

    /// Writes the config: session length and state folder (under `dir`).
    pub fn configure(&self, lan_v4: std::net::Ipv4Addr, session: &str, state: &str) -> Result<()> {
        self.configure_with(lan_v4, session, state, &Extra::default())
    }

    /// Like [`Self::configure`], with `extra` lines. The walled garden
    /// (one name) is always there.
    pub fn configure_with(&self, lan_v4: std::net::Ipv4Addr, session: &str, state: &str, extra: &Extra) -> Result<()> {
        let garden = crate::dnsmasq::GARDEN_HOST;
        let Extra { firewall, tail } = extra;
        let text = format!(
            r#"[venue]
name = "Ga Thử Nghiệm"
kind = "station"

[portal]
listen = "[::]:{PORTAL_PORT}"
public_url = "http://{lan_v4}:{PORTAL_PORT}/"
session = "{session}"

[firewall]
backend = "nftables"
interface = "br-lan"
table = "{TABLE}"
{firewall}
[walled_garden]
hosts = ["{garden}"]

[state]
dir = "{}"

[admin]
listen = "{ADMIN}"
{tail}"#,
            self.dir.join(state).display()
        );
        std::fs::write(&self.config, text).context("writing the config")
    }

    /// What `portico dhcp print` gives the venue's dnsmasq. The portal here
    /// serves http on the LAN address (no certificate in the test); the
    /// announcement is printed from the same config with what an operator
    /// adds for Android, an https `public_url` and a `[tls]` listener.
    pub fn dhcp_lines(&self) -> Result<String> {
        let config = std::fs::read_to_string(&self.config).context("reading the config")?;
        let (head, tail) = config.split_once("public_url = ").context("the config has a public_url")?;
        let tail = tail.split_once('\n').map_or("", |(_, rest)| rest);
        let host = crate::dnsmasq::PORTAL_HOST;
        let announced = format!(
            "{head}public_url = \"https://{host}/\"\n{tail}\n[tls]\nlisten = \"[::]:8443\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n"
        );
        let file = self.dir.join("portico-announced.toml");
        std::fs::write(&file, announced).context("writing the announced config")?;
        let out = std::process::Command::new(BIN).args(["dhcp", "print", "--config"]).arg(&file).output()?;
        if !out.status.success() {
            bail!("portico dhcp print failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Starts `portico run` in `gw` and waits until its `/healthz` answers.
    pub fn start(&mut self, gw: &Netns) -> Result<()> {
        self.kill()?;
        self.starts += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(&self.log)?;
        writeln!(log, "==== venue test: start {} ====", self.starts)?;
        let bin = Path::new(BIN);
        let mut portico = Running::start(gw, Entry::IpNetnsExec, bin, &self.config, "portico=debug", &self.log)?;
        let admin = admin();
        let ready =
            portico.wait_until("portico's /healthz did not answer", READY_WITHIN, Duration::from_millis(50), || {
                gw.run(|| running::healthy(admin))
            });
        if ready.is_ok() {
            self.running = Some(portico);
        }
        ready.map(drop)
    }

    /// Starts Portico unless it is already running, so that one scenario's
    /// failure does not doom the next.
    pub fn ensure_running(&mut self, gw: &Netns) -> Result<()> {
        let running = match self.running.as_mut() {
            Some(portico) => portico.is_running()?,
            None => false,
        };
        if running { Ok(()) } else { self.start(gw) }
    }

    /// SIGHUP: reload the config.
    pub fn reload(&self) -> Result<()> {
        self.running.as_ref().context("portico is not running")?.signal(Signal::SIGHUP)
    }

    /// `kill -9`, and reap it.
    pub fn kill(&mut self) -> Result<()> {
        match self.running.take() {
            Some(mut portico) => portico.kill(),
            None => Ok(()),
        }
    }

    /// A normal stop (SIGTERM); `kill -9` if it overstays.
    pub fn stop(&mut self) -> Result<()> {
        match self.running.take() {
            Some(mut portico) => portico.stop(STOP_WITHIN).map(drop),
            None => Ok(()),
        }
    }

    /// `portico ARGS... --config F` inside `gw`, failing on a non-zero exit.
    pub fn cli(&self, gw: &Netns, args: &[&str]) -> Result<String> {
        let out = self.cli_output(gw, args)?;
        if !out.status.success() {
            bail!("portico {}: {}: {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `portico ARGS... --config F` inside `gw`, whatever its exit status.
    pub fn cli_output(&self, gw: &Netns, args: &[&str]) -> Result<Output> {
        let config = self.config.to_string_lossy();
        let mut all = args.to_vec();
        all.extend(["--config", &config]);
        gw.exec(BIN, &all)
    }

    /// How much has been logged so far; a scenario's log starts there.
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// The last `lines` lines logged since `from`.
    pub fn log_since(&self, from: u64, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let _ = file.seek(SeekFrom::Start(from));
            let _ = file.read_to_string(&mut text);
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Portico {
    fn drop(&mut self) {
        // Nothing may outlive the venue: a process inside the gateway
        // namespace would keep it alive after `ip netns del`.
        let _ = self.kill();
    }
}

fn admin() -> SocketAddr {
    ADMIN.parse().expect("a socket address")
}

/// The value of one metric family's sample on the admin listener.
pub fn metric(gw: &Netns, name: &str) -> Result<f64> {
    let (_, text) = running::admin_get(gw, ADMIN, "/metrics")?;
    running::metric(&text, name).with_context(|| format!("no {name} in /metrics"))
}
