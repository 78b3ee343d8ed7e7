//! The grant store's loader: whatever is in `grants.journal` (a torn
//! write, a disk error, a hand edit) opens to the grants it can trust or to
//! a `StoreError`, never a panic; and once open, an appended grant is there
//! on the next open, because replay must never stop before it.
//!
//! Input: the bytes of `grants.journal`, written into a folder made once per
//! process in the temporary directory (run.sh points `TMPDIR` at a scratch
//! folder on tmpfs, since every open and append fsyncs).

#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use portico::grant::{Device, Grant, MacAddr, from_unix_ms, to_unix_ms};
use portico::store::{Journal, Record};

fn folder() -> &'static Path {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("portico-fuzz-journal-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the state folder");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = folder();
    // Each input starts from just its own journal: no file left by the last.
    for entry in fs::read_dir(dir).expect("list the state folder") {
        fs::remove_file(entry.expect("list the state folder").path()).expect("empty the state folder");
    }
    fs::write(dir.join("grants.journal"), data).expect("write grants.journal");

    let now = SystemTime::now();
    let Ok((mut journal, _live)) = Journal::open(dir, now) else {
        return;
    };
    // Whole milliseconds, the journal's resolution, so the grant read back
    // compares equal.
    let mut grant = Grant::new(
        Device::Mac(MacAddr([0x02, 0x00, 0x5e, 0x10, 0x00, 0x0a])),
        [10, 99, 0, 1].into(),
        from_unix_ms(to_unix_ms(now + Duration::from_secs(3600))),
    );
    grant.learn("fd70::99:1".parse().expect("an IPv6 address"));
    journal.append(&[Record::Grant(grant.clone())]).expect("append to a journal that opened");
    drop(journal);

    let (_, live) = Journal::open(dir, now).expect("reopen a journal that was just written");
    assert!(live.contains(&grant), "appended grant lost on reopen; live grants: {live:?}");
});
