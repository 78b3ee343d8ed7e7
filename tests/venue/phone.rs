//! What a phone does, from inside its namespace: a minimal blocking
//! HTTP/1.1 client that sends exactly the Host header a probe would, raw
//! TCP tries, real DNS queries, and the splash's *Connect* tap. Each
//! `expect_*` says in its error what the phone saw instead.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::dns;
use crate::form::{Form, encode};
use crate::internet::{GREETING_443, UPSTREAM_MARK};
use crate::wiring::Phone;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// The Host an Android probe sends; the address it goes to is upstream's.
pub const PROBE_HOST: &str = "connectivitycheck.gstatic.com";
/// A refused connection must be known within this long (DESIGN: "reject at
/// once, never silently drop, so probes fail fast").
const REFUSED_WITHIN: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// One line for an error message: who answered and what.
    pub fn describe(&self) -> String {
        let who = match self.header(UPSTREAM_MARK) {
            Some(_) => "upstream",
            None => "not upstream (Portico?)",
        };
        match self.header("location") {
            Some(location) => format!("{} → {location} from {who}", self.status),
            None => format!("{} from {who}", self.status),
        }
    }
}

impl Phone {
    pub fn connect(&self, to: SocketAddr) -> std::io::Result<TcpStream> {
        self.ns.run(|| TcpStream::connect_timeout(&to, CONNECT_TIMEOUT))
    }

    /// One request on a fresh connection with `Connection: close`.
    pub fn request(&self, to: SocketAddr, method: &str, host: &str, path: &str, form: Option<&str>) -> Result<Reply> {
        let stream = self.connect(to).with_context(|| format!("phone {} connecting to {to}", self.label))?;
        exchange(stream, method, host, path, form).with_context(|| format!("phone {} asking {to}", self.label))
    }

    /// What an Android phone sends to see whether it is online.
    pub fn probe(&self, target: IpAddr) -> Result<Reply> {
        self.request(SocketAddr::new(target, 80), "GET", PROBE_HOST, "/generate_204", None)
    }

    /// The probe is intercepted and answered 302 to the portal.
    pub fn expect_held(&self, target: IpAddr, public_url: &str) -> Result<()> {
        let reply = self.probe(target)?;
        ensure!(
            reply.status == 302 && reply.header("location") == Some(public_url),
            "phone {} probing {target}: wanted 302 → {public_url}, got {}",
            self.label,
            reply.describe()
        );
        Ok(())
    }

    /// The probe reaches the real upstream and gets its 204.
    pub fn expect_online(&self, target: IpAddr) -> Result<()> {
        let reply = self.probe(target)?;
        ensure!(
            reply.status == 204 && reply.header(UPSTREAM_MARK).is_some(),
            "phone {} probing {target}: wanted upstream's 204, got {}",
            self.label,
            reply.describe()
        );
        Ok(())
    }

    /// TCP to `target`:443 is refused (reset), and fast.
    pub fn expect_443_refused(&self, target: IpAddr) -> Result<()> {
        let to = SocketAddr::new(target, 443);
        let start = Instant::now();
        let result = self.connect(to);
        let took = start.elapsed();
        match result {
            Ok(mut stream) => {
                let mut got = String::new();
                let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
                let _ = stream.read_to_string(&mut got);
                bail!("phone {} reached {to} (it said {got:?})", self.label)
            }
            Err(e) => {
                use std::io::ErrorKind::{ConnectionRefused, ConnectionReset};
                ensure!(
                    matches!(e.kind(), ConnectionRefused | ConnectionReset),
                    "phone {} to {to}: wanted refused, got {e} after {took:?}",
                    self.label
                );
                ensure!(took < REFUSED_WITHIN, "phone {} to {to}: refused, but only after {took:?}", self.label);
                Ok(())
            }
        }
    }

    /// TCP to `target`:443 connects and upstream greets.
    pub fn expect_443_open(&self, target: IpAddr) -> Result<()> {
        let to = SocketAddr::new(target, 443);
        let mut stream = self.connect(to).with_context(|| format!("phone {} connecting to {to}", self.label))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        let mut got = String::new();
        stream.read_to_string(&mut got)?;
        ensure!(got == GREETING_443, "phone {} at {to}: got {got:?}", self.label);
        Ok(())
    }

    /// A real DNS query to `server` (dnsmasq) for `name` answers `want`
    /// among its records (A for an IPv4 `want`, AAAA for IPv6).
    pub fn expect_dns(&self, server: SocketAddr, name: &str, want: IpAddr) -> Result<()> {
        let any: SocketAddr = match server {
            SocketAddr::V4(_) => "0.0.0.0:0".parse()?,
            SocketAddr::V6(_) => "[::]:0".parse()?,
        };
        let socket = self.ns.run(|| UdpSocket::bind(any))?;
        let qtype = if want.is_ipv4() { dns::A } else { dns::AAAA };
        let got = dns::query(&socket, server, name, qtype).with_context(|| format!("phone {}", self.label))?;
        ensure!(got.contains(&want), "phone {}: {server} says {name} is {got:?}, wanted {want}", self.label);
        Ok(())
    }

    /// Loads the splash at `portal` as a browser would, then submits its
    /// form with `extra` fields appended. Returns the answer to the POST.
    pub fn accept(&self, portal: SocketAddr, extra: &[(&str, &str)]) -> Result<Reply> {
        let host = portal.to_string();
        let splash = self.request(portal, "GET", &host, "/", None)?;
        ensure!(splash.status == 200, "splash: {}", splash.describe());
        let form = Form::parse(&splash.text()).context("the splash has no post form")?;
        ensure!(form.fields.iter().any(|(k, _)| k == "lang"), "the form has no lang field: {:?}", form.fields);
        let mut fields = form.fields.clone();
        fields.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let body = fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
        self.request(portal, "POST", &host, &form.action, Some(&body))
    }
}

/// Sends one request on `stream` and reads the whole answer.
pub fn exchange(mut stream: TcpStream, method: &str, host: &str, path: &str, form: Option<&str>) -> Result<Reply> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: venue-test\r\nConnection: close\r\n");
    if let Some(form) = form {
        request += &format!("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n", form.len());
    }
    request += "\r\n";
    request += form.unwrap_or("");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.take(4 << 20).read_to_end(&mut raw)?;
    parse(&raw).with_context(|| format!("unreadable answer {:?}", String::from_utf8_lossy(&raw)))
}

/// Status line, headers, and a body delimited by content-length, chunks,
/// or the end of the connection.
fn parse(raw: &[u8]) -> Result<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").context("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end])?;
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).context("no status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut reply = Reply { status, headers, body: raw[end + 4..].to_vec() };
    if reply.header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        reply.body = dechunk(&reply.body).context("bad chunked body")?;
    } else if let Some(len) = reply.header("content-length") {
        let len: usize = len.parse()?;
        ensure!(reply.body.len() >= len, "body shorter than content-length");
        reply.body.truncate(len);
    }
    Ok(reply)
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
