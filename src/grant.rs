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
use std::hash::BuildHasher as _;
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

/// The grants, one per device, found by [`Grant::device`]. A hash table of
/// the grants themselves rather than a map from device to grant: the key
/// is not stored twice, so 100,000 grants take 9 MiB instead of 13, and
/// restoring them at start-up, which is mostly spent inserting into a
/// table larger than the CPU's caches, touches one cache line or two per
/// grant instead of two or three.
#[derive(Default)]
pub struct GrantMap {
    table: hashbrown::HashTable<Grant>,
    hasher: foldhash::fast::RandomState,
}

impl GrantMap {
    pub fn with_capacity(capacity: usize) -> GrantMap {
        GrantMap { table: hashbrown::HashTable::with_capacity(capacity), hasher: Default::default() }
    }

    fn hash(&self, device: &Device) -> u64 {
        self.hasher.hash_one(device)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    pub fn get(&self, device: &Device) -> Option<&Grant> {
        self.table.find(self.hash(device), |g| g.device == *device)
    }

    pub fn get_mut(&mut self, device: &Device) -> Option<&mut Grant> {
        let hash = self.hash(device);
        self.table.find_mut(hash, |g| g.device == *device)
    }

    /// Puts `grant` in for its device; returns the grant it replaced.
    pub fn insert(&mut self, grant: Grant) -> Option<Grant> {
        let hash = self.hash(&grant.device);
        let hasher = &self.hasher;
        match self.table.entry(hash, |g| g.device == grant.device, |g| hasher.hash_one(g.device)) {
            hashbrown::hash_table::Entry::Occupied(mut held) => Some(std::mem::replace(held.get_mut(), grant)),
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(grant);
                None
            }
        }
    }

    pub fn remove(&mut self, device: &Device) -> Option<Grant> {
        let hash = self.hash(device);
        self.table.find_entry(hash, |g| g.device == *device).ok().map(|held| held.remove().0)
    }

    /// Keeps the grants for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Grant) -> bool) {
        self.table.retain(|g| keep(g));
    }

    pub fn values(&self) -> impl Iterator<Item = &Grant> {
        self.table.iter()
    }

    pub fn shrink_to_fit(&mut self) {
        let hasher = &self.hasher;
        self.table.shrink_to_fit(|g| hasher.hash_one(g.device));
    }
}

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
    /// Empty for most grants, and an empty slice allocates nothing, so a
    /// table of 100,000 grants costs no allocation per grant. A boxed slice
    /// rather than a `Vec`: 8 bytes less per grant, and it grows only
    /// when a device shows a new address.
    more: Box<[IpAddr]>,
    pub expires: SystemTime,
}

impl Grant {
    /// A grant for `device`, which tapped *Connect* from `ip`.
    pub fn new(device: Device, ip: IpAddr, expires: SystemTime) -> Grant {
        Grant { device, ip, more: Box::default(), expires }
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
        let keep = self.more.len().min(MAX_ADDRESSES - 2);
        let older = &self.more[self.more.len() - keep..];
        self.more = older.iter().copied().chain(std::iter::once(ip)).collect();
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
    fn the_grant_map_finds_replaces_removes_and_keeps_by_device() {
        let mac = |i: u8| Device::Mac(MacAddr([2, 0, 0, 0, 0, i]));
        let at = |i: u8| IpAddr::from([10, 0, 0, i]);
        let t = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let mut map = GrantMap::with_capacity(4);
        for i in 0..100 {
            assert!(map.insert(Grant::new(mac(i), at(i), t(100))).is_none());
        }
        // The same MAC from a routed address is another device.
        assert!(map.insert(Grant::new(Device::Addr(at(1)), at(1), t(100))).is_none());
        assert_eq!(map.len(), 101);
        // A renewal replaces the grant and hands back the old one.
        let old = map.insert(Grant::new(mac(7), at(77), t(200))).unwrap();
        assert_eq!((old.ip(), old.expires), (at(7), t(100)));
        assert_eq!(map.get(&mac(7)).map(|g| (g.ip(), g.expires)), Some((at(77), t(200))));
        assert!(map.get_mut(&mac(8)).unwrap().learn(at(200)));
        assert!(map.get(&mac(8)).unwrap().uses(at(200)));
        assert_eq!(map.remove(&mac(9)).map(|g| g.device), Some(mac(9)));
        assert!(map.remove(&mac(9)).is_none() && map.get(&mac(9)).is_none());
        map.retain(|g| g.expires > t(150));
        assert_eq!(map.values().map(|g| g.device).collect::<Vec<_>>(), vec![mac(7)]);
        map.shrink_to_fit();
        assert_eq!(map.get(&mac(7)).map(|g| g.ip()), Some(at(77)));
        assert!(map.capacity() < 100 && !map.is_empty());
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
        // The oldest but the first went: the tap's address and the newest 7.
        let kept: Vec<IpAddr> = grant.addresses().collect();
        assert_eq!(kept, [1, 14, 15, 16, 17, 18, 19, 20].map(ip));
    }
}
