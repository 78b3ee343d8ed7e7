//! Faults lose no grant: `kill -9` at random moments while phones accept
//! in a loop, and a full disk (the grants are served from memory, `/healthz`
//! says degraded, and they reach the disk once it has room again).

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::TestPortal;
use hyper::StatusCode;

fn config(state: &Path) -> String {
    format!(
        "[venue]\nname = \"Faults\"\n[portal]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1/\"\n\
         [firewall]\nbackend = \"none\"\n[state]\ndir = \"{}\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [limits]\nper_client_rps = 0\nglobal_rps = 0\n",
        state.display()
    )
}

/// One HTTP/1.1 exchange from `from` (any 127/8 address is this machine);
/// returns the status, or `None` if the server went away mid-way.
fn request(from: IpAddr, to: SocketAddr, text: &str) -> Option<(u16, String)> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    socket.bind(&SocketAddr::new(from, 0).into()).ok()?;
    socket.connect_timeout(&to.into(), Duration::from_secs(2)).ok()?;
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(text.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    Some((status, answer))
}

fn accept_from(ip: IpAddr, portal: SocketAddr) -> bool {
    let form = "lang=vi";
    let text = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    matches!(request(ip, portal, &text), Some((303, _)))
}

/// A small deterministic generator for the kill moments (no dependency).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_grant() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portico.toml");
    std::fs::write(&file, config(&dir.path().join("state"))).unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::<IpAddr>::new()));
    let mut seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    println!("seed {seed}");
    let mut next_ip = 0x7f00_0a00u32; // 127.0.10.0 onwards: one address per phone
    for round in 0..6 {
        let (mut child, portal, _) = common::start_binary(&file);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let phones: Vec<_> = (0..4)
            .map(|_| {
                let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
                let first = next_ip;
                next_ip += 1000;
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        let ip = IpAddr::V4(Ipv4Addr::from(first + i));
                        if accept_from(ip, portal) {
                            acknowledged.lock().unwrap().push(ip);
                        }
                    }
                })
            })
            .collect();
        let wait = Duration::from_millis(50 + next(&mut seed) % 400);
        std::thread::sleep(wait);
        child.kill().unwrap(); // SIGKILL: no drain, no flush
        child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for p in phones {
            p.join().unwrap();
        }
        println!(
            "round {round}: killed after {wait:?}; {} grants acknowledged so far",
            acknowledged.lock().unwrap().len()
        );
    }

    let (mut child, _, admin) = common::start_binary(&file);
    let (status, answer) = request(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        admin,
        "GET /clients HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 200);
    let acknowledged = acknowledged.lock().unwrap();
    assert!(acknowledged.len() > 20, "the test made too few grants to mean anything: {}", acknowledged.len());
    let missing: Vec<&IpAddr> = acknowledged.iter().filter(|ip| !answer.contains(&format!("\"{ip}\""))).collect();
    assert!(missing.is_empty(), "{} of {} acknowledged grants lost: {missing:?}", missing.len(), acknowledged.len());
}

#[tokio::test]
async fn a_full_disk_degrades_to_memory_and_catches_up_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let Some((_fs, portal)) = TestPortal::on_full_disk(&state, "disk-full").await else { return };
    assert_eq!(portal.accept().await.status, StatusCode::SEE_OTHER, "the phone still gets online");
    let api = portal.page("/api/captive", &[]).await.text();
    assert!(api.contains("\"captive\":false"), "{api}");
    let health = portal.admin_get("/healthz").await.text();
    assert!(health.starts_with("degraded"), "{health}");
    let metrics = portal.admin_get("/metrics").await.text();
    assert!(!metrics.contains("portico_store_errors_total 0\n"), "the failure is counted: {metrics}");

    // Space comes back: the grant is written without anyone doing anything.
    std::fs::remove_file(state.join("junk")).unwrap();
    assert_eq!(portal.healthy_within(Duration::from_secs(20)).await.text(), "ok\n");
    portal.stop().await;

    let portal = TestPortal::start(&state).await;
    let api = portal.page("/api/captive", &[]).await.text();
    assert!(api.contains("\"captive\":false"), "the grant reached the disk: {api}");
    portal.stop().await;
}
