//! Trusted devices: the venue's own screens, card readers and kiosks, which
//! pass the gate with no grant, never see the page and never time out.
//!
//! Two sources, kept apart because they are changed by different people:
//! `[[trusted]]` in the config file (the operator's list, applied again on
//! every reload) and `portico clients trust|untrust` at run time, which
//! this module makes durable in `trusted.json` in the state folder. The
//! file is small (a venue has dozens of such devices, not thousands), so
//! it is rewritten whole on every change: written beside, synced, and
//! renamed over the old one, so a crash leaves the old list or the new,
//! never half of one.
//!
//! A device trusted in the config cannot be untrusted at run time: the
//! next reload would trust it again, so the refusal says to edit the file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::grant::MacAddr;

/// The file, in the state folder, that keeps the devices trusted at run time.
pub const FILE: &str = "trusted.json";

/// One trusted device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedDevice {
    pub mac: MacAddr,
    /// What the operator calls it ("hall screen A").
    pub name: String,
}

/// Where a trusted device's trust comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Config,
    Added,
}

/// The devices trusted now: the config's, and those added at run time.
#[derive(Debug)]
pub struct TrustedList {
    configured: Vec<TrustedDevice>,
    added: Vec<TrustedDevice>,
    path: PathBuf,
}

/// Why a device could not be untrusted.
#[derive(Debug, thiserror::Error)]
pub enum UntrustError {
    #[error("{0} is trusted in the config file ([[trusted]]): remove it there and reload")]
    Configured(MacAddr),
    #[error("{0} is not a trusted device")]
    Unknown(MacAddr),
}

/// The file's form: a list of `{"mac", "name"}`.
#[derive(Serialize, Deserialize)]
struct Entry {
    mac: String,
    name: String,
}

impl TrustedList {
    /// The list for `dir`: the config's devices, and those the file keeps.
    /// A file that cannot be read is moved aside (and the reason logged)
    /// rather than stop the gateway for everyone.
    pub fn load(dir: &Path, configured: Vec<TrustedDevice>) -> TrustedList {
        let path = dir.join(FILE);
        let added = match std::fs::read(&path) {
            Ok(bytes) => match parse(&bytes) {
                Ok(added) => added,
                Err(e) => {
                    let aside = dir.join(format!("{FILE}.broken"));
                    tracing::error!(file = %path.display(), error = %e, aside = %aside.display(),
                        "the list of devices trusted at run time cannot be read; moving it aside");
                    let _ = std::fs::rename(&path, &aside);
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot read the devices trusted at run time");
                Vec::new()
            }
        };
        TrustedList { configured, added, path }
    }

    /// Every trusted device, the config's first, each MAC once.
    pub fn all(&self) -> Vec<(TrustedDevice, Source)> {
        let configured = self.configured.iter().map(|d| (d.clone(), Source::Config));
        let added = self
            .added
            .iter()
            .filter(|d| !self.configured.iter().any(|c| c.mac == d.mac))
            .map(|d| (d.clone(), Source::Added));
        configured.chain(added).collect()
    }

    /// The MACs the packet filter lets through.
    pub fn macs(&self) -> Vec<MacAddr> {
        self.all().into_iter().map(|(d, _)| d.mac).collect()
    }

    pub fn get(&self, mac: MacAddr) -> Option<&TrustedDevice> {
        self.configured.iter().chain(&self.added).find(|d| d.mac == mac)
    }

    /// The list with `device` trusted (or renamed), not yet saved.
    pub fn with(&self, device: TrustedDevice) -> TrustedList {
        let mut added: Vec<TrustedDevice> = self.added.iter().filter(|d| d.mac != device.mac).cloned().collect();
        added.push(device);
        TrustedList { configured: self.configured.clone(), added, path: self.path.clone() }
    }

    /// The list without `mac`, not yet saved.
    pub fn without(&self, mac: MacAddr) -> Result<TrustedList, UntrustError> {
        if self.configured.iter().any(|d| d.mac == mac) {
            return Err(UntrustError::Configured(mac));
        }
        if !self.added.iter().any(|d| d.mac == mac) {
            return Err(UntrustError::Unknown(mac));
        }
        let added = self.added.iter().filter(|d| d.mac != mac).cloned().collect();
        Ok(TrustedList { configured: self.configured.clone(), added, path: self.path.clone() })
    }

    /// The list with the config's devices replaced (a reload).
    pub fn with_configured(&self, configured: Vec<TrustedDevice>) -> TrustedList {
        TrustedList { configured, added: self.added.clone(), path: self.path.clone() }
    }

    /// Writes the devices added at run time, atomically.
    pub fn save(&self) -> std::io::Result<()> {
        let entries: Vec<Entry> =
            self.added.iter().map(|d| Entry { mac: d.mac.to_string(), name: d.name.clone() }).collect();
        let mut text = serde_json::to_vec_pretty(&entries).map_err(std::io::Error::other)?;
        text.push(b'\n');
        crate::durable::replace(&self.path, &text)
    }
}

fn parse(bytes: &[u8]) -> Result<Vec<TrustedDevice>, String> {
    let entries: Vec<Entry> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    entries
        .into_iter()
        .map(|e| {
            let mac = e.mac.parse().map_err(|_| format!("{:?} is not a MAC address", e.mac))?;
            Ok(TrustedDevice { mac, name: e.name })
        })
        .collect()
}

/// Checks a device's name as the operator wrote it.
pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err("must be at most 64 characters, without control characters".into());
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(mac: &str, name: &str) -> TrustedDevice {
        TrustedDevice { mac: mac.parse().unwrap(), name: name.into() }
    }

    #[test]
    fn added_devices_survive_a_restart_and_config_ones_are_not_untrusted() {
        let dir = tempfile::tempdir().unwrap();
        let configured = vec![device("02:00:00:00:00:01", "hall screen A")];
        let list = TrustedList::load(dir.path(), configured.clone());
        let list = list.with(device("02:00:00:00:00:02", "ticket kiosk"));
        list.save().unwrap();
        let again = TrustedList::load(dir.path(), configured);
        assert_eq!(again.macs(), list.macs());
        assert_eq!(again.all()[1], (device("02:00:00:00:00:02", "ticket kiosk"), Source::Added));
        let mac = "02:00:00:00:00:01".parse().unwrap();
        assert!(matches!(again.without(mac), Err(UntrustError::Configured(_))));
        let gone = again.without("02:00:00:00:00:02".parse().unwrap()).unwrap();
        gone.save().unwrap();
        assert_eq!(TrustedList::load(dir.path(), Vec::new()).macs(), Vec::<MacAddr>::new());
    }

    #[test]
    fn a_device_in_both_lists_is_listed_once_as_the_configs() {
        let dir = tempfile::tempdir().unwrap();
        let list = TrustedList::load(dir.path(), vec![device("02:00:00:00:00:01", "screen")]);
        let list = list.with(device("02:00:00:00:00:01", "other name"));
        assert_eq!(list.all(), vec![(device("02:00:00:00:00:01", "screen"), Source::Config)]);
    }

    #[test]
    fn a_broken_file_is_moved_aside_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"[{\"mac\": \"nonsense\"").unwrap();
        let list = TrustedList::load(dir.path(), Vec::new());
        assert!(list.all().is_empty());
        assert!(dir.path().join("trusted.json.broken").exists());
    }
}
