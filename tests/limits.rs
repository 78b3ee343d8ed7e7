//! What a stranger can cost is bounded, and the next traveller is served:
//! request rate per client (429 with Retry-After), open connections per
//! client, request head size (431), accept form size (413). `127.0.0.2` is a
//! second client on loopback.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::TestPortal;
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OTHER: &str = "127.0.0.2";

async fn metrics(portal: &TestPortal) -> String {
    common::send(portal.admin, "GET", "127.0.0.1", "/metrics", &[], Default::default()).await.text()
}

#[tokio::test]
async fn a_client_past_its_rate_gets_429_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::start_with_limits(dir.path(), "", "per_client_rps = 1\nper_client_burst = 5").await;
    let probe = || portal.get("connectivitycheck.gstatic.com", "/generate_204");
    for i in 0..5 {
        assert_eq!(probe().await.status, StatusCode::FOUND, "request {i} is within the burst");
    }
    let limited = probe().await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.header("retry-after").parse().expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry), "Retry-After {retry}");

    let other: IpAddr = OTHER.parse().unwrap();
    let host = format!("127.0.0.1:{}", portal.addr.port());
    let r = common::send_from(other, portal.addr, "GET", &host, "/", &[], Default::default()).await;
    assert_eq!(r.status, StatusCode::OK, "another traveller is still served");
    assert!(metrics(&portal).await.contains("reason=\"client_rate\"} 1"));
    portal.stop().await;
}

#[tokio::test]
async fn a_client_holding_too_many_connections_is_refused_more_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::start_with_limits(dir.path(), "", "per_client_connections = 2\nper_client_rps = 0").await;
    // Two idle connections from one client: its whole allowance.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(tokio::net::TcpStream::connect(portal.addr).await.unwrap());
    }
    // The third is closed without a word.
    let mut third = tokio::net::TcpStream::connect(portal.addr).await.unwrap();
    let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut buf)).await.expect("closed promptly");
    assert!(
        read.is_err() || buf.is_empty(),
        "no answer on the refused connection: {:?}",
        String::from_utf8_lossy(&buf)
    );

    let other: IpAddr = OTHER.parse().unwrap();
    let host = format!("127.0.0.1:{}", portal.addr.port());
    let r = common::send_from(other, portal.addr, "GET", &host, "/", &[], Default::default()).await;
    assert_eq!(r.status, StatusCode::OK, "another client is served");
    drop(held);
    assert!(metrics(&portal).await.contains("reason=\"client_connections\"} 1"));
    portal.stop().await;
}

/// Issue 8: behind a trusted proxy the per-client connection cap counts
/// the real client each connection carries, not the proxy (which would
/// otherwise be capped like one phone).
#[tokio::test]
async fn behind_a_trusted_proxy_the_connection_cap_counts_the_real_client() {
    use http_body_util::Empty;
    let dir = tempfile::tempdir().unwrap();
    let limits = "per_client_connections = 2\nper_client_rps = 0\ntrusted_proxies = [\"127.0.0.1\"]";
    let portal = TestPortal::start_with_limits(dir.path(), "", limits).await;
    let host = format!("127.0.0.1:{}", portal.addr.port());
    // Keep-alive connections from the proxy, each carrying one client's request.
    let mut held = Vec::new();
    let through = |client: &'static str| {
        let (addr, host) = (portal.addr, host.clone());
        async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let io = hyper_util::rt::TokioIo::new(stream);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            let req = hyper::Request::get("/")
                .header("host", host)
                .header("x-forwarded-for", client)
                .body(Empty::<bytes::Bytes>::new())
                .unwrap();
            let status = sender.send_request(req).await.unwrap().status();
            (status, sender)
        }
    };
    for _ in 0..2 {
        let (status, sender) = through("10.9.9.1").await;
        assert_eq!(status, StatusCode::OK);
        held.push(sender);
    }
    let (status, _) = through("10.9.9.1").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "a third connection for the same client");
    for client in ["10.9.9.2", "10.9.9.3"] {
        let (status, sender) = through(client).await;
        assert_eq!(status, StatusCode::OK, "{client}: the proxy itself is not capped");
        held.push(sender);
    }
    drop(held);
    portal.stop().await;
}

#[tokio::test]
async fn oversized_heads_get_431_and_oversized_forms_413() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::start(dir.path()).await;
    let mut stream = tokio::net::TcpStream::connect(portal.addr).await.unwrap();
    let huge = "a".repeat(64 * 1024);
    let head = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Junk: {huge}\r\n\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let mut buf = vec![0; 256];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 431"), "{}", String::from_utf8_lossy(&buf[..n]));

    let host = format!("127.0.0.1:{}", portal.addr.port());
    let form = bytes::Bytes::from(vec![b'x'; 8 * 1024]);
    let r = common::send(portal.addr, "POST", &host, "/", &[], form).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(portal.page("/", &[]).await.status, StatusCode::OK, "still serving");
    portal.stop().await;
}

#[test]
fn limits_are_validated_with_their_keys() {
    let text = common::config_text(8080, std::path::Path::new("/tmp/x"), "", "per_client_rps = -1");
    let e = portico::config::Config::from_toml(&text, std::path::Path::new(".")).unwrap_err();
    assert!(e.iter().any(|p| p.key.contains("per_client_rps")), "{e:?}");
    let text = common::config_text(
        8080,
        std::path::Path::new("/tmp/x"),
        "",
        "max_header_bytes = 100\nheader_read_timeout = \"1h\"\ntrusted_proxies = [\"nope\"]",
    );
    let e = portico::config::Config::from_toml(&text, std::path::Path::new(".")).unwrap_err();
    let keys: Vec<&str> = e.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["limits.max_header_bytes", "limits.header_read_timeout", "limits.trusted_proxies"], "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_of_hundreds_of_connections_does_not_stop_a_polite_client() {
    let dir = tempfile::tempdir().unwrap();
    let portal =
        TestPortal::start_with_limits(dir.path(), "", "header_read_timeout = \"1s\"\nper_client_rps = 0").await;
    // 300 connections from 10 addresses, each sending its head a byte at a
    // time and never finishing it.
    let mut attackers = Vec::new();
    for i in 0..300u32 {
        let from: IpAddr = format!("127.0.1.{}", 1 + i % 10).parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::new(from, 0)).unwrap();
        let Ok(mut stream) = socket.connect(portal.addr).await else { continue };
        attackers.push(tokio::spawn(async move {
            for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: " {
                if stream.write_all(&[*byte]).await.is_err() {
                    return true; // closed by the server
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // The head is never finished; the server must hang up.
            let mut buf = [0u8; 64];
            matches!(tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
        }));
    }
    // Meanwhile a traveller's phone is served, every time.
    let other: IpAddr = OTHER.parse().unwrap();
    let host = format!("127.0.0.1:{}", portal.addr.port());
    for _ in 0..20 {
        let r = common::send_from(other, portal.addr, "GET", &host, "/", &[], Default::default()).await;
        assert_eq!(r.status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut closed = 0;
    for a in attackers {
        closed += usize::from(a.await.unwrap());
    }
    assert_eq!(closed, 300, "every slow connection was closed or refused by the server");
    let m = metrics(&portal).await;
    assert!(m.contains("reason=\"client_connections\"} 0"), "30 per address is under the default cap of 32: {m}");
    portal.stop().await;
}

#[tokio::test]
async fn a_form_that_never_arrives_gets_408_within_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let limits = format!("{}\nheader_read_timeout = \"1s\"", common::NO_RATE_LIMITS);
    let portal = TestPortal::start_with_limits(dir.path(), "", &limits).await;
    let mut stream = tokio::net::TcpStream::connect(portal.addr).await.unwrap();
    let head = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nlang=";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(8), stream.read_to_end(&mut answer))
        .await
        .expect("answered and closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(metrics(&portal).await.contains("reason=\"body_timeout\"} 1"));
    let api = portal.page("/api/captive", &[]).await.text();
    assert!(api.contains("\"captive\":true"), "an unfinished form grants nothing");
    portal.stop().await;
}
