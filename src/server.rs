//! Start-up and shutdown: builds every part from a validated [`Config`],
//! serves until the shutdown future resolves, then drains and flushes.
//!
//! Listeners are bound by the caller and passed in (tests pre-bind
//! `127.0.0.1:0`; `portico run` binds the configured addresses), so there is
//! one code path for both. The one shutdown path: stop accepting, drain open
//! connections for at most [`DRAIN_DEADLINE`], write the day's counts,
//! compact the grant journal,
//! return. The firewall's table is left in place so granted devices keep
//! their internet across a restart.

use std::future::Future;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::counts::Counts;
use crate::firewall::{self, Allowed, Firewall, FirewallError, Gate};
use crate::grant::Device;
use crate::guard::Guard;
use crate::http::{self, Role};
use crate::intercepts::Intercepts;
use crate::metrics::Metrics;
use crate::neighbours::Neighbours;
use crate::notify::Notifier;
use crate::portal::Portal;
use crate::reload::{ConfigSource, build_live, reload};
use crate::sessions::Sessions;
use crate::store::Journal;
use crate::trusted::TrustedList;

/// How long open connections may take to finish after a stop.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// How long a stop waits for the firewall's threads to finish what they
/// are doing (an install or a listing of 100,000 grants takes about a
/// second).
const SETTLE_DEADLINE: Duration = Duration::from_secs(10);
/// How often expired grants are dropped from memory, idle clients from the
/// rate limiter, and grants that a failed disk write left in memory retried.
const PURGE_EVERY: Duration = Duration::from_secs(5);

/// The bound sockets Portico serves on.
pub struct Listeners {
    pub portal: TcpListener,
    pub tls: Option<TcpListener>,
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the configured addresses, naming the key of one that fails.
    pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
        let portal = bind("portal.listen", config.portal.listen)?;
        let tls = config.tls.as_ref().map(|t| bind("tls.listen", t.listen)).transpose()?;
        let admin = bind("admin.listen", config.admin.listen)?;
        Ok(Listeners { portal, tls, admin })
    }
}

/// Binds one listener. An unspecified address (`0.0.0.0` or `[::]`) means
/// every address, IPv4 *and* IPv6: the firewall redirects both families'
/// port-80 traffic here, so an IPv4-only socket would strand IPv6 phones.
/// That needs `IPV6_V6ONLY` off explicitly (a host may default it on); a
/// host without IPv6 falls back to IPv4.
fn bind(key: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let open = |addr: SocketAddr, dual: bool| -> std::io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        if dual {
            socket.set_only_v6(false)?;
        }
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        TcpListener::from_std(socket.into())
    };
    let result = if addr.ip().is_unspecified() {
        let any6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), addr.port());
        open(any6, true).or_else(|e| match e.raw_os_error() {
            Some(EAFNOSUPPORT) => open(addr, false),
            _ => Err(e),
        })
    } else {
        open(addr, false)
    };
    result.with_context(|| format!("{key}: cannot listen on {addr}"))
}

/// Linux's "address family not supported" (IPv6 disabled in the kernel).
const EAFNOSUPPORT: i32 = 97;

/// How a running server is told to stop or reload.
pub struct Control<F> {
    /// Resolves when the server should stop.
    pub shutdown: F,
    /// Each message asks for a reload from `source`.
    pub reloads: mpsc::Receiver<()>,
    pub source: ConfigSource,
}

/// What Portico drives and reads on the gateway: the packet filter and the
/// neighbour table. Built from the config for a real run; a test passes
/// its own (a recording firewall, a fixed neighbour table).
pub struct Gateway {
    pub firewall: Arc<dyn Firewall>,
    pub neighbours: Neighbours,
}

impl Gateway {
    /// The backend the config names, and the kernel's neighbour table for
    /// the client interfaces.
    pub fn from_config(config: &Config) -> Result<Gateway, FirewallError> {
        let firewall = firewall::from_config(config)?;
        Ok(Gateway { firewall, neighbours: Neighbours::watch(&config.firewall.interfaces) })
    }
}

/// The devices with a running grant and its end, for the daily counts.
fn running_grants(sessions: Sessions) -> impl Fn(SystemTime) -> Vec<(Device, SystemTime)> + Send + Sync {
    move |now| {
        let mut running = Vec::new();
        sessions.each_live(&sessions.live_devices(now), now, |g| running.push((g.device, g.expires)));
        running
    }
}

/// Builds everything from the config and serves until `control.shutdown`
/// resolves.
pub async fn run<F: Future<Output = ()>>(
    config: Config,
    listeners: Listeners,
    control: Control<F>,
) -> anyhow::Result<()> {
    let backend = config.firewall.backend_name();
    let gateway = Gateway::from_config(&config).with_context(|| format!("firewall ({backend})"))?;
    run_on(config, listeners, control, gateway).await
}

/// Like [`run`], on the given gateway.
pub async fn run_on<F: Future<Output = ()>>(
    config: Config,
    listeners: Listeners,
    control: Control<F>,
    gateway: Gateway,
) -> anyhow::Result<()> {
    let Control { shutdown, mut reloads, source } = control;
    let Gateway { firewall, neighbours } = gateway;
    // The grants are read while the pages are rendered.
    let dir = config.state.dir.clone();
    let journal = tokio::task::spawn_blocking(move || Journal::load(&dir, SystemTime::now()));
    // An alert set before a restart (or a crash) is shown again at once.
    let alert = crate::alert::load(&config.state.dir);
    if let Some(alert) = &alert {
        tracing::warn!(title = %alert.notice.texts[0].title, open_gate = alert.open_gate, "an alert is in force");
    }
    let live = build_live(config, alert)?;
    let config = &live.config;
    let tags: Vec<String> = live.campaign.locales.iter().map(|l| l.tag.clone()).collect();
    let metrics = Arc::new(Metrics::new(&live.campaign.name, &tags));
    let journal = journal
        .await?
        .with_context(|| format!("state.dir: cannot open the grant store in {}", config.state.dir.display()))?;
    let backend = firewall.name();
    let trusted = TrustedList::load(&config.state.dir, config.trusted.clone());
    let gate = {
        let live = journal.table().lock().values().map(Allowed::of).collect();
        let metrics = metrics.clone();
        let left_at = firewall_left_at(&config.state.dir, firewall.as_ref());
        let trusted = trusted.macs();
        tokio::task::spawn_blocking(move || Gate::start(firewall, live, trusted, metrics, left_at))
            .await?
            .with_context(|| format!("firewall ({backend}): installing the rules"))?
    };
    // The alert's open gate, queued after the install; also closed when the
    // alert is gone (a clean stop may have left the kernel open).
    let open = live.alert.as_ref().is_some_and(|a| a.open_gate);
    let opening = gate.clone();
    tokio::spawn(async move {
        if let Err(e) = opening.set_open(open).await {
            tracing::error!(error = %e, open, "the firewall refused the alert's open gate at start-up");
        }
    });
    let sessions = Sessions::new(journal, gate.clone(), trusted, metrics.clone());
    // For the note a clean stop leaves (see `firewall_left_at`).
    let (state_dir, ruleset) = (config.state.dir.clone(), gate.ruleset());

    tracing::info!(
        portal = %listeners.portal.local_addr()?,
        admin = %listeners.admin.local_addr()?,
        firewall = backend,
        venue = %config.venue.name,
        "Portico serving"
    );
    let limits = config.limits.clone();
    let guard = Guard::new(&limits);
    let counts =
        Counts::open(&config.state.dir, config.venue.timezone.clone(), config.state.retention_days, SystemTime::now());
    let portal = Arc::new(Portal {
        live: ArcSwap::from_pointee(live),
        sessions: sessions.clone(),
        gate: gate.clone(),
        metrics,
        limits,
        guard,
        neighbours,
        intercepts: Arc::new(Intercepts::default()),
        counts,
        changing: tokio::sync::Mutex::new(()),
    });
    let counts_writer = portal.counts.spawn_writer(Box::new(running_grants(sessions.clone())));
    let fetching = crate::fleet::spawn(portal.clone());

    // systemd hears READY=1 once the firewall's rules are in (the
    // listeners were bound before this was called), and WATCHDOG=1 while
    // the reactor runs and the firewall thread answers.
    let notifier = Notifier::from_env();
    let supervised = {
        let (gate, notifier) = (gate.clone(), notifier.clone());
        tokio::spawn(async move {
            let _ = gate.settle(READY_WITHIN).await;
            notifier.send("READY=1");
            let Some(every) = notifier.watchdog() else { return };
            loop {
                tokio::time::sleep(every / 2).await;
                // A firewall thread stuck for half the interval (an `nft`
                // that never returns) lets the watchdog restart the service.
                if gate.settle(every / 2).await {
                    notifier.send("WATCHDOG=1");
                }
            }
        })
    };
    let purge = PurgeTask::spawn(portal.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let graceful = GracefulShutdown::new();
    let serving = async {
        let tls_loop = async {
            if let Some(listener) = listeners.tls {
                http::serve(listener, Role::Portal, true, portal.clone(), &graceful, stop_rx.clone()).await;
            }
        };
        tokio::join!(
            http::serve(listeners.portal, Role::Portal, false, portal.clone(), &graceful, stop_rx.clone()),
            tls_loop,
            http::serve(listeners.admin, Role::Admin, false, portal.clone(), &graceful, stop_rx.clone()),
        );
    };
    let stopping = async {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(()) = reloads.recv() => {
                    notifier.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
                    reload(&portal, &source).await;
                    notifier.send("READY=1");
                }
            }
        }
        tracing::info!("stopping: no new connections; draining open ones");
        notifier.send("STOPPING=1");
        supervised.abort();
        let _ = stop_tx.send(true);
    };
    tokio::join!(serving, stopping);

    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still open after {DRAIN_DEADLINE:?}; closing them");
    }
    drop(purge);
    drop(fetching);
    drop(counts_writer);
    portal.counts.flush(&running_grants(sessions.clone())).await;
    sessions.compact().await;
    gate.stop_watching(SETTLE_DEADLINE).await;
    gate.settle(SETTLE_DEADLINE).await;
    // Only a store that wrote every grant may promise the next start that
    // the kernel holds exactly what the journal says.
    if !sessions.degraded()
        && let Some(generation) = gate.left_at()
    {
        record_firewall_left_at(&state_dir, generation, &ruleset);
    }
    tracing::info!("stopped");
    Ok(())
}

/// The longest start-up waits for the firewall's rules before it says it
/// is ready anyway (100,000 grants take the kernel a few seconds).
const READY_WITHIN: Duration = Duration::from_secs(60);

/// `CLOCK_MONOTONIC` in microseconds, as `RELOADING=1` carries it.
fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map_or(0, |t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
}

/// Where a clean stop notes the ruleset generation it left the kernel at,
/// with a checksum of the rules (a new version may install other rules).
const FIREWALL_LEFT: &str = "firewall.generation";

/// What the last clean stop recorded, if it is for these rules; the note
/// is removed either way, so a crash later cannot reuse it.
fn firewall_left_at(dir: &std::path::Path, firewall: &dyn Firewall) -> Option<u32> {
    let path = dir.join(FIREWALL_LEFT);
    let text = std::fs::read_to_string(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    let (generation, rules) = text.trim().split_once(' ')?;
    let rules = u32::from_str_radix(rules, 16).ok()?;
    (rules == crc32fast::hash(firewall.ruleset().as_bytes())).then(|| generation.parse().ok()).flatten()
}

fn record_firewall_left_at(dir: &std::path::Path, generation: u32, ruleset: &str) {
    let text = format!("{generation} {:08x}\n", crc32fast::hash(ruleset.as_bytes()));
    if let Err(e) = std::fs::write(dir.join(FIREWALL_LEFT), text) {
        tracing::debug!(error = %e, "could not note the firewall's generation; the next start rebuilds it");
    }
}

/// Drops expired grants from memory and idle clients from the rate limiter
/// periodically; aborted when dropped, so it never outlives the server.
struct PurgeTask(tokio::task::JoinHandle<()>);

impl PurgeTask {
    fn spawn(portal: Arc<Portal>) -> PurgeTask {
        PurgeTask(tokio::spawn(async move {
            // Not at once: start-up has just loaded exactly the live grants.
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + PURGE_EVERY, PURGE_EVERY);
            loop {
                tick.tick().await;
                portal.guard.purge();
                portal.sessions.flush_pending().await;
                let purged = portal.sessions.purge(SystemTime::now());
                if purged > 0 {
                    tracing::debug!(purged, "expired grants dropped");
                }
            }
        }))
    }
}

impl Drop for PurgeTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A channel that receives one message per SIGHUP, for [`Control::reloads`].
/// Installed when called, like [`shutdown_signal`].
pub fn reload_signal() -> std::io::Result<mpsc::Receiver<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            // A reload already queued covers this one too.
            let _ = tx.try_send(());
        }
    });
    Ok(rx)
}

/// Resolves on SIGTERM or SIGINT: the supervisor's stop or a Ctrl-C.
///
/// The handlers are installed when this is *called*, not when the future is
/// first polled, so a stop that arrives during start-up is not lost to the
/// default action (which would kill the process without a drain).
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
