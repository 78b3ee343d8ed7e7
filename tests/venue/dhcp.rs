//! A phone joining the venue the way a real one does: busybox `udhcpc`
//! asks the gateway's dnsmasq for a lease (and for option 114, the RFC 8908
//! API URL), a script this file writes applies it (address, default route,
//! the phone's resolver) and records it; IPv6 comes by SLAAC from
//! dnsmasq's router advertisements, with privacy addresses on.
//!
//! What must stay true:
//! - `udhcpc` keeps running for the phone's whole visit (it would renew),
//!   and is killed and reaped on drop, before the namespaces go;
//! - the phone's resolver is `/etc/netns/<ns>/resolv.conf`, which `ip netns
//!   exec` mounts over `/etc/resolv.conf` for everything started in the
//!   phone. It exists (empty) before anything is started there, is only
//!   ever rewritten in place (a process started earlier holds that very
//!   file through its bind mount), and is removed, folder and all, on drop.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};

use crate::wiring::Phone;

const LEASE_WITHIN: Duration = Duration::from_secs(15);
const SLAAC_WITHIN: Duration = Duration::from_secs(10);

/// `/etc/netns/<ns>/resolv.conf` for one phone; removed on drop.
pub struct Resolver {
    folder: PathBuf,
    pub file: PathBuf,
}

impl Resolver {
    pub fn create(ns: &str) -> Result<Resolver> {
        let folder = Path::new("/etc/netns").join(ns);
        std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
        let file = folder.join("resolv.conf");
        std::fs::write(&file, "").with_context(|| format!("creating {}", file.display()))?;
        Ok(Resolver { folder, file })
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.folder) {
            eprintln!("warning: could not remove {}: {e}", self.folder.display());
        }
    }
}

/// What the script recorded of a lease.
#[derive(Debug)]
pub struct Lease {
    pub ip: Ipv4Addr,
    /// When the script ran for `bound` (wall clock, as the browser's is).
    pub at: SystemTime,
    /// Every variable udhcpc gave the script (`router`, `dns`, `opt114`…).
    pub vars: BTreeMap<String, String>,
}

impl Lease {
    /// Option 114 as text. udhcpc hands an option it has no name for to
    /// the script as `optNNN`, in hex.
    pub fn captive_url(&self) -> Option<String> {
        let raw = self.vars.get("opt114").or_else(|| self.vars.get("captive"))?;
        let bytes: Option<Vec<u8>> =
            (0..raw.len()).step_by(2).map(|i| raw.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
        Some(match bytes {
            Some(bytes) if raw.len() % 2 == 0 => String::from_utf8_lossy(&bytes).into_owned(),
            _ => raw.clone(),
        })
    }
}

/// A running `udhcpc` for one phone; killed on drop.
pub struct Dhcp {
    child: Child,
    record: PathBuf,
    pub label: &'static str,
}

impl Dhcp {
    /// Starts `busybox udhcpc` on the phone's `eth0`, asking for option 114.
    /// `resolver` is the phone's resolv.conf; files go in `dir`.
    pub fn start(phone: &Phone, resolver: &Resolver, dir: &Path) -> Result<Dhcp> {
        let name = phone.label.to_ascii_lowercase();
        let script = dir.join(format!("udhcpc-{name}.sh"));
        let record = dir.join(format!("lease-{name}"));
        std::fs::write(&script, script_text(&record, &resolver.file)).context("writing the udhcpc script")?;
        Command::new("chmod").args(["755", &script.to_string_lossy()]).status()?;
        let log = std::fs::File::create(dir.join(format!("udhcpc-{name}.log")))?;
        let child = phone
            .ns
            .command("busybox", &["udhcpc", "-f", "-i", "eth0", "-O", "114", "-t", "10", "-T", "1", "-A", "2"])
            .args(["-s", &script.to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning busybox udhcpc")?;
        Ok(Dhcp { child, record, label: phone.label })
    }

    /// Waits (polling, with a deadline) for the script to record a lease.
    pub fn lease(&mut self) -> Result<Lease> {
        let deadline = Instant::now() + LEASE_WITHIN;
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.record) {
                return parse(&text).with_context(|| format!("phone {}'s lease record: {text}", self.label));
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("udhcpc of phone {} exited without a lease: {status}", self.label);
            }
            if Instant::now() > deadline {
                bail!("phone {} got no DHCP lease within {LEASE_WITHIN:?}", self.label);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dhcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The phone's SLAAC addresses once there is a temporary one (privacy
/// addresses on) that is no longer tentative: (temporary, stable).
pub fn slaac(phone: &Phone) -> Result<(Ipv6Addr, Ipv6Addr)> {
    let deadline = Instant::now() + SLAAC_WITHIN;
    loop {
        let out = phone.ns.exec("ip", &["-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"])?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let find = |temporary: bool| {
            text.lines().filter(|l| !l.contains("tentative") && l.contains(" temporary") == temporary).find_map(|l| {
                l.split_whitespace().skip_while(|w| *w != "inet6").nth(1)?.split('/').next()?.parse().ok()
            })
        };
        if let (Some(temporary), Some(stable)) = (find(true), find(false)) {
            return Ok((temporary, stable));
        }
        if Instant::now() > deadline {
            bail!("phone {} has no SLAAC temporary address after {SLAAC_WITHIN:?}: {text}", phone.label);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn parse(text: &str) -> Result<Lease> {
    let vars: BTreeMap<String, String> =
        text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let ip = vars.get("ip").context("no ip")?.parse()?;
    let at_ns: u64 = vars.get("at_ns").context("no at_ns")?.parse()?;
    Ok(Lease { ip, at: UNIX_EPOCH + Duration::from_nanos(at_ns), vars })
}

/// The udhcpc script: applies `bound`/`renew` to the phone and records
/// the lease in `record` (written whole, then renamed into place).
fn script_text(record: &Path, resolver: &Path) -> String {
    let (record, resolver) = (record.display(), resolver.display());
    format!(
        r#"#!/bin/sh
# udhcpc's script for a venue test phone (written by tests/venue/dhcp.rs).
PATH=/usr/sbin:/usr/bin:/sbin:/bin
at=$(date +%s%N)
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${{mask:-24}}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${{router%% *}}" dev "$interface"
    # In place, in one write: see tests/venue/dhcp.rs.
    printf 'nameserver %s\n' $dns > {resolver}
    {{ echo "event=$1"; echo "at_ns=$at"; env; }} > {record}.tmp
    mv {record}.tmp {record}
    ;;
esac
exit 0
"#
    )
}
