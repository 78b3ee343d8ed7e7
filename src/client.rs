//! Who is asking: the one place that turns a connection (and, behind a
//! trusted proxy, its `X-Forwarded-For`) into a [`Client`], and a client
//! into the [`Device`] its grant is for.
//!
//! The rules, which every part of Portico (probes, the accept, the RFC 8908
//! API, the connection cap, the operator's commands) follows by calling in
//! here:
//! - the client's address is the TCP peer, never anything it sends, unless
//!   the peer is one of `limits.trusted_proxies`: then the address that
//!   proxy appended last to `X-Forwarded-For` (earlier entries are the
//!   client's own claims and are never believed);
//! - an IPv4-mapped IPv6 address is its IPv4 address (a dual-stack listener
//!   sees IPv4 peers that way);
//! - a client whose MAC the gateway sees on a client interface is that MAC
//!   on every address it uses; one whose MAC it cannot see (behind a
//!   router) is its address alone.

use std::net::IpAddr;

use hyper::HeaderMap;

use crate::grant::{Device, MacAddr};
use crate::neighbours::Neighbours;

/// A client as Portico tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The address it asked from.
    pub ip: IpAddr,
    /// Its MAC, when it is a neighbour on a client interface.
    pub mac: Option<MacAddr>,
}

impl Client {
    /// The client at `ip`, with the MAC the neighbour table gives.
    pub fn at(ip: IpAddr, neighbours: &Neighbours) -> Client {
        let ip = ip.to_canonical();
        Client { ip, mac: neighbours.mac_of(ip) }
    }

    /// What its grant is keyed by.
    pub fn device(&self) -> Device {
        match self.mac {
            Some(mac) => Device::Mac(mac),
            None => Device::Addr(self.ip),
        }
    }
}

/// The client's address for a request from `peer` with these headers.
pub fn address(peer: IpAddr, trusted_proxies: &[IpAddr], headers: &HeaderMap) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok())
        .map_or(peer, |ip| ip.to_canonical())
}

/// Whether connections from `peer` carry other clients' requests, so the
/// per-client connection cap is taken per request's client instead.
pub fn is_proxy(peer: IpAddr, trusted_proxies: &[IpAddr]) -> bool {
    trusted_proxies.contains(&peer.to_canonical())
}

/// The device an operator means by `target` (`portico clients revoke`):
/// a MAC, or an address, which is the device whose MAC the neighbour table
/// gives for it, or else the address itself.
pub fn device_named(target: &str, neighbours: &Neighbours) -> Option<Device> {
    if let Ok(mac) = target.parse::<MacAddr>() {
        return Some(Device::Mac(mac));
    }
    let ip = target.parse::<IpAddr>().ok()?;
    Some(Client::at(ip, neighbours).device())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let proxies = [ip("10.0.0.1")];
        let claims = forwarded(&["1.2.3.4", "10.0.1.7, 10.0.1.8"]);
        assert_eq!(address(ip("10.0.1.9"), &proxies, &claims), ip("10.0.1.9"), "an untrusted peer's claim is ignored");
        assert_eq!(address(ip("::ffff:10.0.0.1"), &proxies, &claims), ip("10.0.1.8"), "the proxy's last hop");
        assert_eq!(address(ip("10.0.0.1"), &proxies, &forwarded(&["junk"])), ip("10.0.0.1"));
        assert_eq!(address(ip("10.0.0.1"), &proxies, &forwarded(&["::ffff:10.0.1.5"])), ip("10.0.1.5"));
        assert!(is_proxy(ip("::ffff:10.0.0.1"), &proxies));
        assert!(!is_proxy(ip("10.0.1.9"), &proxies));
    }

    #[test]
    fn a_neighbour_is_its_mac_on_every_address_and_a_routed_client_its_address() {
        let mac: MacAddr = "02:00:00:00:0a:01".parse().unwrap();
        let table = Neighbours::fixed([(ip("10.0.1.10"), mac), (ip("fd70::a"), mac), (ip("fd70::1234"), mac)]);
        for addr in ["10.0.1.10", "::ffff:10.0.1.10", "fd70::a", "fd70::1234"] {
            let client = Client::at(ip(addr), &table);
            assert_eq!(client.device(), Device::Mac(mac), "{addr}");
            assert_eq!(client.ip, ip(addr).to_canonical());
        }
        let routed = Client::at(ip("192.0.2.7"), &table);
        assert_eq!(routed.device(), Device::Addr(ip("192.0.2.7")));
        assert_eq!(device_named("fd70::1234", &table), Some(Device::Mac(mac)));
        assert_eq!(device_named("02-00-00-00-0a-01", &table), Some(Device::Mac(mac)));
        assert_eq!(device_named("192.0.2.7", &table), Some(Device::Addr(ip("192.0.2.7"))));
        assert_eq!(device_named("nonsense", &table), None);
    }
}
