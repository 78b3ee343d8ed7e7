//! The listeners: plain HTTP (redirected port-80 traffic and the pages), TLS
//! (the pages and the RFC 8908 API over https) and admin (loopback).
//!
//! One accept loop serves all three, shaped like mini-redis: a connection
//! permit is taken *before* `accept`, so at most `limits.max_connections` are open
//! per listener and the kernel's backlog absorbs the rest; accept errors
//! (such as running out of file descriptors) back off instead of spinning;
//! each connection runs in its own task, where the TLS handshake happens
//! under a timeout and an error is logged and stays there. hyper is given a
//! timer, without which its header-read timeout silently never fires. Every
//! connection is watched by one `GracefulShutdown`, so a stop drains them.
//!
//! A connection the firewall redirected here (its original destination,
//! from conntrack, is not the listener) is tracked in [`Intercepts`] for
//! its device and closed when that device is granted.

mod admin;
mod alerting;
mod bearer;
mod body;
mod captive;
mod first_bytes;
pub mod guard;
pub mod intercepts;
mod monitoring;
mod router;
pub mod tls;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use arc_swap::ArcSwap;

use crate::campaign::Campaign;
use crate::client::{self, Client};
use crate::config::{AdminToken, Config, Limits};
use crate::firewall::Gate;
use crate::metrics::Metrics;
use crate::neighbours::Neighbours;
use crate::pages::Pages;
use crate::sessions::Sessions;

pub use body::Body;
pub use guard::{Guard, ProxiedSlot, Rejection};
pub use intercepts::Intercepts;
pub use router::Conn;

/// Everything a request handler reads: what a reload replaces, the grant
/// table, the firewall and the counters.
pub struct Portal {
    /// Swapped whole by a reload (SIGHUP). A request loads it once and uses
    /// that one version throughout, so it never mixes an old page with a
    /// new config; loading is a lock-free pointer read.
    pub live: ArcSwap<Live>,
    pub sessions: Sessions,
    /// The same gate the grant table drives; read for `/healthz`.
    pub gate: Gate,
    pub metrics: Arc<Metrics>,
    /// Bound at start-up, like the listeners they protect.
    pub limits: Limits,
    pub guard: Guard,
    /// Who is behind an address; see [`crate::client`].
    pub neighbours: Neighbours,
    pub intercepts: Arc<Intercepts>,
    /// The daily counts the splash and the accept add to.
    pub counts: crate::counts::Counts,
    /// Held by whatever replaces `live` from what it holds (a reload, an
    /// alert set or cleared), so that one change never undoes another.
    pub changing: tokio::sync::Mutex<()>,
}

impl Portal {
    /// The client's address for a request from `peer` with these headers:
    /// the one place requests are told apart (see [`crate::client`]).
    pub fn address_of(&self, peer: IpAddr, headers: &hyper::HeaderMap) -> IpAddr {
        client::address(peer, &self.limits.trusted_proxies, headers)
    }

    /// The client at that address, with its MAC. Asked only where the
    /// device matters (a grant is looked up or made), not for every page:
    /// a lookup that misses may read the kernel's table.
    pub fn client_at(&self, ip: IpAddr) -> Client {
        Client::at(ip, &self.neighbours)
    }
}

/// The reloadable part: the config, the campaigns, every page rendered from
/// them, the TLS certificate and the admin token.
pub struct Live {
    pub config: Config,
    /// The default campaign (`portal.campaign`): shown when no scheduled
    /// one is on the air.
    pub campaign: Campaign,
    pub pages: Pages,
    /// One per `config.campaigns` entry, in its order; `None` for one that
    /// cannot be shown yet (a bundle never fetched).
    pub scheduled: Vec<Option<OnAir>>,
    /// The emergency notice in force, whose pages replace the campaigns'.
    pub alert: Option<crate::alert::Alert>,
    pub tls: Option<TlsAcceptor>,
    /// When the certificate of `tls` expires, for the metrics.
    pub tls_expiry: Option<SystemTime>,
    /// Read from `admin.token_file`, so a reload rotates it.
    pub admin_token: Option<AdminToken>,
}

/// A scheduled campaign ready to serve: loaded, checked, every page
/// rendered.
pub struct OnAir {
    pub campaign: Campaign,
    pub pages: Pages,
}

impl Live {
    /// The campaign and its pages for the scheduled entry `pick`, or the
    /// default for `None` (see [`crate::schedule::pick`]).
    pub fn showing(&self, pick: Option<usize>) -> (&Campaign, &Pages) {
        match pick.and_then(|i| self.scheduled.get(i)?.as_ref()) {
            Some(on_air) => (&on_air.campaign, &on_air.pages),
            None => (&self.campaign, &self.pages),
        }
    }

    /// Whether an alert has opened the gate for every device.
    pub fn gate_open(&self) -> bool {
        self.alert.as_ref().is_some_and(|a| a.open_gate)
    }

    /// Whether scheduled entry `i` can be shown.
    pub fn available(&self, i: usize) -> bool {
        self.scheduled.get(i).is_some_and(Option::is_some)
    }

    /// The names of the campaigns on the air on `day`: the scheduled ones
    /// that can be shown, or else the default.
    pub fn on_air(&self, day: crate::counts::Day) -> Vec<&str> {
        let kind = self.config.venue.kind;
        let names: Vec<&str> = (self.config.campaigns.iter().zip(&self.scheduled))
            .filter(|(entry, _)| crate::schedule::on_air(entry, kind, day))
            .filter_map(|(_, on_air)| Some(on_air.as_ref()?.campaign.name.as_str()))
            .collect();
        if names.is_empty() { vec![self.campaign.name.as_str()] } else { names }
    }
}

/// Which handler a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Portal,
    Admin,
}

/// Accepts connections until `stop` turns true, then returns; the caller
/// drains the watched connections through `graceful`.
pub async fn serve(
    listener: TcpListener,
    role: Role,
    tls: bool,
    portal: Arc<Portal>,
    graceful: &GracefulShutdown,
    mut stop: watch::Receiver<bool>,
) {
    let limits = &portal.limits;
    let limit = Arc::new(Semaphore::new(limits.max_connections));
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    // Over TLS the protocol is the one ALPN chose, not sniffed from the
    // first bytes: sniffing is a read without a deadline, so a client that
    // finishes the handshake and then says nothing would hold its slot for
    // ever. HTTP/1.1 then has the header-read timeout; HTTP/2 pings an idle
    // peer and drops one that stops answering.
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(Some(limits.header_read_timeout))
        .keep_alive_timeout(limits.header_read_timeout);
    // Shared by every connection rather than copied into each.
    let (h1, h2) = (Arc::new(h1), Arc::new(h2));
    let handshake_timeout = limits.tls_handshake_timeout;
    let read_timeout = limits.header_read_timeout;

    // Set once on the listener, which every accepted socket inherits (a
    // system call saved per connection): answers go out as written.
    let _ = socket2::SockRef::from(&listener).set_tcp_nodelay(true);
    let bound = listener.local_addr().ok();
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = stopped(&mut stop) => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: wait for connections to close
                    // rather than spin on a failing accept.
                    tracing::warn!(error = %e, "accept failed; backing off");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => return,
        };
        // Bound to one address, every connection arrives on it: no system
        // call to ask.
        let local = match bound {
            Some(addr) if !addr.ip().is_unspecified() => addr,
            _ => match stream.local_addr() {
                Ok(local) => local,
                Err(_) => continue,
            },
        };
        // The admin listener is not limited per client (it is on loopback,
        // or its token's attempts are counted per address: see `bearer`);
        // a trusted proxy's connections are counted per request's client.
        let proxied = role == Role::Portal && client::is_proxy(peer.ip(), &limits.trusted_proxies);
        let slot = match role {
            Role::Admin => None,
            Role::Portal if proxied => None,
            Role::Portal => match portal.guard.connect(peer.ip().to_canonical()) {
                Some(slot) => Some(slot),
                None => {
                    portal.metrics.rejected(Rejection::ClientConnections);
                    continue;
                }
            },
        };
        let intercepted = (role == Role::Portal && !tls && redirected(&stream, local))
            .then(|| portal.intercepts.track(Client::at(peer.ip(), &portal.neighbours).device()));
        if role == Role::Portal {
            portal.metrics.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let conn = Conn { peer, local, tls, proxy_slot: proxied.then(|| Arc::new(ProxiedSlot::default())) };
        let metrics = portal.metrics.clone();
        // The certificate in force when the connection arrives (a reload may
        // have renewed it); connections already open keep theirs.
        let acceptor = if tls { portal.live.load().tls.clone() } else { None };
        let portal = portal.clone();
        let svc = service_fn(move |req| {
            let portal = portal.clone();
            let conn = conn.clone();
            async move {
                let res = match role {
                    Role::Portal => router::handle(&portal, conn, req).await,
                    Role::Admin => admin::handle(&portal, conn, req).await,
                };
                Ok::<_, Infallible>(res)
            }
        });
        let watcher = graceful.watcher();
        let (h1, h2) = (h1.clone(), h2.clone());
        let connection = async move {
            let _permits = (permit, slot);
            let result = match acceptor {
                None if tls => Ok(()),
                None => {
                    let serving = watcher.watch(h1.serve_connection(TokioIo::new(stream), svc));
                    match intercepted {
                        // Dropping the connection closes it: the device was
                        // granted, and its next request must open a new one.
                        Some(intercepted) => tokio::select! {
                            result = serving => result,
                            () = intercepted.closed() => {
                                tracing::debug!(%peer, "closed a connection intercepted before the grant");
                                Ok(())
                            }
                        },
                        None => serving.await,
                    }
                }
                // Boxed: TLS and HTTP/2 state is kilobytes, and most
                // connections (every phone's probe) are plain HTTP/1.1, whose
                // task is then a few hundred bytes to make and move.
                Some(acceptor) => {
                    Box::pin(async move {
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
                                match first_bytes::wait_for_first_bytes(stream, read_timeout).await {
                                    Some(stream) => watcher.watch(h2.serve_connection(TokioIo::new(stream), svc)).await,
                                    None => Ok(()),
                                }
                            }
                            Ok(Ok(stream)) => watcher.watch(h1.serve_connection(TokioIo::new(stream), svc)).await,
                            Ok(Err(e)) => {
                                metrics.tls_handshake_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                Ok(())
                            }
                            Err(_) => {
                                metrics.tls_handshake_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                tracing::debug!(%peer, "TLS handshake timed out");
                                Ok(())
                            }
                        }
                    })
                    .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        };
        tokio::spawn(connection);
    }
}

/// Whether the firewall redirected this connection here on its way to
/// another address: conntrack's original destination differs from the
/// listener's. Without conntrack (no firewall, no NAT) it is not.
fn redirected(stream: &tokio::net::TcpStream, local: SocketAddr) -> bool {
    let socket = socket2::SockRef::from(stream);
    let local = SocketAddr::new(local.ip().to_canonical(), local.port());
    let original = match local {
        SocketAddr::V4(_) => socket.original_dst_v4(),
        SocketAddr::V6(_) => socket.original_dst_v6(),
    };
    match original.ok().and_then(|addr| addr.as_socket()) {
        Some(original) => SocketAddr::new(original.ip().to_canonical(), original.port()) != local,
        None => false,
    }
}

/// Resolves once a stop has been asked for. (The guard `wait_for` returns is
/// dropped here, before any await, so the accept loop stays `Send`.)
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
