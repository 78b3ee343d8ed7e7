//! A whole Portico in-process on pre-bound loopback ports, and a minimal
//! HTTP/1.1 client that sends exactly the Host header a phone's probe would.

#![allow(dead_code)] // each test binary uses a different part of this

mod form;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use portico::config::Config;
use portico::firewall::NoFirewall;
use portico::neighbours::Neighbours;
use portico::reload::ConfigSource;
use portico::server::{self, Control, Gateway, Listeners};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

pub use form::Form;
use tokio::task::JoinHandle;

pub struct TestPortal {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub state: PathBuf,
    /// The config file the server was started with, which a reload re-reads.
    pub config_file: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    reload: mpsc::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Tests send many requests from one address; rate limits are tested on
/// their own (tests/limits.rs), so elsewhere they are off.
pub const NO_RATE_LIMITS: &str = "per_client_rps = 0\nglobal_rps = 0";

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

/// A config for a portal on `port`, with extra TOML lines appended to
/// `[portal]` and `[limits]`.
pub fn config_text(port: u16, state: &Path, portal_extra: &str, limits: &str) -> String {
    format!(
        r#"[venue]
name = "Ga Thử Nghiệm"
kind = "station"

[portal]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}/"
{portal_extra}

[firewall]
backend = "none"

[state]
dir = "{}"

[admin]
listen = "127.0.0.1:0"

[limits]
{limits}
"#,
        state.display()
    )
}

/// How to start a [`TestPortal`]: `TestPortal::builder(dir).portal("…")
/// .limits("…").neighbours(table).start()`.
pub struct Builder {
    state: PathBuf,
    portal_extra: String,
    limits: String,
    tables: String,
    neighbours: Neighbours,
}

impl Builder {
    /// Extra TOML lines for `[portal]`.
    pub fn portal(mut self, lines: &str) -> Builder {
        self.portal_extra = lines.to_owned();
        self
    }

    /// The TOML lines of `[limits]` (rate limits are off unless given).
    pub fn limits(mut self, lines: &str) -> Builder {
        self.limits = lines.to_owned();
        self
    }

    /// Tables appended to the config (`[[campaigns]]`).
    pub fn tables(mut self, text: &str) -> Builder {
        self.tables = text.to_owned();
        self
    }

    /// The neighbour table the portal sees (none: every client is its
    /// address, as on loopback).
    pub fn neighbours(mut self, table: Neighbours) -> Builder {
        self.neighbours = table;
        self
    }

    pub async fn start(self) -> TestPortal {
        // `RUST_LOG=portico=debug cargo test -- --nocapture` shows the server's log.
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let targets =
            std::env::var("RUST_LOG").ok().and_then(|v| v.parse::<tracing_subscriber::filter::Targets>().ok());
        let _ = tracing_subscriber::registry()
            .with(
                targets
                    .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::ERROR)),
            )
            .with(tracing_subscriber::fmt::layer().with_test_writer())
            .try_init();
        let state = self.state;
        let portal = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = portal.local_addr().unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let text = config_text(addr.port(), &state, &self.portal_extra, &self.limits) + "\n" + &self.tables;
        std::fs::create_dir_all(&state).unwrap();
        let config_file = state.join("portico.toml");
        std::fs::write(&config_file, &text).unwrap();
        let config = Config::load(&config_file).expect("test config is valid");
        let (stop, stopped) = oneshot::channel::<()>();
        let (reload, reloads) = mpsc::channel(4);
        let listeners = Listeners { portal, tls: None, admin };
        let shutdown = async {
            let _ = stopped.await;
        };
        let source = ConfigSource::File(config_file.clone());
        let gateway = Gateway { firewall: Arc::new(NoFirewall), neighbours: self.neighbours };
        let task = tokio::spawn(server::run_on(config, listeners, Control { shutdown, reloads, source }, gateway));
        let portal = TestPortal { addr, admin: admin_addr, state, config_file, stop: Some(stop), reload, task };
        // Serving begins after start-up reads the campaign and the store; a
        // test that edits those files must not race it.
        let health = send(admin_addr, "GET", "127.0.0.1", "/healthz", &[], Bytes::new()).await;
        assert_eq!(health.status, StatusCode::OK, "the server did not start");
        portal
    }
}

impl TestPortal {
    pub fn builder(state: &Path) -> Builder {
        Builder {
            state: state.to_owned(),
            portal_extra: "session = \"12h\"".into(),
            limits: NO_RATE_LIMITS.into(),
            tables: String::new(),
            neighbours: Neighbours::none(),
        }
    }

    pub async fn start(state: &Path) -> TestPortal {
        Self::builder(state).start().await
    }

    pub async fn start_with(state: &Path, portal_extra: &str) -> TestPortal {
        Self::builder(state).portal(portal_extra).start().await
    }

    pub async fn start_with_limits(state: &Path, portal_extra: &str, limits: &str) -> TestPortal {
        Self::builder(state).portal(portal_extra).limits(limits).start().await
    }

    /// What SIGHUP does: re-read the config file and campaign.
    pub async fn reload(&self) {
        self.reload.send(()).await.unwrap();
    }

    /// Stops the server the way SIGTERM does and waits for it to finish.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.addr.port())
    }

    pub async fn get(&self, host: &str, path: &str) -> Reply {
        send(self.addr, "GET", host, path, &[], Bytes::new()).await
    }

    /// A request for the portal's own pages.
    pub async fn page(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let host = format!("127.0.0.1:{}", self.addr.port());
        send(self.addr, "GET", &host, path, headers, Bytes::new()).await
    }

    /// Loads the splash, finds its form as a browser would and submits it.
    pub async fn accept(&self) -> Reply {
        self.accept_from("127.0.0.1".parse().unwrap()).await
    }

    /// [`Self::accept`] from another loopback address.
    pub async fn accept_from(&self, from: std::net::IpAddr) -> Reply {
        let splash = self.page("/", &[]).await;
        let form = Form::parse(&splash.text()).expect("the splash has a post form");
        let host = format!("127.0.0.1:{}", self.addr.port());
        send_from(
            from,
            self.addr,
            "POST",
            &host,
            &form.action,
            &[("content-type", "application/x-www-form-urlencoded")],
            Bytes::from(form.body()),
        )
        .await
    }

    /// `GET path` with this `Host` from another loopback address.
    pub async fn get_from(&self, from: std::net::IpAddr, host: &str, path: &str) -> Reply {
        send_from(from, self.addr, "GET", host, path, &[], Bytes::new()).await
    }

    /// The grants as `portico clients list --json` prints them.
    pub async fn clients(&self) -> serde_json::Value {
        let reply = send(self.admin, "GET", "127.0.0.1", "/clients", &[], Bytes::new()).await;
        assert_eq!(reply.status, StatusCode::OK);
        serde_json::from_slice(&reply.body).expect("clients JSON")
    }
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
    println!("SKIPPED {what} test: {why}");
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "under CI the {what} test must run ({why})");
    None
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

/// Starts the built binary on `config_file` and waits for its start-up
/// line; returns it with its portal and admin addresses, read from that
/// line. Its log keeps being drained, so it never blocks on a full pipe.
pub fn start_binary(config_file: &Path) -> (std::process::Child, std::net::SocketAddr, std::net::SocketAddr) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["run", "--config"])
        .arg(config_file)
        .env("RUST_LOG", "portico=info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("Portico serving") {
        line.clear();
    }
    let addr = |key: &str| -> std::net::SocketAddr {
        line.split(&format!("{key}=")).nth(1).and_then(|s| s.split_whitespace().next()).unwrap().parse().unwrap()
    };
    let (portal, admin) = (addr("portal"), addr("admin"));
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, portal, admin)
}
