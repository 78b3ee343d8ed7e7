//! A DNS client just big enough for the venue's checks: one question (A or
//! AAAA) over UDP, the addresses in the answer. The server is dnsmasq; this
//! only proves a real query gets a real answer through the gate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};

pub const A: u16 = 1;
pub const AAAA: u16 = 28;
const TIMEOUT: Duration = Duration::from_secs(1);

/// Asks `server` for `name`'s records of type `qtype` from `socket` (bound
/// in the asker's namespace) and returns the addresses answered.
pub fn query(socket: &UdpSocket, server: SocketAddr, name: &str, qtype: u16) -> Result<Vec<IpAddr>> {
    let id = (std::process::id() as u16) ^ qtype;
    let mut packet = Vec::new();
    packet.extend(id.to_be_bytes());
    packet.extend([0x01, 0x00]); // a standard query, recursion desired
    packet.extend([0, 1, 0, 0, 0, 0, 0, 0]); // one question
    for label in name.split('.') {
        packet.push(label.len() as u8);
        packet.extend(label.as_bytes());
    }
    packet.push(0);
    packet.extend(qtype.to_be_bytes());
    packet.extend([0, 1]); // class IN
    socket.set_read_timeout(Some(TIMEOUT))?;
    socket.send_to(&packet, server)?;
    let mut buf = [0; 1500];
    let (n, from) = socket.recv_from(&mut buf).with_context(|| format!("no DNS answer from {server} for {name}"))?;
    ensure!(from == server, "DNS answer from {from}, asked {server}");
    answers(&buf[..n], id, qtype).with_context(|| format!("DNS answer from {server} for {name}"))
}

fn answers(msg: &[u8], id: u16, qtype: u16) -> Result<Vec<IpAddr>> {
    ensure!(msg.len() >= 12 && msg[..2] == id.to_be_bytes(), "not an answer to our query");
    let rcode = msg[3] & 0x0f;
    ensure!(rcode == 0, "rcode {rcode}");
    let count = |at: usize| usize::from(u16::from_be_bytes([msg[at], msg[at + 1]]));
    let (questions, records) = (count(4), count(6));
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(msg, at)? + 4;
    }
    let mut found = Vec::new();
    for _ in 0..records {
        at = skip_name(msg, at)?;
        let field = msg.get(at..at + 10).context("short record")?;
        let (rtype, len) =
            (u16::from_be_bytes([field[0], field[1]]), usize::from(u16::from_be_bytes([field[8], field[9]])));
        let data = msg.get(at + 10..at + 10 + len).context("short record data")?;
        match (rtype, len) {
            (A, 4) if qtype == A => found.push(IpAddr::from(Ipv4Addr::from(<[u8; 4]>::try_from(data)?))),
            (AAAA, 16) if qtype == AAAA => found.push(IpAddr::from(Ipv6Addr::from(<[u8; 16]>::try_from(data)?))),
            _ => {}
        }
        at += 10 + len;
    }
    Ok(found)
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(msg: &[u8], mut at: usize) -> Result<usize> {
    loop {
        match msg.get(at) {
            None => bail!("name runs past the end"),
            Some(0) => return Ok(at + 1),
            Some(len) if len & 0xc0 == 0xc0 => return Ok(at + 2),
            Some(len) => at += 1 + usize::from(*len),
        }
    }
}
