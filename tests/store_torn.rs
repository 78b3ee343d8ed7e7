//! A crash can stop an append after any byte. Whatever prefix of the last
//! record reached the disk, the journal must reopen with every earlier
//! (acknowledged) grant, without the torn one, and must cut the torn bytes
//! off so that the next append is not hidden behind them.

use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use portico::grant::{Device, Grant, from_unix_ms};
use portico::store::{Journal, Record};

const NOW_MS: u64 = 1_790_000_000_000;
const JOURNAL: &str = "grants.journal";

fn now() -> SystemTime {
    from_unix_ms(NOW_MS)
}

/// Live for an hour; MACs ascend so the loaded (device-sorted) order is `n`
/// order; even ones were also seen on an IPv6 address.
fn grant(n: u8) -> Grant {
    let mac = format!("02:00:5e:10:00:{n:02x}").parse().unwrap();
    let expires = from_unix_ms(NOW_MS + 3_600_000 + u64::from(n));
    let mut grant = Grant::new(Device::Mac(mac), IpAddr::from([10, 0, 0, n]), expires);
    if n.is_multiple_of(2) {
        grant.learn(IpAddr::from([0xfd70, 0, 0, 0, 0, 0, 0, u16::from(n)]));
    }
    grant
}

/// The journal bytes after five separate appends, and where the last record starts.
fn five_grants() -> (Vec<u8>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path(), now()).unwrap();
    for n in 1..=5 {
        journal.append(&[Record::Grant(grant(n))]).unwrap();
    }
    drop(journal);
    let bytes = fs::read(dir.path().join(JOURNAL)).unwrap();
    assert_eq!(bytes.last(), Some(&b'\n'));
    let last_start = bytes[..bytes.len() - 1].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    (bytes, last_start)
}

fn open_with(bytes: &[u8]) -> (tempfile::TempDir, Journal, Vec<Grant>) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(JOURNAL), bytes).unwrap();
    let (journal, loaded) = Journal::open(dir.path(), now()).unwrap();
    (dir, journal, loaded)
}

fn reopen(dir: &Path) -> Vec<Grant> {
    Journal::open(dir, now()).unwrap().1
}

#[test]
fn complete_journal_loads_all_five() {
    let (bytes, _) = five_grants();
    let (_dir, _journal, loaded) = open_with(&bytes);
    assert_eq!(loaded, (1..=5).map(grant).collect::<Vec<_>>());
}

#[test]
fn every_torn_last_record_is_dropped_and_cut_off() {
    let (bytes, last_start) = five_grants();
    let first_four: Vec<Grant> = (1..=4).map(grant).collect();
    for cut in last_start..bytes.len() {
        let (dir, mut journal, loaded) = open_with(&bytes[..cut]);
        assert_eq!(loaded, first_four, "torn at byte {cut}");
        let on_disk = fs::read(dir.path().join(JOURNAL)).unwrap();
        assert_eq!(on_disk, &bytes[..last_start], "torn at byte {cut}");

        journal.append(&[Record::Grant(grant(9))]).unwrap();
        drop(journal);
        let mut expected = first_four.clone();
        expected.push(grant(9));
        assert_eq!(reopen(dir.path()), expected, "torn at byte {cut}");
    }
}

#[test]
fn a_flipped_bit_in_the_last_record_drops_only_that_record() {
    let (bytes, last_start) = five_grants();
    let first_four: Vec<Grant> = (1..=4).map(grant).collect();
    for at in last_start..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x01;
        let (_dir, _journal, loaded) = open_with(&damaged);
        assert_eq!(loaded, first_four, "bit flipped at byte {at}");
    }
}
