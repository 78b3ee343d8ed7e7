//! The one thread that changes the firewall: it coalesces grants into
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
//! A second thread compares the kernel with it every [`CHECK_EVERY`]; the
//! comparison only reads, so batches never wait for it, and it takes its
//! snapshot of the applied grants *before* listing the kernel, so a grant
//! applied meanwhile cannot look missing. When something is missing (an
//! operator's `nft flush ruleset`, another firewall's reload) it asks this
//! thread to reinstall the table, which it does between batches from its own
//! list, so a repair can never drop a grant that was just acknowledged.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;

use super::{Firewall, FirewallError};
use crate::grant::{Device, Grant};
use crate::metrics::Metrics;

/// How often the kernel is compared with the applied grants; drift is
/// repaired within this time plus one transaction.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// How often the firewall thread looks for a repair request while idle.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// The most changes in one transaction; a larger queue is split.
const MAX_BATCH: usize = 1024;
/// An applied grant is remembered this long past its expiry, so that a
/// device coming back in that window is treated as renewed: the kernel may
/// still hold its element (its timeout is rounded up), and a plain `add`
/// would keep the old, ending timeout.
const REMEMBER_EXPIRED: Duration = Duration::from_secs(10);

enum Change {
    Allow(Grant),
    Revoke(Grant),
}

struct Request {
    change: Change,
    /// The grant as applied, or why not.
    done: oneshot::Sender<Result<Grant, FirewallError>>,
}

/// A cheap handle to the firewall thread.
#[derive(Clone)]
pub struct Gate {
    tx: mpsc::Sender<Request>,
}

/// What both threads share: the grants the kernel should hold, keyed by
/// device. A `std` mutex: held for map operations only, never across I/O.
type Applied = Arc<Mutex<HashMap<Device, Grant>>>;

impl Gate {
    /// Installs the backend's rules with `live` (blocking: call it from
    /// start-up or `spawn_blocking`), then starts the threads.
    pub fn start(firewall: Arc<dyn Firewall>, live: Vec<Grant>, metrics: Arc<Metrics>) -> Result<Gate, FirewallError> {
        firewall.install(&live, SystemTime::now())?;
        let (tx, rx) = mpsc::channel();
        let applied: Applied = Arc::new(Mutex::new(live.into_iter().map(|g| (g.device, g)).collect()));
        let repair = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map(|_| ())
                .map_err(|e| FirewallError::Failed(format!("cannot start the {name} thread: {e}")))
        };
        let worker = Worker {
            firewall: firewall.clone(),
            applied: applied.clone(),
            metrics,
            repair: repair.clone(),
            stopped: stopped.clone(),
        };
        spawn("portico-firewall", Box::new(move || worker.run(rx)))?;
        spawn("portico-drift", Box::new(move || check_drift(firewall, applied, repair, stopped)))?;
        Ok(Gate { tx })
    }

    /// Lets the device through; returns the grant once the kernel holds it.
    pub async fn allow(&self, grant: Grant) -> Result<Grant, FirewallError> {
        self.send(Change::Allow(grant)).await
    }

    /// Holds the device at the gate again.
    pub async fn revoke(&self, grant: Grant) -> Result<Grant, FirewallError> {
        self.send(Change::Revoke(grant)).await
    }

    async fn send(&self, change: Change) -> Result<Grant, FirewallError> {
        let (done, answer) = oneshot::channel();
        let stopped = || FirewallError::Failed("the firewall thread has stopped".into());
        self.tx.send(Request { change, done }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

struct Worker {
    firewall: Arc<dyn Firewall>,
    applied: Applied,
    metrics: Arc<Metrics>,
    repair: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
}

impl Worker {
    fn run(self, rx: mpsc::Receiver<Request>) {
        loop {
            match rx.recv_timeout(IDLE_POLL) {
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
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if self.repair.swap(false, Ordering::AcqRel) {
                self.reinstall();
            }
        }
        self.stopped.store(true, Ordering::Release);
    }

    fn apply(&self, batch: Vec<Request>) {
        let now = SystemTime::now();
        let (mut allows, mut revokes) = (Vec::new(), Vec::new());
        for request in batch {
            match request.change {
                Change::Allow(g) => allows.push((g, request.done)),
                Change::Revoke(g) => revokes.push((g, request.done)),
            }
        }
        if !allows.is_empty() {
            let (mut fresh, mut renewed) = (Vec::new(), Vec::new());
            {
                let applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
                for (g, _) in &allows {
                    if applied.contains_key(&g.device) { renewed.push(g.clone()) } else { fresh.push(g.clone()) }
                }
            }
            let result = self.firewall.allow(&fresh, &renewed, now);
            self.metrics.firewall_batches.fetch_add(1, Relaxed);
            if result.is_ok() {
                let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
                applied.extend(allows.iter().map(|(g, _)| (g.device, g.clone())));
            }
            for (g, done) in allows {
                let _ = done.send(result.clone().map(|()| g));
            }
        }
        if !revokes.is_empty() {
            let grants: Vec<Grant> = revokes.iter().map(|(g, _)| g.clone()).collect();
            // Forgotten before the kernel lets go, so the drift checker never
            // sees a revoked grant as missing; put back if the kernel refuses.
            let removed: Vec<Grant> = {
                let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
                grants.iter().filter_map(|g| applied.remove(&g.device)).collect()
            };
            let result = self.firewall.revoke(&grants);
            self.metrics.firewall_batches.fetch_add(1, Relaxed);
            if result.is_err() {
                let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
                applied.extend(removed.into_iter().map(|g| (g.device, g)));
            }
            for (g, done) in revokes {
                let _ = done.send(result.clone().map(|()| g));
            }
        }
    }

    fn reinstall(&self) {
        let now = SystemTime::now();
        let live: Vec<Grant> = {
            let applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
            applied.values().filter(|g| g.is_live(now)).cloned().collect()
        };
        tracing::warn!(grants = live.len(), "the firewall's rules were changed under Portico; rebuilding them");
        match self.firewall.install(&live, now) {
            Ok(()) => {
                self.metrics.firewall_repairs.fetch_add(1, Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, "could not rebuild the firewall's rules; will retry");
                self.repair.store(true, Ordering::Release);
            }
        }
    }
}

/// The drift checker's loop: snapshot, then list, then compare; ask for a
/// repair when the kernel lacks the rules or a grant. Ends with the worker.
fn check_drift(firewall: Arc<dyn Firewall>, applied: Applied, repair: Arc<AtomicBool>, stopped: Arc<AtomicBool>) {
    while !stopped.load(Ordering::Acquire) {
        std::thread::sleep(CHECK_EVERY);
        let now = SystemTime::now();
        let live: Vec<Grant> = {
            let mut applied = applied.lock().unwrap_or_else(|e| e.into_inner());
            applied.retain(|_, g| g.expires + REMEMBER_EXPIRED > now);
            applied.values().filter(|g| g.is_live(now)).cloned().collect()
        };
        match firewall.check(&live, now) {
            Ok(true) => {}
            Ok(false) => repair.store(true, Ordering::Release),
            Err(e) => tracing::warn!(error = %e, "could not check the firewall's rules"),
        }
    }
}
