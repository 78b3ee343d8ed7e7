//! Netlink, the kernel's own message interface, for the two questions
//! Portico asks it many times a second where running a command would cost
//! a process each time: which MAC is behind an address (rtnetlink, see
//! [`crate::neighbours`]) and whether anyone has changed the packet filter
//! (nfnetlink's ruleset generation, see [`crate::firewall::nftables`]).
//!
//! Only the framing lives here: a socket, and splitting a datagram into
//! messages. Splitting is total: any bytes give a list of messages (a
//! truncated or malformed one ends it), never a panic.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, sockopt};
use nix::sys::time::{TimeVal, TimeValLike as _};

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_DUMP: u16 = 0x300;
/// The size of `struct nlmsghdr`.
pub const HEADER: usize = 16;

/// A netlink socket of one protocol, optionally subscribed to `groups`.
pub struct Socket(OwnedFd);

impl Socket {
    pub fn open(protocol: SockProtocol, groups: u32, timeout: Duration) -> io::Result<Socket> {
        let fd = socket::socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, protocol)?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
        // A train's worth of phones arriving at once is a burst of changes;
        // a larger buffer makes an overrun (and the reload it costs) rare.
        let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &(1 << 20));
        // `TimeVal::microseconds`, not `TimeVal::new`: the fields are 32
        // bits wide on a 32-bit ARM router.
        let micros = timeout.as_micros().min(i64::MAX as u128) as i64;
        socket::setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::microseconds(micros))?;
        Ok(Socket(fd))
    }

    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        socket::send(self.0.as_raw_fd(), bytes, MsgFlags::empty())?;
        Ok(())
    }

    /// One datagram; `WouldBlock` once the timeout has passed.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(socket::recv(self.0.as_raw_fd(), buf, MsgFlags::empty())?)
    }
}

/// A request: header (type, flags, sequence) and payload.
pub fn request(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = (HEADER + payload.len()) as u32;
    let mut out = Vec::with_capacity(len as usize);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(payload);
    out
}

/// The messages of one datagram as `(type, payload)`.
pub fn messages(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= HEADER {
        let (Some(len), Some(kind)) = (u32_at(buf, 0), u16_at(buf, 4)) else { break };
        let len = len as usize;
        if len < HEADER || len > buf.len() {
            break;
        }
        out.push((kind, &buf[HEADER..len]));
        buf = buf.get(align4(len)..).unwrap_or_default();
    }
    out
}

/// The attributes (`struct nlattr`: length, type, value) from `attrs`, as
/// `(type without the nested/byte-order flags, value)`.
pub fn attributes(mut attrs: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while attrs.len() >= 4 {
        let (Some(len), Some(kind)) = (u16_at(attrs, 0), u16_at(attrs, 2)) else { break };
        let len = len as usize;
        if len < 4 || len > attrs.len() {
            break;
        }
        out.push((kind & 0x3fff, &attrs[4..len]));
        attrs = attrs.get(align4(len)..).unwrap_or_default();
    }
    out
}

/// The errno of an `NLMSG_ERROR` payload (0 is an acknowledgement).
pub fn error_code(body: &[u8]) -> i32 {
    u32_at(body, 0).map_or(-1, |e| e as i32)
}

pub fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_split_back_into_their_messages_and_junk_never_panics() {
        let mut two = request(30, NLM_F_REQUEST, 1, &[1, 2, 3]);
        two.push(0); // padding to four bytes
        two.extend(request(3, 0, 1, &[0; 4]));
        assert_eq!(messages(&two), vec![(30, &[1u8, 2, 3][..]), (3, &[0u8; 4][..])]);
        for cut in 0..two.len() {
            let _ = messages(&two[..cut]);
            let mut bad = two.clone();
            bad[cut] ^= 0xff;
            let _ = messages(&bad);
            let _ = attributes(&bad[..cut]);
        }
    }
}
