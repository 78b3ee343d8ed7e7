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
//!
//! The table is keyed by [`Device`] (see [`crate::client`]): a phone granted
//! from its IPv4 address is granted on its IPv6 addresses too, and each new
//! address it is seen on is remembered in its grant and journalled.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::client::Client;
use crate::firewall::{FirewallError, Gate};
use crate::grant::{Device, Grant, MacAddr};
use crate::metrics::Metrics;
use crate::store::{GrantTable, Journal, Record, Store};
use crate::trusted::{Source, TrustedDevice, TrustedList, UntrustError};

#[derive(Clone)]
pub struct Sessions {
    shared: Arc<Shared>,
}

struct Shared {
    /// Shared with the store, which applies what it has made durable (see
    /// [`crate::store`]). A `std` mutex, not tokio's: it guards a plain map
    /// operation, is never held across an `.await`, and so never blocks the
    /// reactor for longer than a hash lookup. Every request takes it once.
    grants: GrantTable,
    store: Store,
    gate: Gate,
    metrics: Arc<Metrics>,
    /// Set when the last write to disk failed; cleared by the next success.
    store_degraded: AtomicBool,
    /// Records not yet on disk because a write failed, in order. A tokio
    /// mutex: it is held across the retry's write, and is only ever touched
    /// once the store has failed.
    pending: tokio::sync::Mutex<Vec<Record>>,
    /// The trusted devices (see [`crate::trusted`]): read by every request
    /// without a grant, so swapped whole on a change and read without a lock.
    trusted: arc_swap::ArcSwap<TrustedList>,
    /// Held through a whole change of the trusted devices (kernel, then
    /// disk), so that two changes cannot interleave.
    trusting: tokio::sync::Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("firewall refused the change: {0}")]
    Firewall(#[from] FirewallError),
}

/// Why a change of the trusted devices was not made.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("firewall refused the change: {0}")]
    Firewall(#[from] FirewallError),
    #[error("cannot save the trusted devices: {0}")]
    Disk(#[from] std::io::Error),
    #[error(transparent)]
    Untrust(#[from] UntrustError),
}

impl Sessions {
    /// Takes over the journal, with the grants it restored, and the
    /// firewall gate, which already holds them.
    pub fn new(journal: Journal, gate: Gate, trusted: TrustedList, metrics: Arc<Metrics>) -> Sessions {
        let grants = journal.table();
        let restored = grants.lock().len();
        if restored > 0 {
            tracing::info!(grants = restored, "restored live grants");
        }
        Sessions {
            shared: Arc::new(Shared {
                grants,
                store: Store::spawn(journal),
                gate,
                metrics,
                store_degraded: AtomicBool::new(false),
                pending: tokio::sync::Mutex::new(Vec::new()),
                trusted: arc_swap::ArcSwap::from_pointee(trusted),
                trusting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The live grant of the client's device, if any. A granted phone seen
    /// on an address its grant does not list yet has it added, and the
    /// journal is told (in the background: the answer does not wait).
    pub fn lookup(&self, client: &Client, now: SystemTime) -> Option<Grant> {
        let mut grants = self.shared.grants.lock();
        let grant = grants.get_mut(&client.device()).filter(|g| g.is_live(now))?;
        if let Some(mac) = grant.mac()
            && grant.learn(client.ip)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let sessions = self.clone();
            let seen = Record::Seen(mac, client.ip);
            runtime.spawn(async move { sessions.persist(vec![seen]).await });
        }
        Some(grant.clone())
    }

    /// Grants (or extends) a session of `session` (`portal.session` of the
    /// config the request was served under) for the client's device, which
    /// also uses `also` (its other addresses the neighbour table knows).
    /// Returns once the device can pass the firewall.
    pub async fn accept(&self, client: &Client, also: &[IpAddr], session: Duration) -> Result<Grant, AcceptError> {
        let started = Instant::now();
        let now = SystemTime::now();
        let mut grant = Grant::new(client.device(), client.ip, now + session);
        if let Some(old) = self.lookup(client, now) {
            old.addresses().for_each(|ip| _ = grant.learn(ip));
        }
        also.iter().for_each(|ip| _ = grant.learn(*ip));
        let result = self.apply(grant).await;
        let m = &self.shared.metrics;
        match &result {
            Ok(_) => m.accepts_ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => m.accepts_failed.fetch_add(1, Ordering::Relaxed),
        };
        m.accept_latency(started.elapsed());
        result
    }

    async fn apply(&self, grant: Grant) -> Result<Grant, AcceptError> {
        let grant = self.shared.gate.allow(grant).await?;
        if !self.persist(vec![Record::Grant(grant.clone())]).await {
            // Not on disk: granted in memory all the same (see the module note).
            self.shared.grants.lock().insert(grant.clone());
        }
        Ok(grant)
    }

    /// Ends the grant of `device` now. Returns the grant that was revoked.
    pub async fn revoke(&self, device: Device) -> Result<Option<Grant>, AcceptError> {
        let Some(grant) = self.get(device, SystemTime::now()) else {
            return Ok(None);
        };
        self.shared.gate.revoke(grant.clone()).await?;
        if !self.persist(vec![Record::Revoke(device)]).await {
            self.shared.grants.lock().remove(&device);
        }
        Ok(Some(grant))
    }

    /// Whether the client is a trusted device.
    pub fn is_trusted(&self, client: &Client) -> bool {
        let Device::Mac(mac) = client.device() else { return false };
        self.shared.trusted.load().get(mac).is_some()
    }

    /// Every trusted device, with where its trust comes from.
    pub fn trusted_devices(&self) -> Vec<(TrustedDevice, Source)> {
        self.trusted_list().all()
    }

    fn trusted_list(&self) -> Arc<TrustedList> {
        self.shared.trusted.load_full()
    }

    /// Trusts (or renames) a device: the kernel lets it through, then the
    /// list is saved; if the disk refuses, the kernel is set back, so a
    /// device is trusted only if a restart will still trust it.
    pub async fn trust(&self, device: TrustedDevice) -> Result<(), TrustError> {
        let _one = self.shared.trusting.lock().await;
        let new = self.trusted_list().with(device);
        self.change_trusted(new, true).await
    }

    /// Ends a device's trust (one added at run time; the config's stay).
    pub async fn untrust(&self, mac: MacAddr) -> Result<(), TrustError> {
        let _one = self.shared.trusting.lock().await;
        let new = self.trusted_list().without(mac)?;
        self.change_trusted(new, true).await
    }

    /// The config's trusted devices after a reload.
    pub async fn set_configured_trusted(&self, configured: Vec<TrustedDevice>) -> Result<(), TrustError> {
        let _one = self.shared.trusting.lock().await;
        let new = self.trusted_list().with_configured(configured);
        self.change_trusted(new, false).await
    }

    async fn change_trusted(&self, new: TrustedList, save: bool) -> Result<(), TrustError> {
        let old = self.trusted_list();
        let gate = &self.shared.gate;
        let (macs, old_macs) = (new.macs(), old.macs());
        let changed = macs != old_macs;
        if changed {
            gate.trust(macs).await?;
        }
        let new = Arc::new(new);
        if save {
            let saving = new.clone();
            let saved = tokio::task::spawn_blocking(move || saving.save()).await.map_err(std::io::Error::other);
            if let Err(e) = saved.and_then(|r| r) {
                if changed && let Err(back) = gate.trust(old_macs).await {
                    tracing::error!(error = %back, "could not set the trusted devices back in the firewall");
                }
                return Err(e.into());
            }
        }
        self.shared.trusted.store(new);
        Ok(())
    }

    /// The live grant of `device`, if any.
    pub fn get(&self, device: Device, now: SystemTime) -> Option<Grant> {
        let grants = self.shared.grants.lock();
        grants.get(&device).filter(|g| g.is_live(now)).cloned()
    }

    /// The live grant that lists `ip` among its addresses, for an operator
    /// who names a device by an address the neighbour table has forgotten.
    pub fn find_by_address(&self, ip: IpAddr, now: SystemTime) -> Option<Grant> {
        let grants = self.shared.grants.lock();
        grants.values().find(|g| g.is_live(now) && g.uses(ip)).cloned()
    }

    /// Writes `records`, or keeps them to write later. In the normal case
    /// commits run concurrently (the store groups them). Once a write has
    /// failed, every later record queues behind the unwritten ones, in order,
    /// so a revoke can never reach the disk before the grant it cancels.
    /// Returns whether they are on disk now (and so applied to the table).
    async fn persist(&self, records: Vec<Record>) -> bool {
        let shared = &self.shared;
        if !shared.store_degraded.load(Ordering::Acquire) {
            match shared.store.commit(records.clone()).await {
                Ok(()) => return true,
                Err(e) => {
                    shared.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "grant kept in memory only until the disk takes writes again");
                }
            }
        }
        let mut pending = shared.pending.lock().await;
        pending.extend(records);
        shared.store_degraded.store(true, Ordering::Release);
        self.flush_pending_locked(&mut pending).await;
        pending.is_empty()
    }

    /// Retries writing what a failed write left in memory; called
    /// periodically. Clears the degraded state once everything is on disk.
    pub async fn flush_pending(&self) {
        if self.shared.store_degraded.load(Ordering::Acquire) {
            let mut pending = self.shared.pending.lock().await;
            self.flush_pending_locked(&mut pending).await;
        }
    }

    async fn flush_pending_locked(&self, pending: &mut Vec<Record>) {
        if pending.is_empty() {
            self.shared.store_degraded.store(false, Ordering::Release);
            return;
        }
        match self.shared.store.commit(pending.clone()).await {
            Ok(()) => {
                tracing::info!(records = pending.len(), "the grant store is writable again; caught up");
                pending.clear();
                self.shared.store_degraded.store(false, Ordering::Release);
            }
            Err(e) => {
                self.shared.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, records = pending.len(), "the grant store still refuses writes");
            }
        }
    }

    /// Live grants, soonest expiry first.
    /// The devices with a live grant, the soonest to expire first: the
    /// order of a listing, which then reads the grants a page at a time
    /// ([`Sessions::each_live`]) instead of copying them all.
    pub fn live_devices(&self, now: SystemTime) -> Vec<Device> {
        let mut live: Vec<(SystemTime, Device)> = {
            let grants = self.shared.grants.lock();
            grants.values().filter(|g| g.is_live(now)).map(|g| (g.expires, g.device)).collect()
        };
        live.sort_unstable();
        live.into_iter().map(|(_, device)| device).collect()
    }

    /// Calls `f` with the grant of each of `devices` that is still live at
    /// `now`, in order, under one lock.
    pub fn each_live(&self, devices: &[Device], now: SystemTime, f: impl FnMut(&Grant)) {
        let grants = self.shared.grants.lock();
        devices.iter().filter_map(|d| grants.get(d)).filter(|g| g.is_live(now)).for_each(f);
    }

    pub fn active(&self, now: SystemTime) -> usize {
        let grants = self.shared.grants.lock();
        grants.values().filter(|g| g.is_live(now)).count()
    }

    /// Forgets expired grants in memory. The kernel expires them by itself
    /// and the store drops them at its next compaction.
    pub fn purge(&self, now: SystemTime) -> usize {
        let mut grants = self.shared.grants.lock();
        let before = grants.len();
        grants.retain(|g| g.is_live(now));
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
