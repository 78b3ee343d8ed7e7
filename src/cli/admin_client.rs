//! A minimal HTTP/1.1 client for the admin listener, used by `portico
//! clients`: one request, `Connection: close`, read to the end, a chunked
//! body (the client list, made as it is sent) put back together. Blocking
//! std I/O is enough for a command that makes one call and exits. With
//! `admin.token_file` set, every request carries the token, and a 401 or
//! 429 is turned into what to do about it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::config::AdminToken;

/// The running service's admin listener, as a config file (or the demo)
/// names it.
pub struct Target {
    pub addr: SocketAddr,
    /// Where the address comes from, for messages: `in FILE`.
    pub hint: String,
    /// Read from `admin.token_file`.
    pub token: Option<AdminToken>,
}

impl Target {
    /// Sends `method path`; returns status and body.
    pub fn call(&self, method: &str, path: &str) -> anyhow::Result<(u16, String)> {
        self.call_with(method, path, b"")
    }

    /// Like [`Target::call`], sending `body` (JSON).
    pub fn call_with(&self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<(u16, String)> {
        // An unspecified bind address is reached on loopback.
        let target = match self.addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), a.port()),
            SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), a.port()),
            other => other,
        };
        let hint = &self.hint;
        let mut stream = match TcpStream::connect_timeout(&target, Duration::from_secs(3)) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                bail!("Portico is not running: nothing listens on {target} (admin.listen {hint})")
            }
            Err(e) => return Err(e).with_context(|| format!("cannot reach Portico's admin listener on {target}")),
        };
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let kind = if body.is_empty() { "" } else { "Content-Type: application/json\r\n" };
        let auth = self.token.as_ref().map_or(String::new(), |t| format!("Authorization: {}\r\n", t.authorization()));
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {target}\r\n{auth}{kind}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).context("reading the admin listener's answer")?;
        let end =
            raw.windows(4).position(|w| w == b"\r\n\r\n").context("the admin listener sent no complete answer")?;
        let head = String::from_utf8_lossy(&raw[..end]);
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no status in the answer")?;
        let header = |wanted: &str| {
            head.lines().skip(1).find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim().eq_ignore_ascii_case(wanted).then(|| value.trim().to_owned())
            })
        };
        match (status, &self.token) {
            (401, None) => bail!(
                "the admin listener on {target} wants a token (401), but admin.token_file is not set {hint}: \
                 it must name the file the service reads its token from"
            ),
            (401, Some(_)) => bail!(
                "the admin listener on {target} refused the token from admin.token_file {hint} (401): the service \
                 holds another; if the file was just changed, reload the service (systemctl reload portico)"
            ),
            (429, _) => bail!(
                "the admin listener on {target} takes no more attempts from this address for now (429): \
                 try again in {} s",
                header("retry-after").unwrap_or_else(|| "a few".into())
            ),
            _ => {}
        }
        let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let body = &raw[end + 4..];
        let body =
            if chunked { dechunk(body).context("the admin listener's answer is cut short")? } else { body.to_vec() };
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// The data of a chunked body (RFC 9112 section 7.1), which must be whole:
/// every chunk and the last, empty one.
fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").context("no chunk size")?;
        let size = std::str::from_utf8(&body[..line_end])?;
        // A size may carry extensions after a `;`.
        let size = size.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).with_context(|| format!("bad chunk size {size:?}"))?;
        let data = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).context("a chunk ends early")?;
        out.extend_from_slice(chunk);
        body = data.get(size..).and_then(|rest| rest.strip_prefix(b"\r\n")).context("a chunk ends early")?;
    }
}

#[cfg(test)]
mod tests {
    use super::dechunk;

    #[test]
    fn a_chunked_body_is_put_back_together_and_a_cut_one_is_refused() {
        let body = b"5\r\n[\n{}]\r\n3;ext=1\r\n\n]\n\r\n0\r\n\r\n";
        assert_eq!(dechunk(body).unwrap(), b"[\n{}]\n]\n");
        assert_eq!(dechunk(b"0\r\n\r\n").unwrap(), b"");
        assert!(dechunk(b"5\r\n[\n{}]\r\n").is_err(), "no last chunk");
        assert!(dechunk(b"a\r\nshort\r\n0\r\n\r\n").is_err(), "chunk shorter than its size");
        assert!(dechunk(b"zz\r\n").is_err(), "size not hex");
    }
}
