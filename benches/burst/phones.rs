//! The N phones, driven from one tokio runtime whose threads all live in
//! the client namespace (each worker and blocking thread enters it as it
//! starts, so every socket a task creates is a client socket).
//!
//! Every socket of phone `i` is bound to its interface `p<i>`
//! (SO_BINDTODEVICE) and to its address before it connects, so its packets
//! leave with phone `i`'s MAC and source address, and the gateway sees N
//! distinct devices.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::netns::Netns;
use crate::venue::Plan;

/// The most one phone waits for its POST's answer, or for upstream.
const PHONE_DEADLINE: Duration = Duration::from_secs(10);
/// How many phones load the splash at the same time during the warm-up.
pub const WARM_UP_AT_ONCE: usize = 64;

#[derive(Clone, Copy)]
pub struct Phone {
    pub index: usize,
    pub ip: Ipv4Addr,
}

impl Phone {
    pub fn all(plan: &Plan) -> Vec<Phone> {
        (0..plan.n).map(|index| Phone { index, ip: plan.phone_ip(index) }).collect()
    }

    /// A TCP socket that can only leave through this phone's interface.
    fn socket(&self) -> std::io::Result<TcpSocket> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        socket.bind_device(Some(Plan::phone_dev(self.index).as_bytes()))?;
        socket.bind(&SocketAddr::new(self.ip.into(), 0).into())?;
        socket.set_nonblocking(true)?;
        Ok(TcpSocket::from_std_stream(socket.into()))
    }

    async fn connect(&self, to: SocketAddr) -> std::io::Result<TcpStream> {
        self.socket()?.connect(to).await
    }

    /// One HTTP/1.1 request on a fresh connection; returns the status once
    /// the head has arrived, and the body too when `whole`.
    async fn request(&self, to: SocketAddr, head: &str, whole: bool) -> Result<u16> {
        let mut stream = self.connect(to).await.with_context(|| format!("connecting to {to}"))?;
        stream.set_nodelay(true)?;
        stream.write_all(head.as_bytes()).await?;
        let mut raw = Vec::with_capacity(1024);
        let mut buf = [0u8; 4096];
        loop {
            let read = stream.read(&mut buf).await?;
            raw.extend_from_slice(&buf[..read]);
            let head_done = raw.windows(4).any(|w| w == b"\r\n\r\n");
            if read == 0 || (head_done && !whole) {
                break;
            }
        }
        let text = String::from_utf8_lossy(&raw);
        text.split(' ').nth(1).and_then(|s| s.parse().ok()).with_context(|| format!("no status in {text:?}"))
    }
}

/// A runtime whose every thread is in the client namespace `cl`.
pub fn runtime(cl: &Netns) -> Result<Runtime> {
    let name = cl.name.clone();
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || crate::netns::enter(&name))
        .build()?)
}

/// What the warm-up saw: every phone loads the splash (as a real phone does
/// before it taps, which also fills both sides' ARP tables), then tries
/// upstream's 443, which must be refused.
pub struct WarmUp {
    pub splash: Vec<Duration>,
    pub held: usize,
    pub problems: Vec<String>,
}

pub fn warm_up(rt: &Runtime, plan: &Plan, phones: &[Phone]) -> WarmUp {
    let (portal, up) = (plan.portal(), plan.upstream_443());
    let head = format!("GET / HTTP/1.1\r\nHost: {portal}\r\nAccept-Language: vi\r\nConnection: close\r\n\r\n");
    let limit = Arc::new(Semaphore::new(WARM_UP_AT_ONCE));
    let results: Vec<Result<Duration>> = rt.block_on(async {
        let mut set = JoinSet::new();
        for phone in phones.iter().copied() {
            let (limit, head) = (limit.clone(), head.clone());
            set.spawn(async move {
                let _permit = limit.acquire().await?;
                let started = Instant::now();
                let status = timeout(PHONE_DEADLINE, phone.request(portal, &head, true)).await??;
                let took = started.elapsed();
                ensure!(status == 200, "phone {}: splash answered {status}", phone.index);
                match timeout(Duration::from_secs(2), phone.connect(up)).await {
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(took),
                    Ok(Ok(_)) => bail!("phone {} is not held: it reached {up} before accepting", phone.index),
                    Ok(Err(e)) => bail!("phone {} to {up}: wanted refused, got {e}", phone.index),
                    Err(_) => bail!("phone {} to {up}: no answer (dropped, not rejected)", phone.index),
                }
            });
        }
        set.join_all().await
    });
    let mut warm = WarmUp { splash: Vec::new(), held: 0, problems: Vec::new() };
    for result in results {
        match result {
            Ok(took) => {
                warm.splash.push(took);
                warm.held += 1;
            }
            Err(e) => warm.problems.push(format!("{e:#}")),
        }
    }
    warm
}

/// One phone's accept, as the phone saw it.
pub struct Accept {
    /// Just before the phone opened the connection that carries its POST.
    pub t0: Instant,
    /// The 303 arrived.
    pub answered: Option<Instant>,
    /// The first successful connect to upstream's 443.
    pub t1: Option<Instant>,
    /// Connects refused before that one.
    pub refused: u32,
    pub error: Option<String>,
}

/// All phones tap *Connect*, their POSTs spread evenly over `spread`; each
/// then connects to upstream's 443 until it gets through.
pub fn burst(rt: &Runtime, plan: &Plan, phones: &[Phone], spread: Duration) -> Vec<Accept> {
    let (portal, up) = (plan.portal(), plan.upstream_443());
    let body = "lang=vi";
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {portal}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let n = phones.len() as u32;
    rt.block_on(async {
        // Room to spawn every task before the first one is due.
        let start = Instant::now() + Duration::from_millis(200);
        let mut set = JoinSet::new();
        for phone in phones.iter().copied() {
            let head = head.clone();
            let due = start + spread * phone.index as u32 / n;
            set.spawn(async move {
                sleep_until(due).await;
                one(phone, portal, up, &head).await
            });
        }
        set.join_all().await
    })
}

async fn one(phone: Phone, portal: SocketAddr, up: SocketAddr, head: &str) -> Accept {
    let t0 = Instant::now();
    let deadline = t0 + PHONE_DEADLINE;
    let mut accept = Accept { t0, answered: None, t1: None, refused: 0, error: None };
    match timeout(PHONE_DEADLINE, phone.request(portal, head, false)).await {
        Ok(Ok(303)) => accept.answered = Some(Instant::now()),
        Ok(Ok(status)) => {
            accept.error = Some(format!("POST answered {status}"));
            return accept;
        }
        Ok(Err(e)) => {
            accept.error = Some(format!("POST: {e:#}"));
            return accept;
        }
        Err(_) => {
            accept.error = Some("POST: no answer".into());
            return accept;
        }
    }
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, phone.connect(up)).await {
            Ok(Ok(_stream)) => {
                accept.t1 = Some(Instant::now());
                return accept;
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused && !left.is_zero() => {
                accept.refused += 1;
                // The first retries at once, later ones a millisecond apart.
                if accept.refused > 3 {
                    sleep(Duration::from_millis(1)).await;
                }
            }
            Ok(Err(e)) => {
                accept.error = Some(format!("upstream: {e} after {} refusals", accept.refused));
                return accept;
            }
            Err(_) => {
                accept.error = Some(format!("upstream: not reached within {PHONE_DEADLINE:?}"));
                return accept;
            }
        }
    }
}
