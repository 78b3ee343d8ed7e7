//! Telling systemd how the service is doing (`Type=notify`, sd_notify(3)):
//! `READY=1` once every listener is bound and the firewall's rules are
//! installed, `RELOADING=1` … `READY=1` around a reload, `STOPPING=1` when a
//! stop begins, and `WATCHDOG=1` while the service still answers.
//!
//! The protocol is one datagram per message to the Unix socket named in
//! `$NOTIFY_SOCKET` (a path, or an abstract name written `@name`), so it
//! is written here with the standard library rather than a crate. Outside
//! systemd the variable is unset and every call does nothing.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where systemd listens, read once at start-up.
#[derive(Clone, Debug)]
pub struct Notifier {
    target: Option<SocketAddr>,
    /// `$WATCHDOG_USEC`, when systemd asks for keep-alives.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd sets; an unusable one is logged and
    /// ignored (the service runs, only unsupervised).
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            let addr = match path.strip_prefix('@') {
                Some(name) => abstract_addr(name.as_bytes()),
                None => SocketAddr::from_pathname(&path),
            };
            addr.map_err(|e| tracing::warn!(socket = %path, error = %e, "NOTIFY_SOCKET is not usable")).ok()
        });
        // Only for this process: systemd sets WATCHDOG_PID when it may differ.
        let ours = std::env::var("WATCHDOG_PID").map_or(true, |pid| pid == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|usec| *usec > 0 && ours)
            .map(Duration::from_micros);
        Notifier { target, watchdog }
    }

    /// One that says nothing (tests, the demo).
    pub fn none() -> Notifier {
        Notifier { target: None, watchdog: None }
    }

    /// How often systemd wants to hear `WATCHDOG=1`, if it does.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.target.is_some())
    }

    /// Sends `state` (`READY=1`, …); a failure is logged, never fatal.
    pub fn send(&self, state: &str) {
        let Some(target) = &self.target else { return };
        let sent = UnixDatagram::unbound().and_then(|socket| socket.send_to_addr(state.as_bytes(), target));
        if let Err(e) = sent {
            tracing::debug!(state, error = %e, "could not notify systemd");
        }
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &[u8]) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt as _;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_: &[u8]) -> std::io::Result<SocketAddr> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "abstract sockets are Linux's"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_socket_systemd_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier { target: Some(SocketAddr::from_pathname(&path).unwrap()), watchdog: None };
        notifier.send("READY=1");
        let mut buf = [0; 64];
        let n = systemd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        // Outside systemd, nothing happens.
        Notifier::none().send("READY=1");
        assert_eq!(Notifier::none().watchdog(), None);
    }
}
