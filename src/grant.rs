//! A grant: one device's permission to use the internet until a moment in
//! wall-clock time.
//!
//! Grants are keyed by the client's IP address (the TCP peer of its accept
//! request, canonicalised so that an IPv4-mapped IPv6 peer is the same client
//! as its IPv4 form). The MAC is carried when the firewall backend can learn
//! it. Expiry is wall-clock (`SystemTime`) rather than monotonic, because it
//! must mean the same thing after a restart or a reboot.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One device allowed through the gate until `expires`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub ip: IpAddr,
    pub mac: Option<MacAddr>,
    pub expires: SystemTime,
}

impl Grant {
    /// Time left at `now`; zero once expired.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires.duration_since(now).unwrap_or(Duration::ZERO)
    }

    pub fn is_live(&self, now: SystemTime) -> bool {
        self.expires > now
    }
}

/// The identity used for a client: IPv4-mapped IPv6 addresses are folded to
/// IPv4, so a dual-stack listener and the firewall agree on one key.
pub fn client_ip(peer: IpAddr) -> IpAddr {
    peer.to_canonical()
}

/// Milliseconds since the Unix epoch, the on-disk form of an expiry.
pub fn to_unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a MAC address (expected six hex pairs like 02:00:5e:10:00:01): {0:?}")]
pub struct BadMac(String);

impl FromStr for MacAddr {
    type Err = BadMac;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadMac(s.to_owned());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips_and_rejects_junk() {
        let mac: MacAddr = "02:00:5E:10:00:0a".parse().unwrap();
        assert_eq!(mac.to_string(), "02:00:5e:10:00:0a");
        assert_eq!("02-00-5e-10-00-0a".parse::<MacAddr>().unwrap(), mac);
        for bad in ["", "02:00:5e:10:00", "02:00:5e:10:00:0a:01", "zz:00:5e:10:00:0a", "2:0:5e:10:00:0a"] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn mapped_ipv6_peer_is_the_ipv4_client() {
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(client_ip(mapped), "10.0.0.7".parse::<IpAddr>().unwrap());
        let v6: IpAddr = "fd00::7".parse().unwrap();
        assert_eq!(client_ip(v6), v6);
    }
}
