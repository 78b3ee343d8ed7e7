//! IP → MAC from the kernel's neighbour table, for the device that just
//! tapped *Connect*.
//!
//! The device's TCP connection to the portal means the kernel has just
//! resolved its address, so the entry is fresh. IPv4 is read from
//! `/proc/net/arp`: a stable kernel interface, a file read of microseconds
//! and no dependency. IPv6 has no such file, so it asks iproute2 (`ip -j -6
//! neigh show to ADDR`, JSON output), which is on every gateway that has
//! nftables; a process per lookup is acceptable because phones accept over
//! IPv4 in the common dual-stack case. No entry, or one on an interface that
//! is not a client interface, means "no MAC": the device is behind a router
//! (whose MAC must never be granted) and is allowed by address instead.

use std::net::IpAddr;
use std::process::Command;

use crate::grant::MacAddr;

/// `/proc/net/arp` flag of a complete entry (ATF_COM).
const ATF_COM: u32 = 0x2;

/// The MAC of `ip` if it is a neighbour on one of `interfaces`.
pub fn lookup(ip: IpAddr, interfaces: &[String]) -> Option<MacAddr> {
    match ip {
        IpAddr::V4(_) => {
            let table = std::fs::read_to_string("/proc/net/arp").ok()?;
            from_proc_arp(&table, ip, interfaces)
        }
        IpAddr::V6(_) => {
            let out = Command::new("ip").args(["-j", "-6", "neigh", "show", "to"]).arg(ip.to_string()).output().ok()?;
            from_ip_json(&String::from_utf8_lossy(&out.stdout), ip, interfaces)
        }
    }
}

fn on_client_side(dev: &str, interfaces: &[String]) -> bool {
    interfaces.iter().any(|i| i == dev)
}

/// Parses `/proc/net/arp`:
/// `IP address  HW type  Flags  HW address  Mask  Device`.
fn from_proc_arp(table: &str, ip: IpAddr, interfaces: &[String]) -> Option<MacAddr> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [addr, _hw_type, flags, mac, _mask, dev] = cols[..] else { return None };
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        let complete = flags & ATF_COM != 0;
        (addr.parse::<IpAddr>().ok()? == ip && complete && on_client_side(dev, interfaces))
            .then(|| mac.parse::<MacAddr>().ok())
            .flatten()
            .filter(|m| m.0 != [0; 6])
    })
}

/// Parses `ip -j neigh` output: `[{"dst":…,"dev":…,"lladdr":…,"state":[…]}]`.
fn from_ip_json(json: &str, ip: IpAddr, interfaces: &[String]) -> Option<MacAddr> {
    let entries: Vec<serde_json::Value> = serde_json::from_str(json).ok()?;
    entries.iter().find_map(|e| {
        let dst: IpAddr = e.get("dst")?.as_str()?.parse().ok()?;
        let dev = e.get("dev")?.as_str()?;
        let failed = e
            .get("state")
            .and_then(|s| s.as_array())
            .is_some_and(|s| s.iter().any(|v| matches!(v.as_str(), Some("FAILED" | "INCOMPLETE"))));
        if dst != ip || failed || !on_client_side(dev, interfaces) {
            return None;
        }
        e.get("lladdr")?.as_str()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARP: &str = "IP address       HW type     Flags       HW address            Mask     Device
10.7.1.10        0x1         0x2         02:00:00:00:0a:01     *        br-lan
10.7.1.11        0x1         0x0         00:00:00:00:00:00     *        br-lan
10.7.2.2         0x1         0x2         02:00:00:00:0b:02     *        wan0
";

    #[test]
    fn proc_arp_gives_complete_entries_on_client_interfaces_only() {
        let lan = ["br-lan".to_string()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(from_proc_arp(ARP, ip("10.7.1.10"), &lan), Some("02:00:00:00:0a:01".parse().unwrap()));
        assert_eq!(from_proc_arp(ARP, ip("10.7.1.11"), &lan), None, "incomplete");
        assert_eq!(from_proc_arp(ARP, ip("10.7.2.2"), &lan), None, "not a client interface");
        assert_eq!(from_proc_arp(ARP, ip("10.7.1.99"), &lan), None);
    }

    #[test]
    fn ip_json_gives_usable_ipv6_neighbours() {
        let json = r#"[{"dst":"fd07:1::10","dev":"br-lan","lladdr":"02:00:00:00:0a:01","state":["REACHABLE"]},
                      {"dst":"fd07:1::11","dev":"br-lan","state":["FAILED"]}]"#;
        let lan = ["br-lan".to_string()];
        assert_eq!(from_ip_json(json, "fd07:1::10".parse().unwrap(), &lan), Some("02:00:00:00:0a:01".parse().unwrap()));
        assert_eq!(from_ip_json(json, "fd07:1::11".parse().unwrap(), &lan), None);
        assert_eq!(from_ip_json("garbage", "fd07:1::10".parse().unwrap(), &lan), None);
    }
}
