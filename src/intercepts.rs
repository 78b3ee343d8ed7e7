//! Connections the firewall redirected to Portico on their way to another
//! host, tracked per device so that they end the moment the device is
//! granted.
//!
//! Why: a phone's browser opens connections before *Connect* (to the page
//! it wanted, a probe, speculative preconnects), and the gateway's NAT
//! sends them to Portico. Conntrack keeps that mapping for the life of each
//! connection, grant or no grant, so a browser that reuses one after the
//! grant lands on Portico again instead of the internet. Answers to foreign
//! hosts therefore close their connection (`router`), and the connections
//! still open when the grant is made (idle, between requests, or never yet
//! used) are closed here. The phone's next request opens a fresh connection,
//! which the firewall now lets through.
//!
//! What must stay true: a tracked connection is forgotten when it ends (the
//! [`Intercepted`] guard's `Drop`), so the map holds only open connections;
//! a close asked for before the connection's task waits for it is not lost
//! (`Notify` keeps the permit).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::grant::Device;

/// Each device's open intercepted connections: an id and the signal that
/// closes it.
type Open = HashMap<Device, Vec<(u64, Arc<Notify>)>>;

/// The open intercepted connections of every device.
#[derive(Default)]
pub struct Intercepts {
    /// A `std` mutex: one map operation per connection open, close or
    /// grant, never held across an await.
    open: Mutex<Open>,
    next_id: AtomicU64,
}

/// One tracked connection; dropping it forgets the connection.
pub struct Intercepted {
    registry: Arc<Intercepts>,
    device: Device,
    id: u64,
    close: Arc<Notify>,
}

impl Intercepts {
    /// Starts tracking a connection of `device`.
    pub fn track(self: &Arc<Self>, device: Device) -> Intercepted {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        self.lock().entry(device).or_default().push((id, close.clone()));
        Intercepted { registry: self.clone(), device, id, close }
    }

    /// Asks every open intercepted connection of `device` to close now;
    /// returns how many there were.
    pub fn close(&self, device: Device) -> usize {
        let open = self.lock().remove(&device).unwrap_or_default();
        for (_, close) in &open {
            close.notify_one();
        }
        open.len()
    }

    /// Open intercepted connections, all devices together.
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Intercepted {
    /// Resolves once the device has been granted.
    pub async fn closed(&self) {
        self.close.notified().await;
    }
}

impl Drop for Intercepted {
    fn drop(&mut self) {
        let mut open = self.registry.lock();
        if let Some(list) = open.get_mut(&self.device) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                open.remove(&self.device);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn device(last: u8) -> Device {
        Device::Mac(crate::grant::MacAddr([2, 0, 0, 0, 0, last]))
    }

    #[tokio::test]
    async fn a_grant_closes_every_connection_of_that_device_and_no_other() {
        let registry = Arc::new(Intercepts::default());
        let (a1, a2, b) = (registry.track(device(1)), registry.track(device(1)), registry.track(device(2)));
        assert_eq!(registry.len(), 3);
        // Asked before anyone waits: the permit is kept.
        assert_eq!(registry.close(device(1)), 2);
        tokio::time::timeout(Duration::from_secs(1), a1.closed()).await.expect("a1 closes");
        tokio::time::timeout(Duration::from_secs(1), a2.closed()).await.expect("a2 closes");
        let still_open = tokio::time::timeout(Duration::from_millis(20), b.closed()).await;
        assert!(still_open.is_err(), "another device's connection is left alone");
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.close(device(1)), 0);
    }

    #[test]
    fn a_connection_that_ends_is_forgotten() {
        let registry = Arc::new(Intercepts::default());
        let first = registry.track(device(1));
        let second = registry.track(device(1));
        drop(first);
        assert_eq!(registry.len(), 1);
        drop(second);
        assert!(registry.is_empty());
        assert!(registry.lock().is_empty(), "no empty list is left behind");
    }
}
