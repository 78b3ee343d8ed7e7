//! The kernel's neighbour table over rtnetlink: the few bytes of the wire
//! format Portico needs (a dump request, and `RTM_NEWNEIGH` /
//! `RTM_DELNEIGH` messages with their destination and link-layer address),
//! and a socket to send and receive them.
//!
//! Hand-written rather than a netlink crate because the whole of it is two
//! fixed headers and two attributes; [`parse`] is total (any bytes give a
//! list of messages, never a panic) and is unit-tested on captured shapes.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, sockopt};
use nix::sys::time::TimeVal;

use crate::grant::MacAddr;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const RTM_GETNEIGH: u16 = 30;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// The multicast group of neighbour changes, as a bind bitmask (group 3).
pub const GROUP_NEIGH: u32 = 1 << 2;

const HEADER: usize = 16;
const NDMSG: usize = 12;

/// Neighbour-discovery states (`NUD_*`) in which the link-layer address is
/// one the kernel has actually seen answer, or was told by the operator.
const NUD_USABLE: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x80; // REACHABLE STALE DELAY PROBE PERMANENT

/// One message read from the socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A neighbour entry, from a dump or a change. `mac` is `None` when
    /// the entry has no usable link-layer address (incomplete, failed) or
    /// was deleted.
    Neighbour {
        ifindex: u32,
        ip: IpAddr,
        mac: Option<MacAddr>,
    },
    /// The end of a dump.
    Done,
    /// The kernel refused a request (a negative errno), or dropped changes
    /// because the socket's buffer was full.
    Error(i32),
    Overrun,
}

/// `RTM_GETNEIGH` with `NLM_F_DUMP` for every family.
pub fn dump_request(seq: u32) -> Vec<u8> {
    let len = (HEADER + NDMSG) as u32;
    let mut out = Vec::with_capacity(len as usize);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    out.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[0; NDMSG]); // family AF_UNSPEC: IPv4 and IPv6
    out
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Every message in one datagram. A truncated or malformed message ends
/// the list; nothing here can panic.
pub fn parse(mut buf: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while buf.len() >= HEADER {
        let (Some(len), Some(kind)) = (u32_at(buf, 0), u16_at(buf, 4)) else { break };
        let len = len as usize;
        if len < HEADER || len > buf.len() {
            break;
        }
        let body = &buf[HEADER..len];
        match kind {
            NLMSG_DONE => out.push(Message::Done),
            NLMSG_OVERRUN => out.push(Message::Overrun),
            NLMSG_ERROR => {
                let errno = u32_at(body, 0).map_or(-1, |e| e as i32);
                // An error of 0 is an acknowledgement.
                if errno != 0 {
                    out.push(Message::Error(errno));
                }
            }
            RTM_NEWNEIGH | RTM_DELNEIGH => out.extend(neighbour(body, kind == RTM_DELNEIGH)),
            _ => {}
        }
        buf = buf.get(align4(len)..).unwrap_or_default();
    }
    out
}

/// `struct ndmsg` then attributes.
fn neighbour(body: &[u8], deleted: bool) -> Option<Message> {
    let family = *body.first()?;
    let ifindex = u32_at(body, 4)?;
    let state = u16_at(body, 8)?;
    let mut attrs = body.get(NDMSG..)?;
    let (mut ip, mut lladdr) = (None, None);
    while attrs.len() >= 4 {
        let len = u16_at(attrs, 0)? as usize;
        let kind = u16_at(attrs, 2)? & 0x3fff;
        if len < 4 || len > attrs.len() {
            break;
        }
        let value = &attrs[4..len];
        match (kind, family, value.len()) {
            (NDA_DST, AF_INET, 4) => ip = Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(value).ok()?))),
            (NDA_DST, AF_INET6, 16) => ip = Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(value).ok()?))),
            (NDA_LLADDR, _, 6) => lladdr = Some(MacAddr(value.try_into().ok()?)),
            _ => {}
        }
        attrs = attrs.get(align4(len)..).unwrap_or_default();
    }
    let usable = !deleted && state & NUD_USABLE != 0;
    let mac = lladdr.filter(|m| usable && m.0 != [0; 6]);
    Some(Message::Neighbour { ifindex, ip: ip?, mac })
}

/// A `NETLINK_ROUTE` socket, optionally subscribed to `groups`.
pub struct Socket(OwnedFd);

impl Socket {
    pub fn open(groups: u32, timeout: Duration) -> io::Result<Socket> {
        let fd =
            socket::socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkRoute)?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
        // A train's worth of phones arriving at once is a burst of changes;
        // a larger buffer makes an overrun (and the re-dump it costs) rare.
        let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &(1 << 20));
        let micros = timeout.as_micros().min(i64::MAX as u128) as i64;
        socket::setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(micros / 1_000_000, micros % 1_000_000))?;
        Ok(Socket(fd))
    }

    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        socket::send(self.0.as_raw_fd(), bytes, MsgFlags::empty())?;
        Ok(())
    }

    /// One datagram; `WouldBlock` / `TimedOut` when the timeout passed.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(socket::recv(self.0.as_raw_fd(), buf, MsgFlags::empty())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message as the kernel lays it out.
    fn message(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((HEADER + body.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&[0; 10]);
        out.extend_from_slice(body);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn ndmsg(family: u8, ifindex: u32, state: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = vec![family, 0, 0, 0];
        out.extend_from_slice(&ifindex.to_ne_bytes());
        out.extend_from_slice(&state.to_ne_bytes());
        out.extend_from_slice(&[0, 0]);
        for (kind, value) in attrs {
            out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
            out.extend_from_slice(&kind.to_ne_bytes());
            out.extend_from_slice(value);
            while out.len() % 4 != 0 {
                out.push(0);
            }
        }
        out
    }

    const MAC: [u8; 6] = [2, 0, 0, 0, 0x0a, 1];

    #[test]
    fn reads_ipv4_and_ipv6_entries_of_a_dump() {
        let v6: Ipv6Addr = "fd70:1:1::8a2e:370:7334".parse().unwrap();
        let mut dump =
            message(RTM_NEWNEIGH, &ndmsg(AF_INET, 7, 0x02, &[(NDA_DST, &[10, 0, 1, 10]), (NDA_LLADDR, &MAC)]));
        dump.extend(message(RTM_NEWNEIGH, &ndmsg(AF_INET6, 7, 0x04, &[(NDA_DST, &v6.octets()), (NDA_LLADDR, &MAC)])));
        dump.extend(message(NLMSG_DONE, &[0; 4]));
        let mac = Some(MacAddr(MAC));
        assert_eq!(
            parse(&dump),
            vec![
                Message::Neighbour { ifindex: 7, ip: IpAddr::from([10, 0, 1, 10]), mac },
                Message::Neighbour { ifindex: 7, ip: v6.into(), mac },
                Message::Done,
            ]
        );
    }

    #[test]
    fn failed_incomplete_and_deleted_entries_have_no_mac() {
        let dst: (u16, &[u8]) = (NDA_DST, &[10, 0, 1, 11]);
        let ip = IpAddr::from([10, 0, 1, 11]);
        for (kind, state) in [(RTM_NEWNEIGH, 0x20), (RTM_NEWNEIGH, 0x01), (RTM_DELNEIGH, 0x02)] {
            let got = parse(&message(kind, &ndmsg(AF_INET, 3, state, &[dst, (NDA_LLADDR, &MAC)])));
            assert_eq!(got, vec![Message::Neighbour { ifindex: 3, ip, mac: None }], "kind {kind} state {state:#x}");
        }
    }

    #[test]
    fn errors_and_overruns_are_reported_and_acks_are_not() {
        let mut buf = message(NLMSG_ERROR, &(-105i32).to_ne_bytes());
        buf.extend(message(NLMSG_ERROR, &0i32.to_ne_bytes()));
        buf.extend(message(NLMSG_OVERRUN, &[]));
        assert_eq!(parse(&buf), vec![Message::Error(-105), Message::Overrun]);
    }

    #[test]
    fn truncated_or_garbage_input_never_panics() {
        let good = message(RTM_NEWNEIGH, &ndmsg(AF_INET, 7, 0x02, &[(NDA_DST, &[10, 0, 1, 10]), (NDA_LLADDR, &MAC)]));
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
            let mut bad = good.clone();
            bad[cut] ^= 0xff;
            let _ = parse(&bad);
        }
        assert_eq!(parse(&dump_request(1))[..], []);
        assert_eq!(dump_request(9).len(), HEADER + NDMSG);
    }
}
