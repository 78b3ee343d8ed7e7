//! [`Counts`]: the handle the router tells of each splash view and grant,
//! and the task that writes today's file.
//!
//! The hot path takes one `std` mutex for a few set and counter updates: a
//! `std` mutex, not tokio's, because it is never held across an `.await`,
//! and the day and hour come from a cache that a comparison answers until
//! the venue's next hour. Nothing on it touches the disk.
//!
//! Durability: the writer task looks every second and rewrites today's
//! file when something changed (so a `kill -9` loses at most the last
//! second), a clean stop writes once more ([`Counts::flush`]), and a day
//! that ends is written closed, without its devices. A write that fails
//! (a full disk) is logged, the counts stay in memory, and the next second
//! tries again, as the grant store does.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::day_file::{self, DayFile};
use super::zone::{HourCache, unix_secs};
use super::{At, Day, DayCounts, Device, Platform, Tally, Zone};

/// How often today's file is rewritten when something changed.
pub const WRITE_EVERY: Duration = Duration::from_secs(1);

/// What a page showed: its language, campaign and the phone's platform.
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    pub lang: &'a str,
    pub campaign: &'a str,
    pub platform: Platform,
}

impl<'a> Seen<'a> {
    fn at(self, hour: u8, now: i64) -> At<'a> {
        At { lang: self.lang, campaign: self.campaign, platform: self.platform, hour, now }
    }
}

#[derive(Clone)]
pub struct Counts {
    shared: Arc<Shared>,
}

struct Shared {
    folder: PathBuf,
    keep_days: u32,
    current: Mutex<Current>,
    /// The last write failed; cleared by the next that succeeds.
    failing: AtomicBool,
}

struct Current {
    /// The venue's zone; a reload may change it.
    zone: Zone,
    today: DayCounts,
    clock: HourCache,
    /// Changed since last written.
    dirty: bool,
    /// Days that ended, closed, not yet written.
    ended: Vec<DayCounts>,
    /// Whether the grants running when the day began are in `today`.
    seeded: bool,
}

/// What one write puts on disk.
struct Snapshot {
    ended: Vec<DayCounts>,
    today: DayCounts,
}

impl Counts {
    /// Opens the counts folder of `state_dir`: closes the days a stop
    /// across midnight left open, deletes those beyond `keep_days`, and
    /// takes up today where the last run left it.
    pub fn open(state_dir: &Path, zone: Zone, keep_days: u32, now: SystemTime) -> Counts {
        let folder = day_file::folder(state_dir);
        let date = zone.day(unix_secs(now));
        let (closed, deleted) = day_file::tidy(&folder, date, keep_days);
        if closed + deleted > 0 {
            tracing::info!(closed, deleted, "past days of counts closed or deleted");
        }
        let today = day_file::load_day(&folder, date)
            .filter(DayCounts::is_open)
            .unwrap_or_else(|| DayCounts::open(date, random_key()));
        let current =
            Current { zone, today, clock: HourCache::default(), dirty: false, ended: Vec::new(), seeded: false };
        Counts {
            shared: Arc::new(Shared {
                folder,
                keep_days,
                current: Mutex::new(current),
                failing: AtomicBool::new(false),
            }),
        }
    }

    /// A splash view by `device`. `still_granted` is asked (under the
    /// counts' lock) only for a device recorded as granted until later.
    pub fn splash(&self, device: &Device, seen: Seen, now: SystemTime, still_granted: impl FnOnce() -> bool) {
        let secs = unix_secs(now);
        let mut current = self.current(secs);
        let at = seen.at(current.hour(secs), secs);
        current.today.splash(device, at, still_granted);
        current.dirty = true;
    }

    /// A grant made for `device` until `until`.
    pub fn connected(&self, device: &Device, seen: Seen, now: SystemTime, until: SystemTime) {
        let secs = unix_secs(now);
        let mut current = self.current(secs);
        let at = seen.at(current.hour(secs), secs);
        current.today.connected(device, at, unix_secs(until));
        current.dirty = true;
    }

    /// `device` did `action` on `/welcome` of `campaign`.
    pub fn acted(&self, device: &Device, action: super::Action, campaign: &str, now: SystemTime) {
        let mut current = self.current(unix_secs(now));
        current.today.acted(device, action, campaign);
        current.dirty = true;
    }

    /// The venue's day at `now`.
    pub fn day(&self, now: SystemTime) -> Day {
        self.current(unix_secs(now)).today.date
    }

    /// The device's hash under the key of the venue's day at `now`.
    pub fn device_hash(&self, device: &Device, now: SystemTime) -> u64 {
        let current = self.current(unix_secs(now));
        // Today is always open: it is closed only as the next day opens.
        current.today.device_hash(device).unwrap_or_default()
    }

    /// Whether the last write of the counts failed.
    pub fn degraded(&self) -> bool {
        self.shared.failing.load(Ordering::Relaxed)
    }

    /// Today's numbers, as the venue's clock has it at `now`.
    pub fn today(&self, now: SystemTime) -> (Day, Tally) {
        let current = self.current(unix_secs(now));
        (current.today.date, current.today.tally.clone())
    }

    /// The numbers of the `days` days before today, oldest first: from
    /// their files, or from memory for a day that ended and is not yet
    /// written. A day without a file (nobody came, or it was before the
    /// first start) is left out.
    pub fn past(&self, days: u32, now: SystemTime) -> Vec<(Day, Tally)> {
        let (today, unwritten): (Day, Vec<(Day, Tally)>) = {
            let current = self.current(unix_secs(now));
            (current.today.date, current.ended.iter().map(|d| (d.date, d.tally.clone())).collect())
        };
        let from = today.minus_days(i64::from(days));
        let mut past: Vec<(Day, Tally)> =
            day_file::read_days(&self.shared.folder, Some(from), Some(today.minus_days(1)))
                .into_iter()
                .map(|d| (d.date, d.tally))
                .filter(|(day, _)| !unwritten.iter().any(|(u, _)| u == day))
                .collect();
        past.extend(unwritten.into_iter().filter(|(day, _)| *day >= from));
        past.sort_by_key(|(day, _)| *day);
        past
    }

    /// The zone a reload set. Today goes on under the new zone's clock;
    /// if its date is already later, the day ends now.
    pub fn set_zone(&self, zone: Zone) {
        let mut current = self.shared.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.zone != zone {
            current.zone = zone;
            current.clock = HourCache::default();
        }
    }

    /// The lock, with today turned to the day of `secs` first. A clock set
    /// back into an earlier day keeps counting into today: a closed day is
    /// never reopened.
    fn current(&self, secs: i64) -> MutexGuard<'_, Current> {
        let mut current = self.shared.current.lock().unwrap_or_else(|e| e.into_inner());
        let Current { zone, clock, .. } = &mut *current;
        let (day, _) = clock.local(zone, secs);
        if day > current.today.date {
            current.turn(day);
        }
        current
    }

    /// Carries the running grants into today once, then takes what must be
    /// written, if anything changed.
    fn take(&self, now: SystemTime, running: Option<&Running>) -> Option<Snapshot> {
        let secs = unix_secs(now);
        let unseeded = !self.current(secs).seeded;
        // Read before the counts' lock, so the two locks are never taken
        // in the other order than a splash view takes them.
        let running: Vec<(Device, i64)> = match (unseeded, running) {
            (true, Some(running)) => {
                running(now).into_iter().map(|(device, until)| (device, unix_secs(until))).collect()
            }
            _ => Vec::new(),
        };
        let mut current = self.current(secs);
        if unseeded && !current.seeded {
            running.iter().for_each(|(device, until)| current.today.carry_grant(device, *until));
            current.seeded = true;
            current.dirty |= !running.is_empty();
        }
        if !current.dirty && current.ended.is_empty() {
            return None;
        }
        current.dirty = false;
        Some(Snapshot { ended: std::mem::take(&mut current.ended), today: current.today.clone() })
    }

    /// Writes a snapshot; on failure puts it back to be tried again.
    fn write(&self, snapshot: Snapshot) {
        let folder = &self.shared.folder;
        let mut result = Ok(());
        let mut unwritten = Vec::new();
        for day in snapshot.ended {
            match DayFile::save(folder, &day) {
                Ok(()) => {
                    let deleted = day_file::prune(folder, snapshot.today.date, self.shared.keep_days);
                    if deleted > 0 {
                        tracing::info!(deleted, "days of counts beyond state.retention deleted");
                    }
                }
                Err(e) => {
                    result = Err(e);
                    unwritten.push(day);
                }
            }
        }
        if result.is_ok() {
            result = DayFile::save(folder, &snapshot.today);
        }
        match result {
            Ok(()) => {
                if self.shared.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("the counts are written again");
                }
            }
            Err(e) => {
                if !self.shared.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(folder = %folder.display(), error = %e,
                        "cannot write the counts; counting on in memory and retrying every second");
                }
                let mut current = self.shared.current.lock().unwrap_or_else(|e| e.into_inner());
                current.dirty = true;
                unwritten.append(&mut current.ended);
                current.ended = unwritten;
            }
        }
    }

    /// Writes what changed now (a clean stop).
    pub async fn flush(&self, running: &Running) {
        if let Some(snapshot) = self.take(SystemTime::now(), Some(running)) {
            let counts = self.clone();
            let _ = tokio::task::spawn_blocking(move || counts.write(snapshot)).await;
        }
    }

    /// Starts the task that writes every [`WRITE_EVERY`]; it stops when
    /// the returned guard is dropped.
    pub fn spawn_writer(&self, running: Box<Running>) -> Writer {
        let counts = self.clone();
        Writer(tokio::spawn(async move {
            let mut tick = tokio::time::interval(WRITE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Some(snapshot) = counts.take(SystemTime::now(), Some(&*running)) {
                    let counts = counts.clone();
                    let _ = tokio::task::spawn_blocking(move || counts.write(snapshot)).await;
                }
            }
        }))
    }
}

impl Current {
    /// The venue's hour at `secs`.
    fn hour(&mut self, secs: i64) -> u8 {
        self.clock.local(&self.zone, secs).1
    }

    /// The day is over: it is closed (key and hashes dropped) and queued to
    /// be written; the new day has a new key.
    fn turn(&mut self, day: Day) {
        let mut ended = std::mem::replace(&mut self.today, DayCounts::open(day, random_key()));
        ended.close();
        self.ended.push(ended);
        self.seeded = false;
        self.dirty = true;
    }
}

/// The grants running at a time, with their ends: each device on the
/// grants (the grant table's, see `sessions`) when the counts begin, counts
/// as connected today. Given by the caller, so the counts need nothing of
/// the grant table.
pub type Running = dyn Fn(SystemTime) -> Vec<(Device, SystemTime)> + Send + Sync;

/// The writer task, aborted when dropped.
pub struct Writer(tokio::task::JoinHandle<()>);

impl Drop for Writer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A fresh 128-bit day key from the operating system.
fn random_key() -> [u64; 2] {
    let mut bytes = [0u8; 16];
    if let Err(e) = getrandom::getrandom(&mut bytes) {
        // Not expected on Linux; std's per-process random keys then.
        tracing::warn!(error = %e, "no random bytes from the system for the day's key");
        use std::hash::{BuildHasher as _, Hasher as _};
        let state = std::collections::hash_map::RandomState::new();
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut h = state.build_hasher();
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    let (a, b) = bytes.split_at(8);
    [u64::from_le_bytes(a.try_into().expect("8 bytes")), u64::from_le_bytes(b.try_into().expect("8 bytes"))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::MacAddr;

    const SEEN: Seen = Seen { lang: "vi", campaign: "Bluezone", platform: Platform::Android };

    fn at(utc: &str) -> SystemTime {
        let secs = utc.parse::<jiff::Timestamp>().unwrap().as_second();
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    }

    #[test]
    fn a_restart_takes_up_the_day_and_midnight_closes_it() {
        let dir = tempfile::tempdir().unwrap();
        let phone = Device::Mac(MacAddr([2, 0, 0, 0, 0, 1]));
        let counts = Counts::open(dir.path(), Zone::default(), 400, at("2026-03-01T10:00:00Z"));
        counts.splash(&phone, SEEN, at("2026-03-01T10:00:00Z"), || true);
        let snapshot = counts.take(at("2026-03-01T10:00:01Z"), None).unwrap();
        counts.write(snapshot);
        assert!(counts.take(at("2026-03-01T10:00:02Z"), None).is_none(), "nothing new");

        // Restarted the same local day: the same device is not new.
        let counts = Counts::open(dir.path(), Zone::default(), 400, at("2026-03-01T16:59:00Z"));
        counts.splash(&phone, SEEN, at("2026-03-01T16:59:59Z"), || true);
        // 17:00Z is midnight in Hồ Chí Minh City: a new day.
        counts.splash(&phone, SEEN, at("2026-03-01T17:00:00Z"), || true);
        let snapshot = counts.take(at("2026-03-01T17:00:01Z"), None).unwrap();
        assert_eq!(snapshot.ended.len(), 1);
        counts.write(snapshot);
        let folder = day_file::folder(dir.path());
        let first = day_file::load_day(&folder, "2026-03-01".parse().unwrap()).unwrap();
        assert!(!first.is_open());
        assert_eq!((first.tally.total.shown, first.tally.total.views), (1, 2));
        let second = day_file::load_day(&folder, "2026-03-02".parse().unwrap()).unwrap();
        assert_eq!((second.tally.total.shown, second.tally.by_hour[0].shown), (1, 1));
    }

    #[test]
    fn a_new_zone_from_a_reload_moves_the_day_to_its_clock() {
        let dir = tempfile::tempdir().unwrap();
        let phone = Device::Mac(MacAddr([2, 0, 0, 0, 0, 1]));
        let counts = Counts::open(dir.path(), Zone::named("UTC").unwrap(), 400, at("2026-03-01T20:00:00Z"));
        counts.splash(&phone, SEEN, at("2026-03-01T20:00:00Z"), || true);
        assert_eq!(counts.today(at("2026-03-01T20:00:00Z")).0.to_string(), "2026-03-01");
        // 20:00 UTC is 03:00 the next morning in Hồ Chí Minh City.
        counts.set_zone(Zone::default());
        let (day, tally) = counts.today(at("2026-03-01T20:00:01Z"));
        assert_eq!((day.to_string(), tally.total.views), ("2026-03-02".to_owned(), 0));
        counts.splash(&phone, SEEN, at("2026-03-01T20:00:02Z"), || true);
        assert_eq!(counts.today(at("2026-03-01T20:00:03Z")).1.by_hour[3].views, 1);
        // The day before is ended, and read back with the past days.
        let past = counts.past(30, at("2026-03-01T20:00:03Z"));
        assert_eq!(
            past.iter().map(|(d, t)| (d.to_string(), t.total.views)).collect::<Vec<_>>(),
            [("2026-03-01".to_owned(), 1)]
        );
        counts.write(counts.take(at("2026-03-01T20:00:04Z"), None).unwrap());
        assert_eq!(counts.past(30, at("2026-03-01T20:00:05Z")).len(), 1, "the same day once written");
    }

    /// Issue 12's measures, printed: the cost of one splash view on the
    /// hot path, and the counts folder's size for a venue-year.
    /// `cargo test --release --lib -- --ignored counting_cost --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn counting_cost_and_a_years_size() {
        let dir = tempfile::tempdir().unwrap();
        let counts = Counts::open(dir.path(), Zone::default(), 400, at("2026-03-01T01:00:00Z"));
        let start = at("2026-03-01T01:00:00Z");
        let n = 1_000_000u32;
        let began = std::time::Instant::now();
        for i in 0..n {
            let device = Device::Mac(MacAddr([2, 0, 0, 0, (i % 3000 / 256) as u8, (i % 256) as u8]));
            let now = start + Duration::from_millis(u64::from(i) * 20);
            let seen = Seen { lang: ["vi", "en", "zh"][i as usize % 3], ..SEEN };
            counts.splash(&device, seen, now, || true);
        }
        let per = began.elapsed() / n;
        let folder = day_file::folder(dir.path());
        // A year of closed days as busy as that one, every hour and language used.
        let mut day = counts.take(at("2026-03-01T10:00:00Z"), None).unwrap().today;
        day.close();
        let mut date: Day = "2025-03-01".parse().unwrap();
        for _ in 0..365 {
            day.date = date;
            DayFile::save(&folder, &day).unwrap();
            date = Day(date.0.tomorrow().unwrap());
        }
        let bytes: u64 = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        println!("one splash view: {per:?} (3000 devices); a venue-year: 365 files, {bytes} bytes");
    }

    #[test]
    fn a_failed_write_keeps_the_counts_and_retries() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("state");
        std::fs::write(&blocker, b"a file where the folder should be").unwrap();
        let counts = Counts::open(&blocker, Zone::default(), 400, at("2026-03-01T10:00:00Z"));
        let phone = Device::Mac(MacAddr([2, 0, 0, 0, 0, 1]));
        counts.splash(&phone, SEEN, at("2026-03-01T10:00:00Z"), || true);
        counts.write(counts.take(at("2026-03-01T10:00:01Z"), None).unwrap());
        assert!(counts.degraded());
        std::fs::remove_file(&blocker).unwrap();
        counts.write(counts.take(at("2026-03-01T10:00:02Z"), None).expect("still to be written"));
        assert!(!counts.degraded());
        let day = day_file::load_day(&day_file::folder(&blocker), "2026-03-01".parse().unwrap()).unwrap();
        assert_eq!(day.tally.total.views, 1);
    }
}
