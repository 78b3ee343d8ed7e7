//! A backend for tests: the gate, the grant table and a whole in-process
//! Portico run on it without root, and a test tells it to refuse.

use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::time::{Duration, SystemTime};

use super::{Allowed, Firewall, FirewallError, Found};
use crate::grant::{Device, MacAddr};

/// A backend that changes nothing outside the process: it records what
/// it is asked, in order, and keeps a generation that its own changes and
/// [`Recording::someone_else`] move on. Told to (`fail`), it refuses every
/// change as a kernel would.
#[derive(Default)]
pub struct Recording {
    pub generation: AtomicU32,
    pub checks: AtomicU32,
    /// What `check` answers.
    pub intact: AtomicBool,
    /// Whether it can tell its generation at all.
    pub blind: bool,
    /// Every change is refused while set.
    pub fail: AtomicBool,
    /// Each allow's fresh and renewed grants, in order.
    pub allowed: Mutex<Vec<(Vec<Allowed>, Vec<Allowed>)>>,
    /// Each revoke's grants, in order.
    pub revoked: Mutex<Vec<Vec<Allowed>>>,
    /// How long an allow takes, in milliseconds.
    pub allow_ms: AtomicU64,
    /// Every call that changes something, in order.
    pub calls: Mutex<Vec<&'static str>>,
    /// Someone else changes the ruleset right after each install.
    pub interloper: AtomicBool,
    /// How long an install takes, in milliseconds.
    pub install_ms: AtomicU64,
    /// Grants `check` finds missing (when `intact`).
    pub lost: Mutex<Vec<Allowed>>,
    /// How long a comparison takes, in milliseconds, and whether one is
    /// under way.
    pub check_ms: AtomicU64,
    pub checking: AtomicBool,
    /// The trusted devices of each install and trust, in order.
    pub trusted: Mutex<Vec<Vec<MacAddr>>>,
    /// What `rules_intact` answers.
    pub rules: Mutex<Option<bool>>,
    /// Whether the gate is open, as the backend keeps it.
    pub open: AtomicBool,
    /// Each install's grants (by device) and whether it installed the
    /// gate open.
    pub installs: Mutex<Vec<(Vec<Device>, bool)>>,
}

impl Recording {
    /// Refuses every change from now on, or takes them again.
    pub fn refuse(&self, refuse: bool) {
        self.fail.store(refuse, Relaxed);
    }

    /// The devices of every allow so far, fresh and renewed, in order.
    pub fn allowed_devices(&self) -> Vec<Device> {
        let allowed = self.allowed.lock().unwrap();
        allowed.iter().flat_map(|(fresh, renewed)| fresh.iter().chain(renewed)).map(|a| a.device).collect()
    }

    /// Someone else changes the packet filter.
    pub fn someone_else(&self) {
        self.generation.fetch_add(1, Relaxed);
    }

    fn change(&self) -> Result<(), FirewallError> {
        if self.fail.load(Relaxed) {
            self.calls.lock().unwrap().push("refused");
            return Err(FirewallError::Failed("refused".into()));
        }
        self.generation.fetch_add(1, Relaxed);
        Ok(())
    }
}

impl Firewall for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn install(&self, live: &[Allowed], trusted: &[MacAddr], _: SystemTime) -> Result<(), FirewallError> {
        std::thread::sleep(Duration::from_millis(self.install_ms.load(Relaxed)));
        self.calls.lock().unwrap().push("install");
        self.change()?;
        self.trusted.lock().unwrap().push(trusted.to_vec());
        let mut devices: Vec<Device> = live.iter().map(|a| a.device).collect();
        devices.sort_by_key(|d| d.to_string());
        self.installs.lock().unwrap().push((devices, self.open.load(Relaxed)));
        if self.interloper.load(Relaxed) {
            self.someone_else();
        }
        Ok(())
    }
    fn validate(&self) -> Result<(), FirewallError> {
        if self.fail.load(Relaxed) { Err(FirewallError::Unavailable("no nft".into())) } else { Ok(()) }
    }
    fn allow(&self, fresh: &[Allowed], renewed: &[Allowed], _: SystemTime) -> Result<(), FirewallError> {
        std::thread::sleep(Duration::from_millis(self.allow_ms.load(Relaxed)));
        self.calls.lock().unwrap().push("allow");
        self.change()?;
        self.allowed.lock().unwrap().push((fresh.to_vec(), renewed.to_vec()));
        Ok(())
    }
    fn revoke(&self, gone: &[Allowed]) -> Result<(), FirewallError> {
        self.change()?;
        self.revoked.lock().unwrap().push(gone.to_vec());
        Ok(())
    }
    fn trust(&self, trusted: &[MacAddr]) -> Result<(), FirewallError> {
        self.calls.lock().unwrap().push("trust");
        // As nft: a script with nothing to change commits nothing.
        let last = self.trusted.lock().unwrap().last().cloned().unwrap_or_default();
        if last != trusted || self.fail.load(Relaxed) {
            self.change()?;
        }
        self.trusted.lock().unwrap().push(trusted.to_vec());
        Ok(())
    }
    fn set_open(&self, open: bool) -> Result<(), FirewallError> {
        self.calls.lock().unwrap().push("set_open");
        // As nftables: the state is kept even if the kernel refuses.
        self.open.store(open, Relaxed);
        self.change()
    }
    fn generation(&self) -> Option<u32> {
        (!self.blind).then(|| self.generation.load(Relaxed))
    }
    fn rules_intact(&self) -> Option<bool> {
        *self.rules.lock().unwrap()
    }
    fn check(&self, _: &[Allowed], _: &[MacAddr], _: SystemTime) -> Result<Found, FirewallError> {
        self.checking.store(true, Relaxed);
        std::thread::sleep(Duration::from_millis(self.check_ms.load(Relaxed)));
        self.checking.store(false, Relaxed);
        self.checks.fetch_add(1, Relaxed);
        let lost = self.lost.lock().unwrap().clone();
        Ok(match self.intact.load(Relaxed) {
            false => Found::Broken,
            true if lost.is_empty() => Found::Intact,
            true => Found::Missing(lost),
        })
    }
    fn ruleset(&self) -> String {
        String::new()
    }
}
