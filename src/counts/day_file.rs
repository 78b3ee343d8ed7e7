//! One day of counts on disk: `<state.dir>/counts/YYYY-MM-DD.json`.
//!
//! What must stay true:
//! - a file is replaced whole (written beside, synced, renamed, the folder
//!   synced), so a reader (`portico report` while the service runs) and a
//!   crash see the old day or the new one, never half of each;
//! - a closed day's file holds numbers only ([`DayCounts::close`]): only
//!   today's file may hold the day's key and hashes;
//! - a file that cannot be read is moved aside (`.broken`) with an error
//!   logged and the day starts again from zero, never a failed start.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Day, DayCounts};

/// The counts folder in a state folder.
pub fn folder(state_dir: &Path) -> PathBuf {
    state_dir.join("counts")
}

/// A day's file in the counts folder.
pub struct DayFile;

impl DayFile {
    pub fn path(folder: &Path, day: Day) -> PathBuf {
        folder.join(format!("{day}.json"))
    }

    /// Writes the day atomically.
    pub fn save(folder: &Path, counts: &DayCounts) -> std::io::Result<()> {
        let mut text = serde_json::to_vec(counts).map_err(std::io::Error::other)?;
        text.push(b'\n');
        crate::durable::replace(&DayFile::path(folder, counts.date), &text)
    }
}

/// The day's file, if there is one and it reads; a broken one is moved
/// aside and logged.
pub fn load_day(folder: &Path, day: Day) -> Option<DayCounts> {
    let path = DayFile::path(folder, day);
    let text = fs::read(&path).ok()?;
    match serde_json::from_slice::<DayCounts>(&text) {
        Ok(counts) if counts.date == day => Some(counts),
        Ok(_) => {
            move_aside(&path, "it holds another day than its name says");
            None
        }
        Err(e) => {
            move_aside(&path, &e.to_string());
            None
        }
    }
}

fn move_aside(path: &Path, why: &str) {
    let aside = path.with_extension("json.broken");
    tracing::error!(file = %path.display(), error = why, aside = %aside.display(),
        "a day of counts cannot be read; moving it aside, the day's numbers start again from zero");
    let _ = fs::rename(path, &aside);
}

/// The days in the folder, oldest first, as (day, path) pairs.
fn days_in(folder: &Path) -> Vec<(Day, PathBuf)> {
    let Ok(entries) = fs::read_dir(folder) else { return Vec::new() };
    let mut days: Vec<(Day, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let day = name.to_str()?.strip_suffix(".json")?.parse().ok()?;
            Some((day, e.path()))
        })
        .collect();
    days.sort();
    days
}

/// Every readable day from `from` to `to` (inclusive), oldest first, for
/// the report. Read-only: a broken file is skipped with a warning, since
/// the report may run beside the service, which owns the folder.
pub fn read_days(folder: &Path, from: Option<Day>, to: Option<Day>) -> Vec<DayCounts> {
    days_in(folder)
        .into_iter()
        .filter(|(day, _)| from.is_none_or(|f| *day >= f) && to.is_none_or(|t| *day <= t))
        .filter_map(|(day, path)| {
            let read = fs::read(&path).map_err(|e| e.to_string());
            match read.and_then(|text| serde_json::from_slice::<DayCounts>(&text).map_err(|e| e.to_string())) {
                Ok(counts) if counts.date == day => Some(counts),
                Ok(_) => {
                    eprintln!("warning: {}: holds another day than its name; skipped", path.display());
                    None
                }
                Err(e) => {
                    eprintln!("warning: {}: {e}; skipped", path.display());
                    None
                }
            }
        })
        .collect()
}

/// At start-up: closes every day before `today` still holding devices (the
/// service was stopped across a midnight), and deletes the days older
/// than `keep_days`. Returns how many files were closed and deleted.
pub fn tidy(folder: &Path, today: Day, keep_days: u32) -> (usize, usize) {
    let oldest = today.minus_days(i64::from(keep_days).saturating_sub(1));
    let (mut closed, mut deleted) = (0, 0);
    for (day, path) in days_in(folder) {
        if day < oldest {
            if fs::remove_file(&path).is_ok() {
                deleted += 1;
            }
        } else if day < today
            && let Some(mut counts) = load_day(folder, day).filter(DayCounts::is_open)
        {
            counts.close();
            match DayFile::save(folder, &counts) {
                Ok(()) => closed += 1,
                Err(e) => tracing::error!(file = %path.display(), error = %e, "cannot close a past day of counts"),
            }
        }
    }
    (closed, deleted)
}

/// Deletes the days older than `keep_days` before `today`.
pub fn prune(folder: &Path, today: Day, keep_days: u32) -> usize {
    let oldest = today.minus_days(i64::from(keep_days).saturating_sub(1));
    days_in(folder).into_iter().filter(|(day, _)| *day < oldest).filter(|(_, p)| fs::remove_file(p).is_ok()).count()
}

#[cfg(test)]
mod tests {
    use super::super::{At, Device, Platform};
    use super::*;
    use crate::grant::MacAddr;

    fn day(s: &str) -> Day {
        s.parse().unwrap()
    }

    fn grep(dir: &Path, needle: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(grep(&path, needle));
            } else if String::from_utf8_lossy(&fs::read(&path).unwrap()).contains(needle) {
                found.push(path);
            }
        }
        found
    }

    #[test]
    fn a_day_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut today = DayCounts::open(day("2026-03-01"), [7, 8]);
        let at = At { lang: "vi", campaign: "Bluezone", platform: Platform::Ios, hour: 13, now: 10 };
        today.splash(&Device::Mac(MacAddr([2, 0, 0, 0, 0, 1])), at, || true);
        DayFile::save(dir.path(), &today).unwrap();
        assert_eq!(load_day(dir.path(), today.date), Some(today.clone()));
        assert_eq!(read_days(dir.path(), None, None), vec![today]);
        assert!(!DayFile::path(dir.path(), day("2026-03-01")).with_extension("json.tmp").exists());
    }

    #[test]
    fn a_torn_or_foreign_file_is_moved_aside_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = DayFile::path(dir.path(), day("2026-03-01"));
        fs::write(&path, b"{\"date\":\"2026-03-01\",\"shown\":3,\"conn").unwrap();
        assert_eq!(load_day(dir.path(), day("2026-03-01")), None);
        assert!(!path.exists() && path.with_extension("json.broken").exists());
        let other = DayCounts::open(day("2026-03-02"), [1, 1]);
        fs::write(&path, serde_json::to_vec(&other).unwrap()).unwrap();
        assert_eq!(load_day(dir.path(), day("2026-03-01")), None, "a file for another day");
    }

    /// Issue 12: no MAC or address stays in the state folder past its day.
    #[test]
    fn after_the_day_no_key_hash_mac_or_address_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let mac = MacAddr([0x02, 0x5e, 0x10, 0xaa, 0xbb, 0xcc]);
        let ip: std::net::IpAddr = "10.23.45.67".parse().unwrap();
        let mut past = DayCounts::open(day("2026-03-01"), [0x1234_5678_9abc, 42]);
        let at = At { lang: "vi", campaign: "Bluezone", platform: Platform::Android, hour: 8, now: 10 };
        past.splash(&Device::Mac(mac), at, || true);
        past.splash(&Device::Addr(ip), at, || true);
        past.connected(&Device::Mac(mac), at, 100);
        DayFile::save(dir.path(), &past).unwrap();
        let open_text = fs::read_to_string(DayFile::path(dir.path(), past.date)).unwrap();
        assert!(open_text.contains("\"devices\""));
        // A start on a later day closes it.
        assert_eq!(tidy(dir.path(), day("2026-03-02"), 400), (1, 0));
        let closed = load_day(dir.path(), past.date).unwrap();
        assert!(!closed.is_open());
        assert_eq!((closed.tally.total.shown, closed.tally.total.connected), (2, 1));
        let text = fs::read_to_string(DayFile::path(dir.path(), past.date)).unwrap();
        for needle in ["devices", "key", &0x1234_5678_9abc_u64.to_string()] {
            assert!(!text.contains(needle), "{needle} in {text}");
        }
        for needle in [mac.to_string(), mac.to_string().replace(':', ""), ip.to_string()] {
            assert_eq!(grep(dir.path(), &needle), Vec::<PathBuf>::new(), "{needle}");
        }
    }

    #[test]
    fn days_beyond_retention_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["2025-01-01", "2026-02-28", "2026-03-01"] {
            let mut c = DayCounts::open(day(d), [0, 0]);
            c.close();
            DayFile::save(dir.path(), &c).unwrap();
        }
        assert_eq!(prune(dir.path(), day("2026-03-01"), 2), 1);
        let left: Vec<String> = read_days(dir.path(), None, None).iter().map(|c| c.date.to_string()).collect();
        assert_eq!(left, ["2026-02-28", "2026-03-01"]);
        let ranged = read_days(dir.path(), Some(day("2026-03-01")), Some(day("2026-03-01")));
        assert_eq!(ranged.len(), 1);
    }
}
