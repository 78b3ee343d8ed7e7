//! The request classifier: whatever a client puts in `Host` and the path
//! must come back as "a probe" or "not a probe", never as a panic.
//!
//! Input: bytes split at the first `\n` into host and path (lossy UTF-8, as
//! the router sees a header it could not decode). The same host also goes
//! through `split_host_port` (how the router strips a port) and both halves
//! through `is_valid_tag` (which guards the `?lang=` value before it is used
//! in a URL or a file name).

#![no_main]

use libfuzzer_sys::fuzz_target;
use portico::config::split_host_port;
use portico::probes;
use portico::lang::is_valid_tag;

fuzz_target!(|data: &[u8]| {
    let (host, path) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let host = String::from_utf8_lossy(host);
    let path = String::from_utf8_lossy(path);

    // A probe is only ever recognised on one of the known probe hosts.
    if probes::classify(&host, &path).is_some() {
        assert!(probes::all().any(|(h, _, _)| h == host), "{host:?} {path:?} classified as a probe");
    }

    if let Some((h, _port)) = split_host_port(&host) {
        assert!(!h.is_empty(), "split_host_port({host:?}) returned an empty host");
        // The host then goes through classify too, as the router does.
        let _ = probes::classify(h, &path);
    }

    // A valid tag is safe to place in `locales/<tag>.toml` and in a URL.
    for text in [&*host, &*path] {
        if is_valid_tag(text) {
            assert!(text.len() <= 35 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{text:?}");
        }
    }
});
