//! A whole Portico in-process on pre-bound loopback ports: [`TestPortal`],
//! started by its [`Builder`], which also writes the config text. Every
//! test that runs the server in-process starts it here, so a change to
//! `server::run_on` or to the config is made in one place.
//!
//! What must stay true: the listeners are bound before the server starts
//! (no fixed ports, no races), and `start` returns only once `/healthz`
//! answers, so a test never races start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use portico::config::Config;
use portico::firewall::{Firewall, NoFirewall};
use portico::neighbours::Neighbours;
use portico::reload::ConfigSource;
use portico::server::{self, Control, Gateway, Listeners};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Form, Reply, send, send_from};

pub struct TestPortal {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The TLS listener, when the builder was given a certificate.
    pub tls_addr: Option<SocketAddr>,
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

/// The `[venue]` of a test config unless the builder is given another.
const VENUE: &str = "name = \"Ga Thử Nghiệm\"\nkind = \"station\"";

/// A config for a portal on `port`, with extra TOML lines appended to
/// `[portal]` and `[limits]`.
pub fn config_text(port: u16, state: &Path, portal_extra: &str, limits: &str) -> String {
    TestPortal::builder(state).portal(portal_extra).limits(limits).config_text(port)
}

/// How to start a [`TestPortal`]: `TestPortal::builder(dir).portal("…")
/// .limits("…").neighbours(table).start()`. Each method replaces what it
/// sets; what is not set is a plain loopback portal with rate limits off.
pub struct Builder {
    state: PathBuf,
    venue: String,
    portal_extra: String,
    public_url: Option<String>,
    tls: Option<(PathBuf, PathBuf)>,
    admin: String,
    limits: String,
    tables: String,
    neighbours: Neighbours,
    firewall: Arc<dyn Firewall>,
}

impl Builder {
    /// The TOML lines of `[venue]` (a station, "Ga Thử Nghiệm", unless given).
    pub fn venue(mut self, lines: &str) -> Builder {
        self.venue = lines.to_owned();
        self
    }

    /// Extra TOML lines for `[portal]`, after `listen` and `public_url`
    /// (`session = "12h"` unless given).
    pub fn portal(mut self, lines: &str) -> Builder {
        self.portal_extra = lines.to_owned();
        self
    }

    /// `portal.public_url` (the plain portal's own `http://127.0.0.1:PORT/`
    /// unless given).
    pub fn public_url(mut self, url: &str) -> Builder {
        self.public_url = Some(url.to_owned());
        self
    }

    /// A `[tls]` listener with this certificate and key, pre-bound like the
    /// others: its address is [`TestPortal::tls_addr`].
    pub fn tls(mut self, cert: &Path, key: &Path) -> Builder {
        self.tls = Some((cert.to_owned(), key.to_owned()));
        self
    }

    /// The TOML lines of `[admin]` (`listen = "127.0.0.1:0"` unless given;
    /// the listener is pre-bound whatever `listen` says).
    pub fn admin(mut self, lines: &str) -> Builder {
        self.admin = lines.to_owned();
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

    /// The firewall the portal drives (`NoFirewall` unless given; the
    /// config's `[firewall]` says `none` whatever is given here).
    pub fn firewall(mut self, firewall: Arc<dyn Firewall>) -> Builder {
        self.firewall = firewall;
        self
    }

    /// The config this builder writes, for a portal on `port`; the TLS
    /// listener, if any, on `127.0.0.1:0`.
    pub fn config_text(&self, port: u16) -> String {
        let public_url = self.public_url.clone().unwrap_or_else(|| format!("http://127.0.0.1:{port}/"));
        let tls = match &self.tls {
            Some((cert, key)) => {
                format!(
                    "[tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n\n",
                    cert.display(),
                    key.display()
                )
            }
            None => String::new(),
        };
        format!(
            r#"[venue]
{venue}

[portal]
listen = "127.0.0.1:{port}"
public_url = "{public_url}"
{portal_extra}

{tls}[firewall]
backend = "none"

[state]
dir = "{state}"

[admin]
{admin}

[limits]
{limits}
"#,
            venue = self.venue,
            portal_extra = self.portal_extra,
            state = self.state.display(),
            admin = self.admin,
            limits = self.limits,
        ) + "\n"
            + &self.tables
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
        let bind = || TcpListener::bind("127.0.0.1:0");
        let portal = bind().await.unwrap();
        let admin = bind().await.unwrap();
        let tls = match self.tls {
            Some(_) => Some(bind().await.unwrap()),
            None => None,
        };
        let addr = portal.local_addr().unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let tls_addr = tls.as_ref().map(|l| l.local_addr().unwrap());
        let text = self.config_text(addr.port());
        let state = self.state;
        std::fs::create_dir_all(&state).unwrap();
        let config_file = state.join("portico.toml");
        std::fs::write(&config_file, &text).unwrap();
        let config = Config::load(&config_file).expect("test config is valid");
        let (stop, stopped) = oneshot::channel::<()>();
        let (reload, reloads) = mpsc::channel(4);
        let listeners = Listeners { portal, tls, admin };
        let shutdown = async {
            let _ = stopped.await;
        };
        let source = ConfigSource::File(config_file.clone());
        let gateway = Gateway { firewall: self.firewall, neighbours: self.neighbours };
        let task = tokio::spawn(server::run_on(config, listeners, Control { shutdown, reloads, source }, gateway));
        let portal =
            TestPortal { addr, admin: admin_addr, tls_addr, state, config_file, stop: Some(stop), reload, task };
        // Serving begins after start-up reads the campaign and the store; a
        // test that edits those files must not race it.
        let health = portal.admin_get("/healthz").await;
        assert_eq!(health.status, StatusCode::OK, "the server did not start");
        portal
    }
}

impl TestPortal {
    pub fn builder(state: &Path) -> Builder {
        Builder {
            state: state.to_owned(),
            venue: VENUE.into(),
            portal_extra: "session = \"12h\"".into(),
            public_url: None,
            tls: None,
            admin: "listen = \"127.0.0.1:0\"".into(),
            limits: NO_RATE_LIMITS.into(),
            tables: String::new(),
            neighbours: Neighbours::none(),
            firewall: Arc::new(NoFirewall),
        }
    }

    pub async fn start(state: &Path) -> TestPortal {
        Self::builder(state).start().await
    }

    /// A portal whose state folder is on a [`super::tiny_filesystem`], filled
    /// to the last byte once it has started (`state/junk`: remove it to give
    /// the space back); `None`, and SKIPPED, where no such file system can
    /// be mounted. The file system is unmounted when its guard is dropped,
    /// which must be after the portal stops.
    pub async fn on_full_disk(state: &Path, what: &str) -> Option<(super::TinyFs, TestPortal)> {
        std::fs::create_dir_all(state).unwrap();
        let fs = super::tiny_filesystem(state, what)?;
        let portal = Self::start(state).await;
        super::fill(state);
        Some((fs, portal))
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
        self.submit_from(from, &form).await
    }

    /// Posts `form` (the splash's, or the try-again page's) as a browser
    /// submits it.
    pub async fn submit(&self, form: &Form) -> Reply {
        self.submit_from("127.0.0.1".parse().unwrap(), form).await
    }

    /// [`Self::submit`] from another loopback address.
    pub async fn submit_from(&self, from: std::net::IpAddr, form: &Form) -> Reply {
        let host = format!("127.0.0.1:{}", self.addr.port());
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        send_from(from, self.addr, "POST", &host, &form.action, &headers, Bytes::from(form.body())).await
    }

    /// `GET path` with this `Host` from another loopback address.
    pub async fn get_from(&self, from: std::net::IpAddr, host: &str, path: &str) -> Reply {
        send_from(from, self.addr, "GET", host, path, &[], Bytes::new()).await
    }

    /// `GET path` on the admin listener.
    pub async fn admin_get(&self, path: &str) -> Reply {
        send(self.admin, "GET", "127.0.0.1", path, &[], Bytes::new()).await
    }

    /// Polls `/healthz` every 200 ms until it answers 200, as it does once
    /// a degraded store takes writes again; fails after `within`.
    pub async fn healthy_within(&self, within: std::time::Duration) -> Reply {
        let deadline = std::time::Instant::now() + within;
        loop {
            let health = self.admin_get("/healthz").await;
            if health.status == StatusCode::OK {
                return health;
            }
            assert!(std::time::Instant::now() < deadline, "still {} {:?}", health.status, health.text());
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// The grants as `portico clients list --json` prints them.
    pub async fn clients(&self) -> serde_json::Value {
        let reply = self.admin_get("/clients").await;
        assert_eq!(reply.status, StatusCode::OK);
        serde_json::from_slice(&reply.body).expect("clients JSON")
    }
}
