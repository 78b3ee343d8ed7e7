//! The shape of Portico's table, read over nfnetlink: how many chains and
//! rules it has, and nothing of its sets.
//!
//! Why not `nft -j list chain`: the `nft` tool (1.0.6, Debian bookworm's)
//! reads every set's elements into its cache whatever it is asked to list,
//! so with 100,000 grants even a one-chain listing costs it over a second
//! of CPU. A dump of chains and rules from the kernel costs a few system
//! calls, so the drift check can ask it every time the ruleset changes
//! (dnsmasq filling the walled garden changes it at every fresh answer)
//! and keep the full comparison, which lists the sets, for when it is due.

use std::io;
use std::time::Duration;

use nix::sys::socket::SockProtocol;

use crate::netlink::{self, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
/// `NFTA_CHAIN_TABLE` and `NFTA_RULE_TABLE`: the table's name.
const NFTA_TABLE: u16 = 1;
const NFPROTO_INET: u8 = 1;
const ENOENT: i32 = 2;

/// `(chains, rules)` of `inet <table>`; `(0, 0)` when there is no such table.
pub fn read(table: &str) -> io::Result<(usize, usize)> {
    let socket = netlink::Socket::open(SockProtocol::NetlinkNetFilter, 0, Duration::from_secs(1))?;
    let chains = count(&socket, NFT_MSG_GETCHAIN, NFT_MSG_NEWCHAIN, table, 1)?;
    let rules = count(&socket, NFT_MSG_GETRULE, NFT_MSG_NEWRULE, table, 2)?;
    Ok((chains, rules))
}

/// Dumps objects of one kind (`get`, answered with `new` messages) and
/// counts those of `table`.
fn count(socket: &netlink::Socket, get: u16, new: u16, table: &str, seq: u32) -> io::Result<usize> {
    let mut payload = vec![NFPROTO_INET, 0, 0, 0];
    let name = [table.as_bytes(), &[0]].concat();
    payload.extend_from_slice(&((4 + name.len()) as u16).to_ne_bytes());
    payload.extend_from_slice(&NFTA_TABLE.to_ne_bytes());
    payload.extend_from_slice(&name);
    payload.resize(payload.len().next_multiple_of(4), 0);
    let kind = NFNL_SUBSYS_NFTABLES << 8 | get;
    socket.send(&netlink::request(kind, NLM_F_REQUEST | NLM_F_DUMP, seq, &payload))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut counted = 0;
    loop {
        let n = socket.recv(&mut buf)?;
        match tally(&buf[..n], NFNL_SUBSYS_NFTABLES << 8 | new, &name)? {
            (found, true) => return Ok(counted + found),
            (found, false) => counted += found,
        }
    }
}

/// Messages of `kind` in one datagram that name the table `name` (with its
/// NUL), and whether the dump ended in it.
fn tally(datagram: &[u8], kind: u16, name: &[u8]) -> io::Result<(usize, bool)> {
    let mut found = 0;
    for (k, body) in netlink::messages(datagram) {
        match k {
            NLMSG_DONE => return Ok((found, true)),
            NLMSG_ERROR => match netlink::error_code(body) {
                0 => {}
                // The table is gone: nothing of it to count.
                e if -e == ENOENT => return Ok((found, true)),
                e => return Err(io::Error::from_raw_os_error(-e)),
            },
            k if k == kind => {
                let attrs = netlink::attributes(body.get(4..).unwrap_or_default());
                if attrs.iter().any(|(a, value)| *a == NFTA_TABLE && *value == name) {
                    found += 1;
                }
            }
            _ => {}
        }
    }
    if datagram.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the kernel ended the dump without NLMSG_DONE"));
    }
    Ok((found, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: u16, table: &str) -> Vec<u8> {
        let mut body = vec![NFPROTO_INET, 0, 0, 0];
        let name = [table.as_bytes(), &[0]].concat();
        body.extend_from_slice(&((4 + name.len()) as u16).to_ne_bytes());
        body.extend_from_slice(&NFTA_TABLE.to_ne_bytes());
        body.extend_from_slice(&name);
        body.resize(body.len().next_multiple_of(4), 0);
        netlink::request(NFNL_SUBSYS_NFTABLES << 8 | kind, 0, 1, &body)
    }

    #[test]
    fn only_the_tables_own_objects_are_counted_until_the_dump_ends() {
        let kind = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE;
        let name = b"portico\0";
        let mut part = object(NFT_MSG_NEWRULE, "portico");
        part.extend(object(NFT_MSG_NEWRULE, "fw4"));
        part.extend(object(NFT_MSG_NEWRULE, "portico"));
        assert_eq!(tally(&part, kind, name).unwrap(), (2, false));
        part.extend(netlink::request(NLMSG_DONE, 0, 1, &[0; 4]));
        assert_eq!(tally(&part, kind, name).unwrap(), (2, true));
        // A table that is not there: an error of ENOENT ends the count.
        let gone = netlink::request(NLMSG_ERROR, 0, 1, &(-ENOENT).to_ne_bytes());
        assert_eq!(tally(&gone, kind, name).unwrap(), (0, true));
        let refused = netlink::request(NLMSG_ERROR, 0, 1, &(-1i32).to_ne_bytes());
        assert!(tally(&refused, kind, name).is_err());
        for cut in 0..part.len() {
            let _ = tally(&part[..cut], kind, name);
        }
    }
}
