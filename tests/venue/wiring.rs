//! The venue wired from network namespaces (see `netns.rs` for the rules
//! every namespace keeps): the gateway with its LAN bridge and uplink, the
//! "internet" upstream, two phones with static addresses and two that join
//! by DHCP and SLAAC.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::Result;

use crate::netns::{self, Netns};

/// Every namespace of the venue has DAD off: the addresses are ours alone,
/// and DAD would only make the first seconds flaky.
const NO_DAD: [&str; 2] = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"];

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
        Netns::add(format!("{}g", Venue::prefix()), &NO_DAD)
    }

    /// `pv<pid>`: short enough that `pv<pid>g` is a valid interface name too.
    pub fn prefix() -> String {
        netns::prefix("pv")
    }

    /// Builds the rest of the venue around the gateway namespace.
    pub fn build(gw: Netns) -> Result<Venue> {
        let prefix = Venue::prefix();
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

        let upstream = Netns::add(format!("{prefix}u"), &NO_DAD)?;
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
            let ns = Netns::add(format!("{prefix}{}", label.to_ascii_lowercase()), &NO_DAD)?;
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
            let ns = Netns::add(format!("{prefix}{}", label.to_ascii_lowercase()), &NO_DAD)?;
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
