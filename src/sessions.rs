//! The grant table: which devices may use the internet, and until when.
//!
//! [`Sessions`] is a cheap clonable handle shared by every connection. An
//! accept goes through three steps in this order, and only then is the phone
//! answered: (1) the firewall lets the device through, (2) the grant is made
//! durable by the store, (3) it enters the in-memory table that the router
//! reads. Firewall first means a crash between the steps leaves at most a
//! kernel entry without a record (start-up reconciliation re-installs only
//! recorded grants), never an acknowledged grant that a restart forgets.
//!
//! If the disk write fails, the device still gets its internet: the grant is
//! kept in memory, the failure is logged and counted, and `/healthz` says
//! `degraded` (a full disk must not take the Wi-Fi down for everyone).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::firewall::{Firewall, FirewallError};
use crate::grant::{Grant, MacAddr};
use crate::metrics::Metrics;
use crate::store::{Journal, Record, Store};

#[derive(Clone)]
pub struct Sessions {
    shared: Arc<Shared>,
}

struct Shared {
    /// A `std` mutex, not tokio's: it guards a plain map operation, is never
    /// held across an `.await`, and so never blocks the reactor for longer
    /// than a hash lookup. Every request takes it once.
    grants: Mutex<HashMap<IpAddr, Grant>>,
    store: Store,
    firewall: Arc<dyn Firewall>,
    session: Duration,
    metrics: Arc<Metrics>,
    /// Set when the last write to disk failed; cleared by the next success.
    store_degraded: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("firewall refused the grant: {0}")]
    Firewall(#[from] FirewallError),
    #[error("firewall task failed: {0}")]
    Task(String),
}

impl Sessions {
    /// Restores the journal's live grants and installs them in the firewall.
    pub async fn open(
        journal: Journal,
        restored: Vec<Grant>,
        firewall: Arc<dyn Firewall>,
        session: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Sessions, FirewallError> {
        let now = SystemTime::now();
        let fw = firewall.clone();
        let live = restored.clone();
        tokio::task::spawn_blocking(move || fw.install(&live, now))
            .await
            .map_err(|e| FirewallError::Failed(e.to_string()))??;
        if !restored.is_empty() {
            tracing::info!(grants = restored.len(), "restored live grants");
        }
        let grants = restored.into_iter().map(|g| (g.ip, g)).collect();
        Ok(Sessions {
            shared: Arc::new(Shared {
                grants: Mutex::new(grants),
                store: Store::spawn(journal),
                firewall,
                session,
                metrics,
                store_degraded: AtomicBool::new(false),
            }),
        })
    }

    /// The live grant of `ip`, if any.
    pub fn lookup(&self, ip: IpAddr, now: SystemTime) -> Option<Grant> {
        let grants = self.shared.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants.get(&ip).filter(|g| g.is_live(now)).cloned()
    }

    /// Grants (or extends) a session for `ip`. Returns once the device can
    /// pass the firewall.
    pub async fn accept(&self, ip: IpAddr, mac: Option<MacAddr>) -> Result<Grant, AcceptError> {
        let started = Instant::now();
        let now = SystemTime::now();
        let grant = Grant {
            ip,
            mac,
            expires: now + self.shared.session,
        };
        let result = self.apply(grant, now).await;
        let m = &self.shared.metrics;
        match &result {
            Ok(_) => m.accepts_ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => m.accepts_failed.fetch_add(1, Ordering::Relaxed),
        };
        m.accept_latency(started.elapsed());
        result
    }

    async fn apply(&self, grant: Grant, now: SystemTime) -> Result<Grant, AcceptError> {
        let fw = self.shared.firewall.clone();
        let batch = vec![grant.clone()];
        tokio::task::spawn_blocking(move || fw.allow(&batch, now))
            .await
            .map_err(|e| AcceptError::Task(e.to_string()))??;
        self.persist(vec![Record::Grant(grant.clone())]).await;
        let mut grants = self.shared.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants.insert(grant.ip, grant.clone());
        Ok(grant)
    }

    /// Ends the grant of `ip` now. Returns the grant that was revoked.
    pub async fn revoke(&self, ip: IpAddr) -> Result<Option<Grant>, AcceptError> {
        let Some(grant) = self.lookup(ip, SystemTime::now()) else {
            return Ok(None);
        };
        let fw = self.shared.firewall.clone();
        let batch = vec![grant.clone()];
        tokio::task::spawn_blocking(move || fw.revoke(&batch))
            .await
            .map_err(|e| AcceptError::Task(e.to_string()))??;
        self.persist(vec![Record::Revoke(ip)]).await;
        self.shared
            .grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
        Ok(Some(grant))
    }

    async fn persist(&self, records: Vec<Record>) {
        match self.shared.store.commit(records).await {
            Ok(()) => self.shared.store_degraded.store(false, Ordering::Relaxed),
            Err(e) => {
                self.shared.store_degraded.store(true, Ordering::Relaxed);
                self.shared
                    .metrics
                    .store_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "grant kept in memory only: could not write it to disk");
            }
        }
    }

    /// Live grants, soonest expiry first.
    pub fn list(&self, now: SystemTime) -> Vec<Grant> {
        let grants = self.shared.grants.lock().unwrap_or_else(|e| e.into_inner());
        let mut live: Vec<Grant> = grants
            .values()
            .filter(|g| g.is_live(now))
            .cloned()
            .collect();
        live.sort_by_key(|g| g.expires);
        live
    }

    pub fn active(&self, now: SystemTime) -> usize {
        let grants = self.shared.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants.values().filter(|g| g.is_live(now)).count()
    }

    /// Forgets expired grants in memory. The kernel expires them by itself
    /// and the store drops them at its next compaction.
    pub fn purge(&self, now: SystemTime) -> usize {
        let mut grants = self.shared.grants.lock().unwrap_or_else(|e| e.into_inner());
        let before = grants.len();
        grants.retain(|_, g| g.is_live(now));
        before - grants.len()
    }

    /// Whether the last write to disk failed.
    pub fn degraded(&self) -> bool {
        self.shared.store_degraded.load(Ordering::Relaxed)
    }

    /// Rewrites the journal with only the live grants (used at shutdown).
    pub async fn compact(&self) {
        if let Err(e) = self.shared.store.compact().await {
            tracing::warn!(error = %e, "could not compact the grant journal");
        }
    }
}
