//! The venue's "internet": servers that answer the way the real probe
//! servers do, a slow stream for the long-download checks, and a 443 that
//! notes every TLS ClientHello it is sent. Sockets are bound inside their
//! namespace and served from ordinary threads. (DNS is dnsmasq's: see
//! `dnsmasq.rs`.)
//!
//! Every upstream HTTP answer carries [`UPSTREAM_MARK`], so a test can tell
//! the real upstream's 204 from the 204 Portico itself gives a granted
//! client whose probe still reached it.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::netns::Netns;

/// The header every upstream HTTP answer carries.
pub const UPSTREAM_MARK: &str = "x-venue-upstream";
/// What the upstream's port 443 says before it closes.
pub const GREETING_443: &str = "upstream-443";
/// The slow streaming response: one chunk every [`STREAM_EVERY`] for
/// [`STREAM_FOR`], unless the connection is cut first.
pub const STREAM_PATH: &str = "/stream";
pub const STREAM_EVERY: Duration = Duration::from_millis(100);
const STREAM_FOR: Duration = Duration::from_secs(60);
/// A download as fast as the path allows, for [`BULK_FOR`] or until the
/// client goes: the fair-use checks measure it.
pub const BULK_PATH: &str = "/bulk";
const BULK_FOR: Duration = Duration::from_secs(10);
/// Where uploads go: read to the end and measured.
pub const SINK_PORT: u16 = 9;
const APPLE_SUCCESS: &str = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>";
/// How often a serving loop looks at the stop flag.
const TICK: Duration = Duration::from_millis(5);

/// Running servers; dropping them stops and joins every thread, so no
/// socket keeps a namespace alive after the venue is gone.
pub struct Internet {
    stop: Arc<AtomicBool>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    hellos: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Every upload the sink took: bytes, and from its first byte to its end.
    pub uploads: Arc<Mutex<Vec<(usize, Duration)>>>,
}

type Handler = Arc<dyn Fn(TcpStream, &AtomicBool) + Send + Sync>;

impl Internet {
    /// HTTP on [::]:80 and the 443 greeter in `upstream`, both dual-stack.
    pub fn start(upstream: &Netns) -> Result<Internet> {
        let (http, tls, sink) = upstream.run(|| -> Result<_> {
            Ok((
                TcpListener::bind("[::]:80").context("upstream [::]:80")?,
                TcpListener::bind("[::]:443").context("upstream [::]:443")?,
                TcpListener::bind(("::", SINK_PORT)).context("upstream sink")?,
            ))
        })?;
        let internet = Internet {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Arc::new(Mutex::new(Vec::new())),
            hellos: Arc::new(Mutex::new(Vec::new())),
            uploads: Arc::new(Mutex::new(Vec::new())),
        };
        let uploads = internet.uploads.clone();
        internet.serve_tcp(
            sink,
            Arc::new(move |mut stream: TcpStream, _: &AtomicBool| {
                let mut buf = vec![0; 64 * 1024];
                let (mut bytes, mut first) = (0, None);
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    first.get_or_insert_with(Instant::now);
                    bytes += n;
                }
                if let Some(first) = first {
                    uploads.lock().expect("not poisoned").push((bytes, first.elapsed()));
                }
            }),
        )?;
        internet.serve_tcp(http, Arc::new(answer_http))?;
        let hellos = internet.hellos.clone();
        internet.serve_tcp(
            tls,
            Arc::new(move |stream, _: &AtomicBool| {
                if let Some(hello) = greet_443(stream) {
                    hellos.lock().expect("not poisoned").push(hello);
                }
            }),
        )?;
        Ok(internet)
    }

    /// Whether port 443 has been sent a TLS ClientHello naming `host`
    /// (server name indication is in the clear).
    pub fn saw_tls_hello_for(&self, host: &str) -> bool {
        let hellos = self.hellos.lock().expect("not poisoned");
        hellos.iter().any(|h| h.first() == Some(&0x16) && h.windows(host.len()).any(|w| w == host.as_bytes()))
    }

    fn serve_tcp(&self, listener: TcpListener, handle: Handler) -> Result<()> {
        listener.set_nonblocking(true)?;
        let (stop, threads) = (self.stop.clone(), self.threads.clone());
        let accept = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let (handle, stop) = (handle.clone(), stop.clone());
                        let thread = std::thread::spawn(move || handle(stream, &stop));
                        let mut threads = threads.lock().expect("not poisoned");
                        threads.retain(|t| !t.is_finished());
                        threads.push(thread);
                    }
                    Err(_) => std::thread::sleep(TICK),
                }
            }
        });
        self.threads.lock().expect("not poisoned").push(accept);
        Ok(())
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Connection threads end too (the stream watches the flag; the
        // others are bounded by their read timeouts).
        loop {
            let Some(thread) = self.threads.lock().expect("not poisoned").pop() else { break };
            let _ = thread.join();
        }
    }
}

/// Says [`GREETING_443`], half-closes (so a plain client reading to the end
/// is done at once), then keeps what the client sent: a browser sends its
/// ClientHello straight away. Returns it, if anything came.
fn greet_443(mut stream: TcpStream) -> Option<Vec<u8>> {
    let _ = stream.write_all(GREETING_443.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    // A ClientHello with post-quantum key shares spans several segments:
    // read the whole first record (5-byte header, then its length).
    loop {
        let want = match got.get(..5) {
            Some(h) => 5 + usize::from(u16::from_be_bytes([h[3], h[4]])),
            None => 5,
        };
        if got.len() >= want || got.len() > 32 * 1024 {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (!got.is_empty()).then_some(got)
}

/// One request, one answer, then close: `/generate_204` → 204,
/// `/hotspot-detect.html` → Apple's Success page, [`STREAM_PATH`] → the
/// slow stream, else 200 `upstream ok`.
fn answer_http(mut stream: TcpStream, stop: &AtomicBool) {
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
    if path == STREAM_PATH {
        return stream_slowly(stream, stop);
    }
    if path == BULK_PATH {
        return bulk(stream, stop);
    }
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

/// A chunked 200 that sends one small chunk every [`STREAM_EVERY`] until
/// [`STREAM_FOR`] is over, the client goes, or the servers stop.
fn stream_slowly(mut stream: TcpStream, stop: &AtomicBool) {
    let head = format!(
        "HTTP/1.1 200 OK\r\n{UPSTREAM_MARK}: 1\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < STREAM_FOR && !stop.load(Ordering::Relaxed) {
        let line = format!("tick {n}\n");
        if stream.write_all(format!("{:x}\r\n{line}\r\n", line.len()).as_bytes()).is_err() {
            return;
        }
        n += 1;
        std::thread::sleep(STREAM_EVERY);
    }
    let _ = stream.write_all(b"0\r\n\r\n");
}

/// A 200 of zeros, written as fast as the client takes them, until
/// [`BULK_FOR`] is over, the client goes, or the servers stop.
fn bulk(mut stream: TcpStream, stop: &AtomicBool) {
    let head = format!(
        "HTTP/1.1 200 OK\r\n{UPSTREAM_MARK}: 1\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n"
    );
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let zeros = vec![0; 16 * 1024];
    let start = Instant::now();
    while start.elapsed() < BULK_FOR && !stop.load(Ordering::Relaxed) {
        if stream.write_all(&zeros).is_err() {
            return;
        }
    }
}
