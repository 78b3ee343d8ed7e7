//! The TLS listener: a real rustls client with a generated certificate gets
//! the pages and the RFC 8908 API over HTTP/2 and HTTP/1.1 by ALPN, and a
//! client that is not speaking TLS does not disturb anyone else.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portico::config::Config;
use portico::reload::ConfigSource;
use portico::server::{self, Control, Listeners};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

const HOST: &str = "portal.test";

struct Tls {
    addr: std::net::SocketAddr,
    connector: TlsConnector,
}

impl Tls {
    async fn connect(&self, alpn: &[u8]) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut connector = self.connector.clone();
        let mut config = (*connector.config().clone()).clone();
        config.alpn_protocols = vec![alpn.to_vec()];
        connector = TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        connector.connect(ServerName::try_from(HOST).unwrap(), tcp).await.unwrap()
    }
}

async fn start(dir: &Path) -> (Tls, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let cert = rcgen::generate_simple_self_signed(vec![HOST.to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();

    let portal = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tls.local_addr().unwrap();
    let text = format!(
        "[venue]\nname = \"TLS\"\n[portal]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://{HOST}/\"\n\
         [tls]\nlisten = \"127.0.0.1:0\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\
         [firewall]\nbackend = \"none\"\n[state]\ndir = \"state\"\n[admin]\nlisten = \"127.0.0.1:0\"\n"
    );
    let config = Config::from_toml(&text, dir).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let (_reload, reloads) = tokio::sync::mpsc::channel(1);
    let control = Control { shutdown, reloads, source: ConfigSource::Demo };
    let task = tokio::spawn(server::run(config, Listeners { portal, tls: Some(tls), admin }, control));

    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(cert.cert.der().to_vec())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Tls { addr, connector: TlsConnector::from(Arc::new(config)) }, stop, task)
}

#[tokio::test]
async fn pages_and_api_over_h2_and_http1() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, stop, task) = start(dir.path()).await;

    // HTTP/2, negotiated by ALPN.
    let stream = tls.connect(b"h2").await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("https://{HOST}/api/captive")).body(Empty::<Bytes>::new()).unwrap();
    let res = h2.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/captive+json");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["user-portal-url"], format!("https://{HOST}/"));

    // HTTP/1.1 over TLS, and the splash.
    let stream = tls.connect(b"http/1.1").await;
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get("/").header("host", HOST).body(Empty::<Bytes>::new()).unwrap();
    let res = h1.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("strict-transport-security").is_none(), "no HSTS on the portal host");
    let html = res.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&html).contains("Bluezone"));

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn plain_text_on_the_tls_port_is_dropped_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, stop, task) = start(dir.path()).await;
    let mut plain = TcpStream::connect(tls.addr).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: portal.test\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    // The server closes (possibly after a TLS alert); it must not hang.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), plain.read_to_end(&mut buf)).await.unwrap();
    assert!(!String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"));

    let stream = tls.connect(b"http/1.1").await;
    assert!(stream.get_ref().1.alpn_protocol() == Some(&b"http/1.1"[..]));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
