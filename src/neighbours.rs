//! Which MAC is behind an address: the kernel's neighbour table (ARP for
//! IPv4, NDP for IPv6), kept in memory and current, so that "who is this
//! client" is a hash lookup on every request.
//!
//! A phone on the venue's LAN *is* its MAC: it keeps it while it changes
//! addresses (IPv4 and IPv6, and the temporary IPv6 addresses it rotates
//! during a session). The gateway has a neighbour entry for every such
//! address it talks to, so the table answers for all of them.
//!
//! How the table stays current: one thread holds an rtnetlink socket
//! subscribed to neighbour changes, loads the whole table once (a dump),
//! then applies every change the kernel announces. Netlink rather than
//! `/proc/net/arp` and `ip -j neigh`: a request must not spawn a process,
//! and BusyBox's `ip` has no JSON. If the kernel drops changes (the socket's
//! buffer overran) the thread loads the table again. A lookup that misses
//! may be racing the announcement of a brand-new address, so it loads the
//! table itself, at most once per `MISS_DUMP_EVERY`; a routed client,
//! whose MAC the gateway never sees, costs no more than that.
//!
//! What must stay true: only entries on a client interface count (the
//! upstream router's MAC must never be taken for a phone's), and only
//! entries with a link-layer address the kernel has seen answer (not
//! `INCOMPLETE` or `FAILED`).

mod netlink;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use nix::sys::socket::SockProtocol;

use crate::grant::MacAddr;
use netlink::Message;

/// The most often a lookup that missed may load the whole table.
const MISS_DUMP_EVERY: Duration = Duration::from_millis(200);
/// How long the watching thread waits for a change before it checks
/// whether it is still wanted.
const WATCH_TICK: Duration = Duration::from_secs(1);
/// A dump is answered in well under this; past it the socket is given up.
const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

/// A cheap, clonable handle to the neighbour table.
#[derive(Clone)]
pub struct Neighbours {
    shared: Arc<Shared>,
}

struct Shared {
    /// Read on every request, written on each change: a `std` lock held for
    /// one map operation, never across I/O.
    table: RwLock<Table>,
    source: Source,
}

enum Source {
    /// No client interface configured: nobody's MAC is visible.
    Nothing,
    /// A table given by the caller (tests, and benches without root).
    Fixed,
    /// The kernel's, for these interfaces.
    Kernel { interfaces: Vec<String>, last_miss_dump: Mutex<Option<Instant>> },
}

impl Neighbours {
    /// No MACs at all: every client is known by its address alone.
    pub fn none() -> Neighbours {
        Neighbours::with(Source::Nothing, Table::default())
    }

    /// A fixed table.
    pub fn fixed(entries: impl IntoIterator<Item = (IpAddr, MacAddr)>) -> Neighbours {
        let mut table = Table::default();
        entries.into_iter().for_each(|(ip, mac)| table.insert(ip.to_canonical(), mac));
        Neighbours::with(Source::Fixed, table)
    }

    /// The kernel's table for neighbours on `interfaces`, loaded now and
    /// kept current by a thread that ends when the last handle is dropped.
    /// Without interfaces, or where netlink is not to be had, it is
    /// [`Neighbours::none`] and says why in the log.
    pub fn watch(interfaces: &[String]) -> Neighbours {
        if interfaces.is_empty() {
            return Neighbours::none();
        }
        let source = Source::Kernel { interfaces: interfaces.to_vec(), last_miss_dump: Mutex::new(None) };
        let neighbours = Neighbours::with(source, Table::default());
        let socket = match crate::netlink::Socket::open(SockProtocol::NetlinkRoute, netlink::GROUP_NEIGH, WATCH_TICK) {
            Ok(socket) => socket,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the neighbour table; devices are known by address only");
                return Neighbours::none();
            }
        };
        // Subscribed before the first load, so a change made meanwhile waits
        // in the socket instead of being missed.
        let loaded = neighbours.shared.dump_into_table(true);
        if let Err(e) = &loaded {
            tracing::warn!(error = %e, "cannot load the neighbour table yet; retrying");
        }
        let weak = Arc::downgrade(&neighbours.shared);
        let reload = loaded.is_err();
        let started =
            std::thread::Builder::new().name("portico-neigh".into()).spawn(move || watch_loop(socket, weak, reload));
        if let Err(e) = started {
            tracing::warn!(error = %e, "cannot start the neighbour thread; devices are known by address only");
            return Neighbours::none();
        }
        neighbours
    }

    fn with(source: Source, table: Table) -> Neighbours {
        Neighbours { shared: Arc::new(Shared { table: RwLock::new(table), source }) }
    }

    /// The MAC of the neighbour at `ip` on a client interface.
    pub fn mac_of(&self, ip: IpAddr) -> Option<MacAddr> {
        let ip = ip.to_canonical();
        if let Some(mac) = self.shared.read().by_ip.get(&ip) {
            return Some(*mac);
        }
        let Source::Kernel { last_miss_dump, .. } = &self.shared.source else { return None };
        {
            let mut last = last_miss_dump.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < MISS_DUMP_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        if let Err(e) = self.shared.dump_into_table(false) {
            tracing::debug!(error = %e, "loading the neighbour table failed");
        }
        self.shared.read().by_ip.get(&ip).copied()
    }

    /// Every address the table knows for `mac`, in order.
    pub fn addresses_of(&self, mac: MacAddr) -> Vec<IpAddr> {
        let mut found = self.shared.read().by_mac.get(&mac).cloned().unwrap_or_default();
        found.sort();
        found
    }

    /// How many addresses the table holds.
    pub fn len(&self) -> usize {
        self.shared.read().by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shared {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the whole table through a socket of its own. `replace` drops
    /// what the dump does not list; otherwise entries are only added or
    /// updated (a dump made beside the watcher must not undo a change the
    /// watcher applied while it ran).
    fn dump_into_table(&self, replace: bool) -> std::io::Result<()> {
        let socket = crate::netlink::Socket::open(SockProtocol::NetlinkRoute, 0, DUMP_TIMEOUT)?;
        let entries = dump(&socket, &self.client_ifindexes())?;
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if replace {
            *table = Table::default();
        }
        entries.into_iter().for_each(|(ip, mac)| table.insert(ip, mac));
        Ok(())
    }

    /// The current index of each client interface, read afresh because an
    /// interface that is re-created (a bridge rebuilt) gets a new one.
    fn client_ifindexes(&self) -> Vec<u32> {
        let Source::Kernel { interfaces, .. } = &self.source else { return Vec::new() };
        interfaces
            .iter()
            .filter_map(|name| std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).ok())
            .filter_map(|text| text.trim().parse().ok())
            .collect()
    }

    /// Applies one message from the watching socket.
    fn apply(&self, ifindexes: &[u32], message: Message) {
        let Message::Neighbour { ifindex, ip, mac } = message else { return };
        if !ifindexes.contains(&ifindex) {
            return;
        }
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        match mac {
            Some(mac) => table.insert(ip, mac),
            None => table.remove(ip),
        }
    }
}

/// Address → MAC, and each MAC's addresses, kept in step: a lookup either
/// way is a hash probe, whatever the size of the venue.
#[derive(Default)]
struct Table {
    by_ip: HashMap<IpAddr, MacAddr>,
    by_mac: HashMap<MacAddr, Vec<IpAddr>>,
}

impl Table {
    fn insert(&mut self, ip: IpAddr, mac: MacAddr) {
        match self.by_ip.insert(ip, mac) {
            Some(old) if old == mac => return,
            Some(old) => self.forget(old, ip),
            None => {}
        }
        self.by_mac.entry(mac).or_default().push(ip);
    }

    fn remove(&mut self, ip: IpAddr) {
        if let Some(mac) = self.by_ip.remove(&ip) {
            self.forget(mac, ip);
        }
    }

    fn forget(&mut self, mac: MacAddr, ip: IpAddr) {
        if let Some(list) = self.by_mac.get_mut(&mac) {
            list.retain(|a| *a != ip);
            if list.is_empty() {
                self.by_mac.remove(&mac);
            }
        }
    }
}

/// Sends a dump request on `socket` and collects the usable entries on
/// `ifindexes` until the kernel says it is done.
fn dump(socket: &crate::netlink::Socket, ifindexes: &[u32]) -> std::io::Result<Vec<(IpAddr, MacAddr)>> {
    socket.send(&netlink::dump_request(1))?;
    let mut buf = vec![0; 64 * 1024];
    let mut entries = Vec::new();
    loop {
        let n = socket.recv(&mut buf)?;
        for message in netlink::parse(&buf[..n]) {
            match message {
                Message::Neighbour { ifindex, ip, mac: Some(mac) } if ifindexes.contains(&ifindex) => {
                    entries.push((ip, mac));
                }
                Message::Done => return Ok(entries),
                Message::Error(errno) => return Err(std::io::Error::from_raw_os_error(-errno)),
                _ => {}
            }
        }
    }
}

/// The watching thread: load the table, then apply changes until the last
/// handle is gone; load again whenever changes were lost.
fn watch_loop(socket: crate::netlink::Socket, shared: Weak<Shared>, mut reload: bool) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let Some(table) = shared.upgrade() else { return };
        let ifindexes = table.client_ifindexes();
        if reload {
            match table.dump_into_table(true) {
                Ok(()) => reload = false,
                Err(e) => tracing::warn!(error = %e, "cannot load the neighbour table; retrying"),
            }
        }
        drop(table);
        match socket.recv(&mut buf) {
            Ok(n) => {
                let Some(table) = shared.upgrade() else { return };
                for message in netlink::parse(&buf[..n]) {
                    if matches!(message, Message::Overrun) {
                        reload = true;
                    }
                    table.apply(&ifindexes, message);
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            // ENOBUFS: the kernel dropped changes; only a new dump can tell.
            Err(e) if e.raw_os_error() == Some(105) => reload = true,
            Err(e) => {
                tracing::warn!(error = %e, "reading neighbour changes failed");
                std::thread::sleep(WATCH_TICK);
                reload = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_table_answers_for_every_address_of_a_device() {
        let mac: MacAddr = "02:00:00:00:0a:01".parse().unwrap();
        let other: MacAddr = "02:00:00:00:0b:01".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let table = Neighbours::fixed([(ip("10.0.1.10"), mac), (ip("fd70::a"), mac), (ip("10.0.1.11"), other)]);
        assert_eq!(table.mac_of(ip("10.0.1.10")), Some(mac));
        assert_eq!(table.mac_of(ip("::ffff:10.0.1.10")), Some(mac), "a mapped peer is its IPv4 address");
        assert_eq!(table.mac_of(ip("10.0.1.12")), None);
        assert_eq!(table.addresses_of(mac), vec![ip("10.0.1.10"), ip("fd70::a")]);
        assert!(Neighbours::none().mac_of(ip("10.0.1.10")).is_none());
    }

    #[test]
    fn changes_on_other_interfaces_are_ignored_and_deletions_forget() {
        let table = Neighbours::fixed([]);
        let ip = IpAddr::from([10, 0, 1, 10]);
        let mac = Some(MacAddr([2, 0, 0, 0, 0, 1]));
        table.shared.apply(&[4], Message::Neighbour { ifindex: 9, ip, mac });
        assert_eq!(table.mac_of(ip), None, "not a client interface");
        table.shared.apply(&[4], Message::Neighbour { ifindex: 4, ip, mac });
        assert_eq!(table.mac_of(ip), mac);
        table.shared.apply(&[4], Message::Neighbour { ifindex: 4, ip, mac: None });
        assert_eq!(table.mac_of(ip), None);
        assert!(table.addresses_of(MacAddr([2, 0, 0, 0, 0, 1])).is_empty());
    }

    #[test]
    fn an_address_that_moves_to_another_device_leaves_the_first() {
        let (a, b) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        let ip = IpAddr::from([10, 0, 1, 10]);
        let table = Neighbours::fixed([(ip, a), (IpAddr::from([10, 0, 1, 11]), a)]);
        // DHCP gave the address to another phone.
        table.shared.apply(&[4], Message::Neighbour { ifindex: 4, ip, mac: Some(b) });
        assert_eq!(table.mac_of(ip), Some(b));
        assert_eq!(table.addresses_of(a), vec![IpAddr::from([10, 0, 1, 11])]);
        assert_eq!(table.addresses_of(b), vec![ip]);
    }
}
