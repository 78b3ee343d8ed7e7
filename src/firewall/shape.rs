//! Portico's table as the kernel holds it, read over nfnetlink: how many
//! chains and rules it has ([`read`]), and the keys of one set's elements
//! ([`elements`]), for the drift check to compare with what was applied.
//!
//! Why not `nft -j list table`: the `nft` tool (1.0.6, Debian bookworm's)
//! reads every set's elements into its cache whatever it is asked to list,
//! and renders them as JSON that Portico then parses: with 100,000 grants
//! a listing cost over two seconds of CPU. Worse, it starts its dump again
//! whenever the ruleset changes meanwhile, so under a change every second
//! (dnsmasq filling the walled garden) a listing of that size never ended.
//! A dump from the kernel is binary, has no cache to fill, and is read
//! once: a change meanwhile (the kernel flags the dump as interrupted) can
//! at worst make an element look missing, and adding back an element that
//! was there after all gives it the expiry it had.

use std::io;
use std::time::Duration;

use nix::sys::socket::SockProtocol;

use crate::netlink::{self, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_GETSETELEM: u16 = 13;
/// `NFTA_SET_ELEM_LIST_SET`, `_ELEMENTS`; `NFTA_LIST_ELEM`;
/// `NFTA_SET_ELEM_KEY`; `NFTA_DATA_VALUE`.
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_DATA_VALUE: u16 = 1;
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

/// A set element's key: its bytes (a MAC's 6, an address's 4 or 16),
/// padded with zeros.
pub type Key = [u8; 16];

/// The key of a MAC or an address, as [`elements`] gives it.
pub fn key(bytes: &[u8]) -> Key {
    let mut key = [0; 16];
    let n = bytes.len().min(16);
    key[..n].copy_from_slice(&bytes[..n]);
    key
}

/// The keys of every element of `inet <table> <set>`; empty when there is
/// no such table or set.
pub fn elements(table: &str, set: &str) -> io::Result<foldhash::HashSet<Key>> {
    let socket = netlink::Socket::open(SockProtocol::NetlinkNetFilter, 0, Duration::from_secs(2))?;
    let mut payload = nfgenmsg_with(NFTA_TABLE, table);
    push_string(&mut payload, NFTA_SET_ELEM_LIST_SET, set);
    let mut keys = foldhash::HashSet::default();
    dump(&socket, NFT_MSG_GETSETELEM, NFT_MSG_NEWSETELEM, 3, &payload, |body| {
        let attrs = netlink::attributes(body.get(4..).unwrap_or_default());
        for (_, list) in attrs.iter().filter(|(a, _)| *a == NFTA_SET_ELEM_LIST_ELEMENTS) {
            for (_, element) in netlink::attributes(list).iter().filter(|(a, _)| *a == NFTA_LIST_ELEM) {
                let value = netlink::attributes(element)
                    .into_iter()
                    .filter(|(a, _)| *a == NFTA_SET_ELEM_KEY)
                    .flat_map(|(_, k)| netlink::attributes(k))
                    .find(|(a, _)| *a == NFTA_DATA_VALUE);
                if let Some((_, value)) = value {
                    keys.insert(key(value));
                }
            }
        }
    })?;
    Ok(keys)
}

/// `struct nfgenmsg` for `inet`, then one string attribute.
fn nfgenmsg_with(kind: u16, value: &str) -> Vec<u8> {
    let mut payload = vec![NFPROTO_INET, 0, 0, 0];
    push_string(&mut payload, kind, value);
    payload
}

/// A NUL-terminated string attribute, padded to four bytes.
fn push_string(out: &mut Vec<u8>, kind: u16, value: &str) {
    let value = [value.as_bytes(), &[0]].concat();
    out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&value);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Sends a dump request (`get`) and hands `each` the body of every `new`
/// message of the answer, until the dump ends.
fn dump(
    socket: &netlink::Socket,
    get: u16,
    new: u16,
    seq: u32,
    payload: &[u8],
    mut each: impl FnMut(&[u8]),
) -> io::Result<()> {
    socket.send(&netlink::request(NFNL_SUBSYS_NFTABLES << 8 | get, NLM_F_REQUEST | NLM_F_DUMP, seq, payload))?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = socket.recv(&mut buf)?;
        if walk(&buf[..n], NFNL_SUBSYS_NFTABLES << 8 | new, &mut each)? {
            return Ok(());
        }
    }
}

/// Dumps objects of one kind (`get`, answered with `new` messages) and
/// counts those of `table`.
fn count(socket: &netlink::Socket, get: u16, new: u16, table: &str, seq: u32) -> io::Result<usize> {
    let name = [table.as_bytes(), &[0]].concat();
    let mut counted = 0;
    dump(socket, get, new, seq, &nfgenmsg_with(NFTA_TABLE, table), |body| {
        let attrs = netlink::attributes(body.get(4..).unwrap_or_default());
        if attrs.iter().any(|(a, value)| *a == NFTA_TABLE && *value == name) {
            counted += 1;
        }
    })?;
    Ok(counted)
}

/// Hands `each` the body of every message of `kind` in one datagram;
/// returns whether the dump ended in it.
fn walk(datagram: &[u8], kind: u16, each: &mut impl FnMut(&[u8])) -> io::Result<bool> {
    if datagram.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the kernel ended the dump without NLMSG_DONE"));
    }
    for (k, body) in netlink::messages(datagram) {
        match k {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => match netlink::error_code(body) {
                0 => {}
                // The table or set is gone: nothing of it to read.
                e if -e == ENOENT => return Ok(true),
                e => return Err(io::Error::from_raw_os_error(-e)),
            },
            k if k == kind => each(body),
            _ => {}
        }
    }
    Ok(false)
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

    /// How many messages of `kind` in `datagram` name `table`, and
    /// whether the dump ended.
    fn tally(datagram: &[u8], kind: u16, table: &[u8]) -> io::Result<(usize, bool)> {
        let mut found = 0;
        let ended = walk(datagram, kind, &mut |body| {
            let attrs = netlink::attributes(body.get(4..).unwrap_or_default());
            found += usize::from(attrs.iter().any(|(a, v)| *a == NFTA_TABLE && *v == table));
        })?;
        Ok((found, ended))
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
