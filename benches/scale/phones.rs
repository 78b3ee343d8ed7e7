//! The phones: each one taps *Connect* once, as a phone's mini-browser
//! does: `POST /` with the splash form's fields on a fresh connection, from
//! its own source address, and the answer must be 303. Phone `i` is
//! 127.1.0.0 + i, an address of the gateway namespace's loopback (all of
//! 127.0.0.0/8 is local there), so N phones are N devices to Portico.
//!
//! [`AT_ONCE`] phones tap at the same time (one blocking thread each, all
//! inside the namespace); the fill records when each tenth of its phones
//! has been answered, so the rate can be read against the number of grants
//! already held. Bounded: every request has a deadline, the fill stops
//! after [`MAX_FAILURES`] failed taps or at the caller's deadline.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::form::Form;
use crate::netns::{Netns, enter};
use crate::portico::PORTAL;
use crate::running::get;

/// Phones tapping at the same time.
pub const AT_ONCE: usize = 8;
/// Connect, send and read the answer's head, each within this.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// A fill gives up after this many failed taps (the first is reported).
const MAX_FAILURES: usize = 50;
/// The most phones one run can have: 127.1.0.0 up to 127.254.255.255.
pub const MAX_PHONES: usize = 254 << 16;

/// Phone `i`'s address.
pub fn address(i: usize) -> Ipv4Addr {
    assert!(i < MAX_PHONES, "phone {i}: only {MAX_PHONES} addresses in 127.1.0.0 – 127.254.255.255");
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 1, 0, 0)) + i as u32)
}

/// The splash, loaded once (as the first phone would) to read its form:
/// what a tap sends.
pub fn splash_form(ns: &Netns) -> Result<Form> {
    let portal: SocketAddr = PORTAL.parse()?;
    let (status, html) = ns.run(|| get(portal, "/", REQUEST_DEADLINE)).context("GET / (the splash)")?;
    ensure!(status == 200, "GET / answered {status}, not the splash");
    let form = Form::parse(&html).context("the splash has no <form method=\"post\">")?;
    ensure!(form.action == "/", "the splash form posts to {:?}, not /", form.action);
    Ok(form)
}

/// What one fill of `count` phones saw.
pub struct Fill {
    pub count: usize,
    /// Taps answered 303.
    pub granted: usize,
    /// How many had been answered, and when (since the fill started), at
    /// each tenth of `count` and at the end.
    pub marks: Vec<(usize, Duration)>,
    pub elapsed: Duration,
    pub failures: usize,
    pub first_failure: Option<String>,
    /// Why it ended before every phone had tapped, if it did.
    pub stopped: Option<String>,
}

impl Fill {
    /// Accepts per second over the whole fill.
    pub fn rate(&self) -> f64 {
        self.granted as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Accepts per second between consecutive marks: (from, to, rate).
    pub fn segments(&self) -> Vec<(usize, usize, f64)> {
        let mut out = Vec::new();
        let mut last = (0, Duration::ZERO);
        for &(done, at) in &self.marks {
            if done > last.0 {
                out.push((last.0, done, (done - last.0) as f64 / (at - last.1).as_secs_f64().max(1e-9)));
            }
            last = (done, at);
        }
        out
    }
}

/// Phones `first .. first + count` tap *Connect*, [`AT_ONCE`] at a time.
pub fn fill(ns: &Netns, form: &Form, first: usize, count: usize, deadline: Duration) -> Result<Fill> {
    ensure!(first + count <= MAX_PHONES, "{} phones: at most {MAX_PHONES}", first + count);
    let portal: SocketAddr = PORTAL.parse()?;
    let body = form.body();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {PORTAL}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Accept-Language: vi\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let step = (count / 10).max(1);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first_failure = Mutex::new(None::<String>);
    let stopped = Mutex::new(None::<String>);
    let marks = Mutex::new(Vec::new());
    let started = Instant::now();

    std::thread::scope(|s| {
        for _ in 0..AT_ONCE {
            s.spawn(|| {
                enter(&ns.name);
                while !stop.load(Ordering::Relaxed) {
                    if started.elapsed() > deadline {
                        stop.store(true, Ordering::Relaxed);
                        let mut why = stopped.lock().expect("not poisoned");
                        why.get_or_insert_with(|| format!("deadline of {} s reached", deadline.as_secs()));
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    match tap(portal, address(first + i), request.as_bytes()) {
                        Ok(()) => {
                            let now = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if now.is_multiple_of(step) || now == count {
                                let at = started.elapsed();
                                marks.lock().expect("not poisoned").push((now, at));
                                eprintln!(
                                    "  {now}/{count} answered after {:.1} s ({:.0}/s so far)",
                                    at.as_secs_f64(),
                                    now as f64 / at.as_secs_f64().max(1e-9)
                                );
                            }
                        }
                        Err(e) => {
                            let n = failures.fetch_add(1, Ordering::Relaxed) + 1;
                            first_failure
                                .lock()
                                .expect("not poisoned")
                                .get_or_insert_with(|| format!("phone {} ({}): {e:#}", first + i, address(first + i)));
                            if n >= MAX_FAILURES {
                                stop.store(true, Ordering::Relaxed);
                                stopped
                                    .lock()
                                    .expect("not poisoned")
                                    .get_or_insert_with(|| format!("{MAX_FAILURES} taps failed"));
                            }
                        }
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let granted = done.load(Ordering::Relaxed);
    let mut marks = marks.into_inner().expect("not poisoned");
    marks.sort();
    if marks.last().is_none_or(|&(n, _)| n < granted) {
        marks.push((granted, elapsed));
    }
    Ok(Fill {
        count,
        granted,
        marks,
        elapsed,
        failures: failures.load(Ordering::Relaxed),
        first_failure: first_failure.into_inner().expect("not poisoned"),
        stopped: stopped.into_inner().expect("not poisoned"),
    })
}

/// One tap from `from`: connect, send the POST, read the answer's head;
/// anything but 303 is an error saying what came instead.
fn tap(portal: SocketAddr, from: Ipv4Addr, request: &[u8]) -> Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::new(from.into(), 0).into()).with_context(|| format!("binding {from}"))?;
    socket.connect_timeout(&portal.into(), REQUEST_DEADLINE).with_context(|| format!("connecting to {portal}"))?;
    let mut stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(REQUEST_DEADLINE))?;
    stream.set_write_timeout(Some(REQUEST_DEADLINE))?;
    stream.write_all(request).context("sending the POST")?;
    let mut raw = Vec::with_capacity(512);
    let mut buf = [0u8; 2048];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buf).context("reading the answer")?;
        if read == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..read]);
        ensure!(raw.len() < 64 * 1024, "an answer head over 64 KiB");
    }
    let text = String::from_utf8_lossy(&raw);
    match text.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) {
        Some(303) => Ok(()),
        Some(status) => bail!("POST / answered {status}: {:?}", text.lines().next().unwrap_or("")),
        None => bail!("POST /: no status line in {:?}", text.chars().take(200).collect::<String>()),
    }
}
