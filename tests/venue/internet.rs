//! The venue's "internet": servers that answer the way the real probe
//! servers do, plus the DNS stand-ins. Sockets are bound inside their
//! namespace and served from ordinary threads.
//!
//! Every upstream HTTP answer carries [`UPSTREAM_MARK`], so a test can tell
//! the real upstream's 204 from the 204 Portico itself gives a granted
//! client whose probe still reached it.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::netns::Netns;

/// The header every upstream HTTP answer carries.
pub const UPSTREAM_MARK: &str = "x-venue-upstream";
/// What the upstream's port 443 says before it closes.
pub const GREETING_443: &str = "upstream-443";
const APPLE_SUCCESS: &str = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>";
/// How often a serving loop looks at the stop flag.
const TICK: Duration = Duration::from_millis(5);

/// Running servers; dropping them stops and joins every thread, so no
/// socket keeps a namespace alive after the venue is gone.
pub struct Internet {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Internet {
    /// HTTP on [::]:80, the 443 greeter and a UDP echo on 53 in `upstream`;
    /// a UDP echo on 53 in `gateway` (the gateway's own DNS). All sockets
    /// are dual-stack.
    pub fn start(upstream: &Netns, gateway: &Netns) -> Result<Internet> {
        let (http, tls, dns) = upstream.run(|| -> Result<_> {
            Ok((
                TcpListener::bind("[::]:80").context("upstream [::]:80")?,
                TcpListener::bind("[::]:443").context("upstream [::]:443")?,
                UdpSocket::bind("[::]:53").context("upstream [::]:53")?,
            ))
        })?;
        let gw_dns = gateway.run(|| UdpSocket::bind("[::]:53").context("gateway [::]:53"))?;
        let mut internet = Internet { stop: Arc::new(AtomicBool::new(false)), threads: Vec::new() };
        internet.serve_tcp(http, answer_http)?;
        internet.serve_tcp(tls, |mut stream| {
            let _ = stream.write_all(GREETING_443.as_bytes());
        })?;
        internet.echo_udp(dns)?;
        internet.echo_udp(gw_dns)?;
        Ok(internet)
    }

    fn serve_tcp(&mut self, listener: TcpListener, handle: fn(TcpStream)) -> Result<()> {
        listener.set_nonblocking(true)?;
        let stop = self.stop.clone();
        self.threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        std::thread::spawn(move || handle(stream));
                    }
                    Err(_) => std::thread::sleep(TICK),
                }
            }
        }));
        Ok(())
    }

    fn echo_udp(&mut self, socket: UdpSocket) -> Result<()> {
        socket.set_read_timeout(Some(TICK))?;
        let stop = self.stop.clone();
        self.threads.push(std::thread::spawn(move || {
            let mut buf = [0; 1500];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        }));
        Ok(())
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One request, one answer, then close: `/generate_204` → 204,
/// `/hotspot-detect.html` → Apple's Success page, else 200 `upstream ok`.
fn answer_http(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/generate_204" => ("204 No Content", ""),
        "/hotspot-detect.html" => ("200 OK", APPLE_SUCCESS),
        _ => ("200 OK", "upstream ok"),
    };
    // A 204 carries no content-length (RFC 9110 §8.6), like the real ones.
    let length = match body {
        "" => String::new(),
        _ => format!("content-length: {}\r\ncontent-type: text/html\r\n", body.len()),
    };
    let reply = format!("HTTP/1.1 {status}\r\n{UPSTREAM_MARK}: 1\r\n{length}connection: close\r\n\r\n{body}");
    let _ = stream.write_all(reply.as_bytes());
}
