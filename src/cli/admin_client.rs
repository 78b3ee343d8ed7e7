//! A minimal HTTP/1.1 client for the admin listener, used by `portico
//! clients`: one request, `Connection: close`, read to the end. Blocking
//! std I/O is enough for a command that makes one call and exits.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// Sends `method path` to the admin listener; returns status and body.
pub fn call(admin: SocketAddr, method: &str, path: &str, config_hint: &str) -> anyhow::Result<(u16, String)> {
    // An unspecified bind address is reached on loopback.
    let target = match admin {
        SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), a.port()),
        other => other,
    };
    let mut stream = match TcpStream::connect_timeout(&target, Duration::from_secs(3)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            bail!("Portico is not running: nothing listens on {target} (admin.listen {config_hint})")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot reach Portico's admin listener on {target}")),
    };
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).context("reading the admin listener's answer")?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("the admin listener sent no complete answer")?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no status in the answer")?;
    Ok((status, body.to_owned()))
}
