//! The packet filter's generation: a number the kernel adds one to with
//! every nftables transaction that commits, whoever makes it (Portico, an
//! operator's `nft`, another firewall's reload). Set elements that time out
//! do not change it: that is the kernel doing what it was told.
//!
//! Read over nfnetlink (`NFT_MSG_GETGEN`), a few system calls, so the drift
//! check can ask every couple of seconds for nothing: while the number is
//! the one Portico's own last transaction left, nobody else has touched
//! the ruleset and there is nothing to compare.

use std::io;
use std::time::Duration;

use nix::sys::socket::SockProtocol;

use crate::netlink::{self, NLM_F_REQUEST, NLMSG_ERROR};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_GETGEN: u16 = 16;
const NFTA_GEN_ID: u16 = 1;
/// `struct nfgenmsg`: family (AF_UNSPEC), version (NFNETLINK_V0), res_id.
const NFGENMSG: [u8; 4] = [0; 4];

/// The current generation of this network namespace's nftables ruleset.
pub fn read() -> io::Result<u32> {
    let socket = netlink::Socket::open(SockProtocol::NetlinkNetFilter, 0, Duration::from_secs(1))?;
    socket.send(&netlink::request(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN, NLM_F_REQUEST, 1, &NFGENMSG))?;
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf)?;
    parse(&buf[..n])
}

fn parse(buf: &[u8]) -> io::Result<u32> {
    for (kind, body) in netlink::messages(buf) {
        match kind {
            NLMSG_ERROR if netlink::error_code(body) != 0 => {
                return Err(io::Error::from_raw_os_error(-netlink::error_code(body)));
            }
            k if k == NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN => {
                let id = netlink::attributes(body.get(NFGENMSG.len()..).unwrap_or_default())
                    .into_iter()
                    .find(|(kind, value)| *kind == NFTA_GEN_ID && value.len() == 4)
                    .map(|(_, value)| u32::from_be_bytes([value[0], value[1], value[2], value[3]]));
                if let Some(id) = id {
                    return Ok(id);
                }
            }
            _ => {}
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "no generation in the kernel's answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generation_is_read_from_the_kernels_answer() {
        // NFT_MSG_NEWGEN: nfgenmsg, then NFTA_GEN_ID (big-endian 0x01020304)
        // and NFTA_GEN_PROC_PID.
        let mut body = NFGENMSG.to_vec();
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&NFTA_GEN_ID.to_ne_bytes());
        body.extend_from_slice(&[1, 2, 3, 4]);
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&2u16.to_ne_bytes());
        body.extend_from_slice(&[0, 0, 0, 9]);
        let answer = netlink::request(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN, 0, 1, &body);
        assert_eq!(parse(&answer).unwrap(), 0x0102_0304);

        let refused = netlink::request(NLMSG_ERROR, 0, 1, &(-1i32).to_ne_bytes());
        assert_eq!(parse(&refused).unwrap_err().raw_os_error(), Some(1));
        assert!(parse(&[]).is_err());
    }
}
