//! The one thread that talks to the firewall: it coalesces grants into
//! batches, keeps the set of grants the kernel should hold, and repairs
//! drift.
//!
//! A train arrives and hundreds of phones tap *Connect* within seconds. Each
//! accept sends its grant here and waits; the thread takes one request, then
//! every other request already queued, and applies them with one backend
//! call (one `nft` transaction), then answers every waiter. So the number of
//! transactions grows with the burst's duration, not its size, and a phone
//! is answered only once its grant is in the kernel.
//!
//! The thread is also the only place that knows exactly what was applied.
//! Every [`CHECK_EVERY`] it asks the backend whether the kernel still holds
//! the rules and those grants, and if not (an operator's `nft flush
//! ruleset`, another firewall's reload) reinstalls the table with all of
//! them. Because checks, repairs and batches run one after another on this
//! thread, a repair can never be built from a list that lacks a grant that
//! was just acknowledged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::{Firewall, FirewallError};
use crate::grant::Grant;
use crate::metrics::Metrics;

/// How often the kernel is compared with the applied grants; drift is
/// repaired within this time plus one transaction.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// The most changes in one transaction; a larger queue is split.
const MAX_BATCH: usize = 1024;

enum Change {
    Allow(Grant),
    Revoke(Grant),
}

struct Request {
    change: Change,
    done: oneshot::Sender<Result<(), FirewallError>>,
}

/// A cheap handle to the firewall thread.
#[derive(Clone)]
pub struct Gate {
    tx: mpsc::Sender<Request>,
    name: &'static str,
}

impl Gate {
    /// Installs the backend's rules with `live` (blocking: call it from
    /// start-up or `spawn_blocking`), then starts the thread.
    pub fn start(firewall: Arc<dyn Firewall>, live: Vec<Grant>, metrics: Arc<Metrics>) -> Result<Gate, FirewallError> {
        firewall.install(&live, SystemTime::now())?;
        let name = firewall.name();
        let (tx, rx) = mpsc::channel();
        let applied = live.into_iter().map(|g| (g.ip, g)).collect();
        std::thread::Builder::new()
            .name("portico-firewall".into())
            .spawn(move || Worker { firewall, applied, metrics }.run(rx))
            .map_err(|e| FirewallError::Failed(format!("cannot start the firewall thread: {e}")))?;
        Ok(Gate { tx, name })
    }

    pub fn backend(&self) -> &'static str {
        self.name
    }

    /// Lets the device through; returns once the kernel holds the grant.
    pub async fn allow(&self, grant: Grant) -> Result<(), FirewallError> {
        self.send(Change::Allow(grant)).await
    }

    /// Holds the device at the gate again.
    pub async fn revoke(&self, grant: Grant) -> Result<(), FirewallError> {
        self.send(Change::Revoke(grant)).await
    }

    async fn send(&self, change: Change) -> Result<(), FirewallError> {
        let (done, answer) = oneshot::channel();
        let stopped = || FirewallError::Failed("the firewall thread has stopped".into());
        self.tx.send(Request { change, done }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

struct Worker {
    firewall: Arc<dyn Firewall>,
    /// What the kernel should hold: every grant applied and not revoked.
    applied: HashMap<IpAddr, Grant>,
    metrics: Arc<Metrics>,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        let mut next_check = Instant::now() + CHECK_EVERY;
        loop {
            match rx.recv_timeout(next_check.saturating_duration_since(Instant::now())) {
                Ok(first) => {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(request) => batch.push(request),
                            Err(_) => break,
                        }
                    }
                    self.apply(batch);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            if Instant::now() >= next_check {
                self.repair_drift();
                next_check = Instant::now() + CHECK_EVERY;
            }
        }
    }

    fn apply(&mut self, batch: Vec<Request>) {
        let now = SystemTime::now();
        let (mut allows, mut revokes) = (Vec::new(), Vec::new());
        for request in batch {
            match request.change {
                Change::Allow(g) => allows.push((g, request.done)),
                Change::Revoke(g) => revokes.push((g, request.done)),
            }
        }
        if !allows.is_empty() {
            let grants: Vec<Grant> = allows.iter().map(|(g, _)| g.clone()).collect();
            let result = self.firewall.allow(&grants, now);
            self.metrics.firewall_batches.fetch_add(1, Relaxed);
            if result.is_ok() {
                self.applied.extend(grants.into_iter().map(|g| (g.ip, g)));
            }
            for (_, done) in allows {
                let _ = done.send(result.clone());
            }
        }
        if !revokes.is_empty() {
            let grants: Vec<Grant> = revokes.iter().map(|(g, _)| g.clone()).collect();
            let result = self.firewall.revoke(&grants);
            self.metrics.firewall_batches.fetch_add(1, Relaxed);
            if result.is_ok() {
                for g in &grants {
                    self.applied.remove(&g.ip);
                }
            }
            for (_, done) in revokes {
                let _ = done.send(result.clone());
            }
        }
    }

    fn repair_drift(&mut self) {
        let now = SystemTime::now();
        self.applied.retain(|_, g| g.is_live(now));
        let live: Vec<Grant> = self.applied.values().cloned().collect();
        match self.firewall.check(&live, now) {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(grants = live.len(), "the firewall's rules were changed under Portico; rebuilding them");
                match self.firewall.install(&live, now) {
                    Ok(()) => {
                        self.metrics.firewall_repairs.fetch_add(1, Relaxed);
                    }
                    Err(e) => tracing::error!(error = %e, "could not rebuild the firewall's rules; will retry"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not check the firewall's rules"),
        }
    }
}
