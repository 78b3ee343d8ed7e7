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
//! from conntrack, is not the listener) is tracked in [`crate::intercepts::Intercepts`] for
//! its device and closed when that device is granted.

mod admin;
mod alerting;
mod bearer;
mod body;
mod captive;
mod first_bytes;
mod monitoring;
mod router;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::client::{self, Client};
use crate::guard::ProxiedSlot;
use crate::metrics::Rejection;
use crate::portal::{Live, Portal};

pub use body::Body;
pub use router::Conn;

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
