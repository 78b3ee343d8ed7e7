//! IP → MAC from the kernel's neighbour table, for the device that just
//! tapped *Connect*.
//!
//! The device's TCP connection to the portal means the kernel has just
//! resolved its address, so the entry is fresh. IPv4 is read from
//! `/proc/net/arp`: a stable kernel interface and no dependency. IPv6 has no
//! such file, so it asks iproute2 (`ip -j -6 neigh show`, JSON output), which
//! is on every gateway that has nftables. Both list the whole table, which
//! with a thousand phones costs a millisecond or two, so lookups are made
//! for a whole batch of accepts at once ([`lookup_many`], called by the
//! firewall thread), not per accept. No entry, or one on an interface that
//! is not a client interface, means "no MAC": the device is behind a router
//! (whose MAC must never be granted) and is allowed by address instead.

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::Command;

use crate::grant::MacAddr;

/// `/proc/net/arp` flag of a complete entry (ATF_COM).
const ATF_COM: u32 = 0x2;

/// The MACs of those of `ips` that are neighbours on one of `interfaces`:
/// one read of each table, whatever the number of addresses.
pub fn lookup_many(ips: &[IpAddr], interfaces: &[String]) -> HashMap<IpAddr, MacAddr> {
    let mut table = HashMap::new();
    if interfaces.is_empty() {
        return table;
    }
    if ips.iter().any(IpAddr::is_ipv4)
        && let Ok(text) = std::fs::read_to_string("/proc/net/arp")
    {
        table.extend(parse_proc_arp(&text, interfaces));
    }
    if ips.iter().any(IpAddr::is_ipv6)
        && let Ok(out) = Command::new("ip").args(["-j", "-6", "neigh", "show"]).output()
    {
        table.extend(parse_ip_json(&String::from_utf8_lossy(&out.stdout), interfaces));
    }
    table.retain(|ip, _| ips.contains(ip));
    table
}

fn on_client_side(dev: &str, interfaces: &[String]) -> bool {
    interfaces.iter().any(|i| i == dev)
}

/// Parses `/proc/net/arp`:
/// `IP address  HW type  Flags  HW address  Mask  Device`; keeps complete
/// entries on client interfaces.
fn parse_proc_arp(table: &str, interfaces: &[String]) -> HashMap<IpAddr, MacAddr> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let [addr, _hw_type, flags, mac, _mask, dev] = cols[..] else { return None };
            let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
            if flags & ATF_COM == 0 || !on_client_side(dev, interfaces) {
                return None;
            }
            let mac: MacAddr = mac.parse().ok()?;
            (mac.0 != [0; 6]).then_some((addr.parse().ok()?, mac))
        })
        .collect()
}

/// Parses `ip -j neigh` output: `[{"dst":…,"dev":…,"lladdr":…,"state":[…]}]`.
fn parse_ip_json(json: &str, interfaces: &[String]) -> HashMap<IpAddr, MacAddr> {
    let entries: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
    entries
        .iter()
        .filter_map(|e| {
            let dst: IpAddr = e.get("dst")?.as_str()?.parse().ok()?;
            let dev = e.get("dev")?.as_str()?;
            let failed = e
                .get("state")
                .and_then(|s| s.as_array())
                .is_some_and(|s| s.iter().any(|v| matches!(v.as_str(), Some("FAILED" | "INCOMPLETE"))));
            if failed || !on_client_side(dev, interfaces) {
                return None;
            }
            Some((dst, e.get("lladdr")?.as_str()?.parse().ok()?))
        })
        .collect()
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
        let table = parse_proc_arp(ARP, &lan);
        assert_eq!(table.get(&ip("10.7.1.10")), Some(&"02:00:00:00:0a:01".parse().unwrap()));
        assert_eq!(table.get(&ip("10.7.1.11")), None, "incomplete");
        assert_eq!(table.get(&ip("10.7.2.2")), None, "not a client interface");
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn ip_json_gives_usable_ipv6_neighbours() {
        let json = r#"[{"dst":"fd07:1::10","dev":"br-lan","lladdr":"02:00:00:00:0a:01","state":["REACHABLE"]},
                      {"dst":"fd07:1::11","dev":"br-lan","state":["FAILED"]}]"#;
        let lan = ["br-lan".to_string()];
        let table = parse_ip_json(json, &lan);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(table.get(&ip("fd07:1::10")), Some(&"02:00:00:00:0a:01".parse().unwrap()));
        assert_eq!(table.get(&ip("fd07:1::11")), None);
        assert!(parse_ip_json("garbage", &lan).is_empty());
    }
}
