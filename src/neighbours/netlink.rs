//! The kernel's neighbour table over rtnetlink: the few bytes of the wire
//! format Portico needs (a dump request, and `RTM_NEWNEIGH` /
//! `RTM_DELNEIGH` messages with their destination and link-layer address).
//!
//! Hand-written rather than a netlink crate because the whole of it is one
//! fixed header and two attributes; [`parse`] is total (any bytes give a
//! list of messages, never a panic) and is unit-tested on the kernel's
//! layout.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::grant::MacAddr;
use crate::netlink::{self, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN};

const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const RTM_GETNEIGH: u16 = 30;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// The multicast group of neighbour changes, as a bind bitmask (group 3).
pub const GROUP_NEIGH: u32 = 1 << 2;
/// The size of `struct ndmsg`.
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
    // family AF_UNSPEC: IPv4 and IPv6
    netlink::request(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq, &[0; NDMSG])
}

/// Every message in one datagram.
pub fn parse(buf: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    for (kind, body) in netlink::messages(buf) {
        match kind {
            NLMSG_DONE => out.push(Message::Done),
            NLMSG_OVERRUN => out.push(Message::Overrun),
            NLMSG_ERROR => match netlink::error_code(body) {
                0 => {} // an acknowledgement
                errno => out.push(Message::Error(errno)),
            },
            RTM_NEWNEIGH | RTM_DELNEIGH => out.extend(neighbour(body, kind == RTM_DELNEIGH)),
            _ => {}
        }
    }
    out
}

/// `struct ndmsg` then attributes.
fn neighbour(body: &[u8], deleted: bool) -> Option<Message> {
    let family = *body.first()?;
    let ifindex = netlink::u32_at(body, 4)?;
    let state = netlink::u16_at(body, 8)?;
    let (mut ip, mut lladdr) = (None, None);
    for (kind, value) in netlink::attributes(body.get(NDMSG..)?) {
        match (kind, family, value.len()) {
            (NDA_DST, AF_INET, 4) => ip = Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(value).ok()?))),
            (NDA_DST, AF_INET6, 16) => ip = Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(value).ok()?))),
            (NDA_LLADDR, _, 6) => lladdr = Some(MacAddr(value.try_into().ok()?)),
            _ => {}
        }
    }
    let usable = !deleted && state & NUD_USABLE != 0;
    let mac = lladdr.filter(|m| usable && m.0 != [0; 6]);
    Some(Message::Neighbour { ifindex, ip: ip?, mac })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message as the kernel lays it out.
    fn message(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((netlink::HEADER + body.len()) as u32).to_ne_bytes());
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
        assert_eq!(dump_request(9).len(), netlink::HEADER + NDMSG);
    }
}
