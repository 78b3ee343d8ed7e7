//! What the tests share: a whole Portico in-process on pre-bound loopback
//! ports ([`TestPortal`], in `portal.rs`), a minimal HTTP/1.1 client that
//! sends exactly the Host header a phone's probe would, the built binary
//! started and waited for, certificates, and a full disk.

#![allow(dead_code)] // each test binary uses a different part of this

mod binary;
mod form;
mod portal;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

// As with dead code: what one test binary leaves unused is not a stray import.
#[allow(unused_imports)]
pub use binary::{Started, lines, spawn_binary, start_binary};
#[allow(unused_imports)]
pub use form::{Form, encode};
#[allow(unused_imports)]
pub use portal::{NO_RATE_LIMITS, TestPortal, config_text};

/// A copy of the built-in campaign's folder in `dir`, its name changed to
/// `name`: a province's own campaign.
pub fn campaign_folder(dir: &Path, name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/campaigns/bluezone");
    let campaign = dir.join(name.replace(' ', "-"));
    for sub in ["", "locales", "images"] {
        std::fs::create_dir_all(campaign.join(sub)).unwrap();
        for entry in std::fs::read_dir(source.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, campaign.join(sub).join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    let toml = campaign.join("campaign.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replacen("name = \"Bluezone\"", &format!("name = {name:?}"), 1);
    std::fs::write(&toml, text).unwrap();
    campaign
}

/// A self-signed certificate for `host`, good until `not_after` (year,
/// month, day) if given.
pub fn certificate(host: &str, not_after: Option<(i32, u8, u8)>) -> rcgen::CertifiedKey<rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
    if let Some((year, month, day)) = not_after {
        params.not_after = rcgen::date_time_ymd(year, month, day);
    }
    let signing_key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&signing_key).unwrap();
    rcgen::CertifiedKey { cert, signing_key }
}

/// Writes `cert` as `dir/cert.pem` and its key as `dir/key.pem`; returns
/// the two paths, as [`Builder::tls`] takes them.
pub fn write_certificate(dir: &Path, cert: &rcgen::CertifiedKey<rcgen::KeyPair>) -> (PathBuf, PathBuf) {
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    (cert_file, key_file)
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("utf-8 body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }
}

/// One request on a fresh connection, with exactly these headers.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    send_from("127.0.0.1".parse().unwrap(), addr, method, host, path, headers, body).await
}

/// Like [`send`], from another loopback address (`127.0.0.2` is a second
/// client as far as Portico can tell).
pub async fn send_from(
    from: std::net::IpAddr,
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path).header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = sender.send_request(req.body(Full::new(body)).unwrap()).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply { status: parts.status, headers: parts.headers, body }
}

/// A 64 KiB tmpfs mounted over `dir`, unmounted on drop, for a test of a
/// full disk: only root may mount one; elsewhere the test prints SKIPPED
/// with the reason (and under CI, where it must run, fails). `what` names
/// the test in that line.
pub fn tiny_filesystem(dir: &Path, what: &str) -> Option<TinyFs> {
    let why = if !std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n")) {
        "not root"
    } else if !std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "portico-test"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
    {
        "cannot mount a tmpfs"
    } else {
        return Some(TinyFs(dir.to_owned()));
    };
    skip(&format!("{what} test: {why}"));
    None
}

/// Says `SKIPPED: why` and lets the test pass, for a test this machine
/// cannot run; except under `CI=true`, where every test must run, and the
/// skip fails it.
pub fn skip(why: &str) {
    println!("SKIPPED: {why}");
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{why}: CI must run this test");
}

pub struct TinyFs(std::path::PathBuf);

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system `dir` is on to the last byte, with `dir/junk`
/// (remove it to give the space back).
pub fn fill(dir: &Path) {
    use std::io::Write as _;
    let mut file = std::fs::File::create(dir.join("junk")).unwrap();
    while file.write_all(&[0u8; 1024]).is_ok() {}
    let _ = file.write_all(&[0u8; 1]);
}
