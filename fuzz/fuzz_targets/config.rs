//! The config parser: any text an operator (or a broken deploy) puts in
//! `portico.toml` gives a `Config` or a list of problems, never a panic.
//!
//! Input: bytes as lossy UTF-8 (the loader reads the file as UTF-8 text and
//! reports a file that is not). The same text goes through `parse_duration`,
//! whole and line by line, since durations come from several keys.

#![no_main]

use std::path::Path;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use portico::config::{Config, parse_duration};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    match Config::from_toml(&text, Path::new("/nonexistent")) {
        Ok(config) => {
            // What validation promises to the rest of the code.
            let session = config.portal.session;
            assert!(session >= Duration::from_secs(1) && session <= Duration::from_secs(30 * 86_400), "{session:?}");
            assert!(config.portal.public_url.url.ends_with('/'), "{:?}", config.portal.public_url);
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "Err with no problem for {text:?}");
            // `portico check` prints every one.
            for problem in &problems {
                let _ = problem.to_string();
            }
        }
    }

    let _ = parse_duration(&text);
    for line in text.lines().take(64) {
        if let Ok(d) = parse_duration(line) {
            // Every unit is a whole number of milliseconds.
            assert_eq!(d.subsec_nanos() % 1_000_000, 0, "{line:?} → {d:?}");
        }
    }
});
