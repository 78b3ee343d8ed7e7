//! A grant: one device's permission to use the internet until a moment in
//! wall-clock time.
//!
//! A grant is for a [`Device`]: its MAC when the gateway can see it (a
//! phone on the venue's LAN, whatever addresses it uses), else the one
//! address it connected from (a client behind a router). The grant also
//! remembers the addresses the device has been seen on, the one it tapped
//! *Connect* from first, for the operator and the journal. Expiry is
//! wall-clock (`SystemTime`) rather than monotonic, because it must mean
//! the same thing after a restart or a reboot.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most addresses one grant remembers. A phone uses two or three (IPv4,
/// a stable and a temporary IPv6 address); the bound keeps a device that
/// invents addresses from growing the table. The first is never dropped.
pub const MAX_ADDRESSES: usize = 8;

/// A map keyed by device. Hashed with foldhash, randomly seeded per map,
/// rather than std's SipHash: restoring 100,000 grants at start-up spent a
/// quarter of its time hashing. A key costs whoever picks it a tap on
/// *Connect* (and a firewall element), so the seeded hash's minimal
/// resistance to crafted collisions is enough here.
pub type DeviceMap<V> = std::collections::HashMap<Device, V, foldhash::fast::RandomState>;

/// Who is let through, as the gateway tells devices apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Device {
    /// A device on a client interface: all its addresses are one device.
    Mac(MacAddr),
    /// A client whose MAC the gateway cannot see: this address only.
    Addr(IpAddr),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Mac(mac) => mac.fmt(f),
            Device::Addr(ip) => ip.fmt(f),
        }
    }
}

/// One device allowed through the gate until `expires`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub device: Device,
    /// The address of the *Connect* tap.
    ip: IpAddr,
    /// The other addresses the device has been seen on, oldest first.
    /// Empty for most grants, and an empty `Vec` allocates nothing, so a
    /// table of 100,000 grants costs no allocation per grant.
    more: Vec<IpAddr>,
    pub expires: SystemTime,
}

impl Grant {
    /// A grant for `device`, which tapped *Connect* from `ip`.
    pub fn new(device: Device, ip: IpAddr, expires: SystemTime) -> Grant {
        Grant { device, ip, more: Vec::new(), expires }
    }

    /// The MAC, for a device on a client interface.
    pub fn mac(&self) -> Option<MacAddr> {
        match self.device {
            Device::Mac(mac) => Some(mac),
            Device::Addr(_) => None,
        }
    }

    /// The address the device tapped *Connect* from.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Every address the device has been seen on, [`Grant::ip`] first.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        std::iter::once(self.ip).chain(self.more.iter().copied())
    }

    /// The addresses but [`Grant::ip`].
    pub fn other_addresses(&self) -> &[IpAddr] {
        &self.more
    }

    /// Whether the device has been seen on `ip`.
    pub fn uses(&self, ip: IpAddr) -> bool {
        self.ip == ip || self.more.contains(&ip)
    }

    /// Remembers that the device uses `ip` too; `false` if it was known.
    /// Past [`MAX_ADDRESSES`] the oldest address but the first is dropped.
    pub fn learn(&mut self, ip: IpAddr) -> bool {
        if self.uses(ip) {
            return false;
        }
        if self.more.len() + 1 >= MAX_ADDRESSES {
            self.more.remove(0);
        }
        self.more.push(ip);
        true
    }

    /// Time left at `now`; zero once expired.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires.duration_since(now).unwrap_or(Duration::ZERO)
    }

    pub fn is_live(&self, now: SystemTime) -> bool {
        self.expires > now
    }
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

    /// Six pairs of hex digits, each pair after the first behind a `:` or
    /// a `-`. (Read by position, not split: start-up reads one per grant.)
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadMac(s.to_owned());
        let b = s.as_bytes();
        if b.len() != 17 {
            return Err(bad());
        }
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let mut out = [0u8; 6];
        for (i, byte) in out.iter_mut().enumerate() {
            let at = 3 * i;
            if i > 0 && !matches!(b[at - 1], b':' | b'-') {
                return Err(bad());
            }
            *byte = (hex(b[at]).ok_or_else(bad)? << 4) | hex(b[at + 1]).ok_or_else(bad)?;
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
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:0a:01",
            "zz:00:5e:10:00:0a",
            "2:0:5e:10:00:0a",
            "02:00:5e:10:00:0a:",
            "02.00.5e.10.00.0a",
            "+2:00:5e:10:00:0a",
            "02:00:5e:10:00:0á",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_grant_learns_addresses_up_to_a_bound_and_keeps_the_first() {
        let ip = |i: u16| IpAddr::from(std::net::Ipv6Addr::new(0xfd70, 0, 0, 0, 0, 0, 0, i));
        let mut grant = Grant::new(Device::Mac("02:00:00:00:0a:01".parse().unwrap()), ip(1), UNIX_EPOCH);
        assert!(!grant.learn(ip(1)));
        for i in 2..=20 {
            assert!(grant.learn(ip(i)));
        }
        assert_eq!(grant.addresses().count(), MAX_ADDRESSES);
        assert_eq!(grant.ip(), ip(1));
        assert_eq!(grant.addresses().last(), Some(ip(20)));
    }
}
