//! Daily counts per venue: how many devices were shown the notice, how many
//! connected, how many saw it again after a session of their own had
//! ended, and how many times the splash was loaded, each by language, by
//! platform and by hour, the day being the venue's (`venue.timezone`).
//!
//! This file is the counting core: pure, no clock and no I/O, so that every
//! rule below is a unit test. [`zone`] turns an instant into the venue's day
//! and hour, `day_file` keeps a day on disk, [`recorder`] is the handle
//! the router calls and the task that writes.
//!
//! # What is counted
//!
//! - `splash_views`: every `GET /` of the splash page.
//! - `devices_shown`: distinct devices that loaded the splash that day.
//! - `devices_connected`: distinct devices that tapped *Connect* and were
//!   granted that day.
//! - `devices_returning`: distinct devices that loaded the splash that day
//!   after a grant of their own had ended (expired or revoked), where that
//!   grant was live at some moment of the same day: made that day, or still
//!   running at the venue's midnight. A device whose last grant ended on an
//!   earlier day is *shown* but not *returning*: nothing that could
//!   recognise it is kept past its day (see below). This is the periodic
//!   reminder at work within a day, which with sessions of a few hours is
//!   what the province asked for.
//! - Each breakdown (language, platform, hour) counts an event where it
//!   happened: a device's `shown` goes to the language, platform and hour
//!   of its first view that day, its `connected` to those of its accept.
//!   The platform is [`Platform::from_user_agent`]'s (substring rules:
//!   `Android` → Android; `iPhone`, `iPad`, `iPod`, `CaptiveNetworkSupport`
//!   → iOS; anything else → other).
//!
//! A device is what a grant is for ([`Device`]): its MAC when the gateway
//! sees it, else its address.
//!
//! # Counting devices without keeping them
//!
//! Today's distinct devices are kept as 64-bit SipHash-1-3 values of the
//! device under a random 128-bit key drawn for that day. The hash is a
//! keyed pseudo-random function, so without the key a value says nothing
//! about the MAC behind it (a MAC has only ~2⁴⁸ values: an unkeyed hash
//! would be reversed by trying them all). At the end of the day the key and
//! the hashes are dropped and the day's file is rewritten with its numbers
//! only: from then on nothing links the counts to a device.
//!
//! Why not a HyperLogLog, which keeps no key at all: a venue sees hundreds
//! to a few thousand devices a day, where a set of 8-byte hashes is a few
//! tens of kilobytes, and the counts are exact (two devices collide in 64
//! bits with odds of about 10⁻¹²). An HLL of similar size errs by ±1–2 %,
//! which a province comparing venues day by day would see as noise, and
//! "returning" needs to know *which* device had a grant, which an HLL
//! cannot say. The key is kept only for its day, as the grant store keeps
//! MACs only for the grant's life.

mod day_file;
pub mod recorder;
pub mod zone;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::Hasher as _;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::grant::Device;
pub use crate::platform::Platform;
pub use day_file::{DayFile, folder, load_day, read_days};
pub use recorder::{Counts, Running, Seen};
pub use zone::Zone;

/// A civil date in the venue's time zone, written `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(jiff::civil::Date);

impl Day {
    pub fn new(year: i16, month: i8, day: i8) -> Option<Day> {
        jiff::civil::Date::new(year, month, day).ok().map(Day)
    }

    pub fn date(self) -> jiff::civil::Date {
        self.0
    }

    /// The day `days` before this one (saturating at the calendar's start).
    pub fn minus_days(self, days: i64) -> Day {
        Day(self.0.checked_sub(jiff::Span::new().days(days)).unwrap_or(jiff::civil::Date::MIN))
    }

    /// The day after this one (saturating at the calendar's end).
    pub fn next(self) -> Day {
        Day(self.0.tomorrow().unwrap_or(jiff::civil::Date::MAX))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.0.year(), self.0.month(), self.0.day())
    }
}

impl FromStr for Day {
    type Err = String;

    /// Only `YYYY-MM-DD`, the one form the files and the report use.
    fn from_str(s: &str) -> Result<Day, String> {
        let err = || format!("{s:?} is not a date (like 2026-01-31)");
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| s.get(r).filter(|p| p.bytes().all(|c| c.is_ascii_digit()));
        let (y, m, d) = (num(0..4).ok_or_else(err)?, num(5..7).ok_or_else(err)?, num(8..10).ok_or_else(err)?);
        Day::new(y.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?, d.parse().map_err(|_| err())?)
            .ok_or_else(err)
    }
}

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Day, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The four numbers every breakdown holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measures {
    pub shown: u64,
    pub connected: u64,
    pub returning: u64,
    pub views: u64,
}

impl Measures {
    pub fn get(&self, measure: Measure) -> u64 {
        match measure {
            Measure::Shown => self.shown,
            Measure::Connected => self.connected,
            Measure::Returning => self.returning,
            Measure::Views => self.views,
        }
    }

    pub fn get_mut(&mut self, measure: Measure) -> &mut u64 {
        match measure {
            Measure::Shown => &mut self.shown,
            Measure::Connected => &mut self.connected,
            Measure::Returning => &mut self.returning,
            Measure::Views => &mut self.views,
        }
    }
}

/// One [`Measures`] per platform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByPlatform {
    pub android: Measures,
    pub ios: Measures,
    pub other: Measures,
}

impl ByPlatform {
    pub fn get(&self, platform: Platform) -> &Measures {
        match platform {
            Platform::Android => &self.android,
            Platform::Ios => &self.ios,
            Platform::Other => &self.other,
        }
    }

    pub fn get_mut(&mut self, platform: Platform) -> &mut Measures {
        match platform {
            Platform::Android => &mut self.android,
            Platform::Ios => &mut self.ios,
            Platform::Other => &mut self.other,
        }
    }
}

/// One of the four numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    Shown,
    Connected,
    Returning,
    Views,
}

impl Measure {
    pub const ALL: [Measure; 4] = [Measure::Shown, Measure::Connected, Measure::Returning, Measure::Views];

    /// Its name in the report's columns.
    pub fn label(self) -> &'static str {
        match self {
            Measure::Shown => "shown",
            Measure::Connected => "connected",
            Measure::Returning => "returning",
            Measure::Views => "views",
        }
    }
}

/// A day's numbers: what the report prints and what a closed day's file
/// keeps, nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    #[serde(flatten)]
    pub total: Measures,
    /// By the language tag of the page shown.
    pub by_lang: BTreeMap<String, Measures>,
    /// By the name of the campaign shown (see [`crate::schedule`]). A
    /// device is counted under the campaign it saw first that day, so the
    /// campaigns' numbers add up to the day's. Absent from a day written
    /// before campaigns were counted.
    #[serde(default)]
    pub by_campaign: BTreeMap<String, Measures>,
    pub by_platform: ByPlatform,
    /// By the hour of the venue's clock, 0 to 23.
    pub by_hour: [Measures; 24],
    /// What devices did on `/welcome`, each device once a day per action.
    #[serde(default)]
    pub actions: Actions,
    /// The same, by the campaign shown.
    #[serde(default)]
    pub actions_by_campaign: BTreeMap<String, Actions>,
}

/// What a device did once online (see [`Action`]), in devices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actions {
    /// Went to the Google Play listing through `/welcome`'s button.
    pub google_play: u64,
    /// Went to the App Store listing.
    pub app_store: u64,
    /// Answered "already installed?" with yes.
    pub installed: u64,
}

impl Actions {
    pub fn get(&self, action: Action) -> u64 {
        match action {
            Action::GooglePlay => self.google_play,
            Action::AppStore => self.app_store,
            Action::Installed => self.installed,
        }
    }

    pub fn get_mut(&mut self, action: Action) -> &mut u64 {
        match action {
            Action::GooglePlay => &mut self.google_play,
            Action::AppStore => &mut self.app_store,
            Action::Installed => &mut self.installed,
        }
    }
}

/// The outcome, not only the notice: what a device did on `/welcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    GooglePlay,
    AppStore,
    Installed,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::GooglePlay, Action::AppStore, Action::Installed];

    /// Its name in the report's columns and the metrics' labels.
    pub fn label(self) -> &'static str {
        match self {
            Action::GooglePlay => "google_play",
            Action::AppStore => "app_store",
            Action::Installed => "installed",
        }
    }
}

impl Tally {
    fn add(&mut self, measure: Measure, at: &At) {
        // Looked up before inserting: the key is allocated only the first time.
        fn entry<'a>(map: &'a mut BTreeMap<String, Measures>, key: &str) -> &'a mut Measures {
            if !map.contains_key(key) {
                map.insert(key.to_owned(), Measures::default());
            }
            map.get_mut(key).expect("just inserted")
        }
        let by_lang = entry(&mut self.by_lang, at.lang);
        let by_campaign = entry(&mut self.by_campaign, at.campaign);
        let hour = &mut self.by_hour[usize::from(at.hour.min(23))];
        for m in [&mut self.total, by_lang, by_campaign, self.by_platform.get_mut(at.platform), hour] {
            *m.get_mut(measure) += 1;
        }
    }
}

/// Today's devices, as keyed hashes (see the module note); never written
/// into a closed day's file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Devices {
    /// The day's SipHash key, as two 64-bit halves.
    key: [u64; 2],
    shown: HashSet<u64>,
    connected: HashSet<u64>,
    returning: HashSet<u64>,
    /// When the grant of each device that had one live today ends (Unix
    /// seconds): what tells a returning device.
    granted: HashMap<u64, i64>,
    /// The devices that did each [`Action`] today, in its order.
    #[serde(default)]
    acted: [HashSet<u64>; 3],
}

impl Devices {
    pub fn new(key: [u64; 2]) -> Devices {
        Devices {
            key,
            shown: HashSet::new(),
            connected: HashSet::new(),
            returning: HashSet::new(),
            granted: HashMap::new(),
            acted: Default::default(),
        }
    }

    /// The device's hash under today's key. Hashed from explicit bytes,
    /// not through `derive(Hash)`, so that the same device gives the same
    /// value across a restart into another build.
    fn hash(&self, device: &Device) -> u64 {
        let mut h = siphasher::sip::SipHasher13::new_with_keys(self.key[0], self.key[1]);
        match device {
            Device::Mac(mac) => {
                h.write_u8(b'm');
                h.write(&mac.0);
            }
            Device::Addr(IpAddr::V4(ip)) => {
                h.write_u8(b'4');
                h.write(&ip.octets());
            }
            Device::Addr(IpAddr::V6(ip)) => {
                h.write_u8(b'6');
                h.write(&ip.octets());
            }
        }
        h.finish()
    }
}

/// Where and when an event happened, as the breakdowns need it.
#[derive(Clone, Copy, Debug)]
pub struct At<'a> {
    /// The language tag of the page.
    pub lang: &'a str,
    /// The name of the campaign shown.
    pub campaign: &'a str,
    pub platform: Platform,
    /// The venue's hour, 0 to 23.
    pub hour: u8,
    /// Unix seconds.
    pub now: i64,
}

/// One day of counts: the numbers, and while the day lasts its devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCounts {
    pub date: Day,
    #[serde(flatten)]
    pub tally: Tally,
    /// `None` once the day is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Devices>,
}

impl DayCounts {
    /// An open day, with its key.
    pub fn open(date: Day, key: [u64; 2]) -> DayCounts {
        DayCounts { date, tally: Tally::default(), devices: Some(Devices::new(key)) }
    }

    pub fn is_open(&self) -> bool {
        self.devices.is_some()
    }

    /// The device's hash under the day's key, while the day is open: what
    /// picks its campaign for the day (see [`crate::schedule`]).
    pub fn device_hash(&self, device: &Device) -> Option<u64> {
        self.devices.as_ref().map(|d| d.hash(device))
    }

    /// The day is over: its key and hashes are dropped, its numbers stay.
    pub fn close(&mut self) {
        self.devices = None;
    }

    /// A splash view. `still_granted` is asked only for a device whose
    /// grant is recorded as running (it may have been revoked early).
    pub fn splash(&mut self, device: &Device, at: At, still_granted: impl FnOnce() -> bool) {
        self.tally.add(Measure::Views, &at);
        let Some(devices) = &mut self.devices else { return };
        let h = devices.hash(device);
        if devices.shown.insert(h) {
            self.tally.add(Measure::Shown, &at);
        }
        if devices.returning.contains(&h) {
            return;
        }
        let ended = match devices.granted.get(&h) {
            Some(&until) => until <= at.now || !still_granted(),
            None => false,
        };
        if ended {
            devices.returning.insert(h);
            self.tally.add(Measure::Returning, &at);
        }
    }

    /// A grant made (or extended) until `until` (Unix seconds).
    pub fn connected(&mut self, device: &Device, at: At, until: i64) {
        let Some(devices) = &mut self.devices else { return };
        let h = devices.hash(device);
        devices.granted.insert(h, until);
        if devices.connected.insert(h) {
            self.tally.add(Measure::Connected, &at);
        }
    }

    /// An action on `/welcome`: counted once per device and day.
    pub fn acted(&mut self, device: &Device, action: Action, campaign: &str) {
        let Some(devices) = &mut self.devices else { return };
        let h = devices.hash(device);
        if devices.acted[action as usize].insert(h) {
            *self.tally.actions.get_mut(action) += 1;
            let by_campaign = match self.tally.actions_by_campaign.get_mut(campaign) {
                Some(a) => a,
                None => self.tally.actions_by_campaign.entry(campaign.to_owned()).or_default(),
            };
            *by_campaign.get_mut(action) += 1;
        }
    }

    /// A grant that was already running when the day began (or when the
    /// service started): its end will make the device a returning one.
    pub fn carry_grant(&mut self, device: &Device, until: i64) {
        let Some(devices) = &mut self.devices else { return };
        let h = devices.hash(device);
        let recorded = devices.granted.entry(h).or_insert(until);
        *recorded = (*recorded).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::MacAddr;

    fn phone(n: u8) -> Device {
        Device::Mac(MacAddr([2, 0, 0, 0, 0, n]))
    }

    fn at(hour: u8, now: i64) -> At<'static> {
        At { lang: "vi", campaign: "Bluezone", platform: Platform::Android, hour, now }
    }

    fn day(s: &str) -> Day {
        s.parse().unwrap()
    }

    #[test]
    fn one_device_is_shown_once_a_day_however_often_it_loads_the_page() {
        let mut today = DayCounts::open(day("2026-03-01"), [1, 2]);
        for _ in 0..5 {
            today.splash(&phone(1), at(9, 100), || unreachable!());
        }
        today.splash(
            &phone(2),
            At { lang: "en", campaign: "PC-Covid", platform: Platform::Ios, hour: 10, now: 200 },
            || true,
        );
        let t = &today.tally;
        assert_eq!((t.total.views, t.total.shown), (6, 2));
        assert_eq!((t.by_lang["vi"].views, t.by_lang["vi"].shown, t.by_lang["en"].shown), (5, 1, 1));
        assert_eq!((t.by_campaign["Bluezone"].views, t.by_campaign["PC-Covid"].shown), (5, 1));
        assert_eq!((t.by_platform.android.shown, t.by_platform.ios.shown, t.by_platform.other.shown), (1, 1, 0));
        assert_eq!((t.by_hour[9].views, t.by_hour[9].shown, t.by_hour[10].shown), (5, 1, 1));
    }

    #[test]
    fn an_action_counts_each_device_once_a_day_under_its_campaign() {
        let mut today = DayCounts::open(day("2026-03-01"), [1, 2]);
        for _ in 0..3 {
            today.acted(&phone(1), Action::GooglePlay, "Bluezone");
        }
        today.acted(&phone(2), Action::GooglePlay, "PC-Covid");
        today.acted(&phone(2), Action::Installed, "PC-Covid");
        let t = &today.tally;
        assert_eq!((t.actions.google_play, t.actions.app_store, t.actions.installed), (2, 0, 1));
        assert_eq!(t.actions_by_campaign["Bluezone"].google_play, 1);
        assert_eq!(
            (t.actions_by_campaign["PC-Covid"].google_play, t.actions_by_campaign["PC-Covid"].installed),
            (1, 1)
        );
        today.close();
        today.acted(&phone(3), Action::AppStore, "Bluezone");
        assert_eq!(today.tally.actions.app_store, 0, "a closed day counts nothing");
    }

    #[test]
    fn the_next_day_counts_the_same_device_again() {
        let mut monday = DayCounts::open(day("2026-03-02"), [1, 2]);
        monday.splash(&phone(1), at(23, 100), || true);
        monday.close();
        let mut tuesday = DayCounts::open(day("2026-03-03"), [3, 4]);
        tuesday.splash(&phone(1), at(0, 200), || true);
        tuesday.splash(&phone(1), at(1, 300), || true);
        assert_eq!((monday.tally.total.shown, tuesday.tally.total.shown, tuesday.tally.total.views), (1, 1, 2));
    }

    #[test]
    fn a_device_returns_once_its_grant_has_ended_not_while_it_runs() {
        let mut today = DayCounts::open(day("2026-03-01"), [1, 2]);
        today.splash(&phone(1), at(8, 0), || unreachable!("no grant yet"));
        today.connected(&phone(1), at(8, 10), 3_600);
        today.connected(&phone(1), at(8, 20), 3_600);
        assert_eq!(today.tally.total.connected, 1, "a second tap is the same device");
        today.splash(&phone(1), at(8, 60), || true);
        assert_eq!(today.tally.total.returning, 0, "the grant still runs");
        today.splash(&phone(1), at(9, 3_600), || unreachable!("expired by the clock"));
        today.splash(&phone(1), at(10, 7_200), || unreachable!("counted once"));
        assert_eq!((today.tally.total.returning, today.tally.by_hour[9].returning), (1, 1));
        // Revoked early: the grant store no longer has it.
        today.connected(&phone(2), at(11, 100), 10_000);
        today.splash(&phone(2), at(11, 200), || false);
        assert_eq!(today.tally.total.returning, 2);
        // A grant carried over midnight counts too, once it has ended.
        today.carry_grant(&phone(3), 500);
        today.splash(&phone(3), at(12, 600), || unreachable!());
        assert_eq!((today.tally.total.returning, today.tally.total.connected), (3, 2));
    }

    #[test]
    fn a_closed_day_keeps_its_numbers_and_no_device() {
        let mut today = DayCounts::open(day("2026-03-01"), [0xdead, 0xbeef]);
        today.splash(&phone(1), at(8, 0), || true);
        today.connected(&phone(1), at(8, 1), 100);
        today.close();
        let json = serde_json::to_string(&today).unwrap();
        assert!(!json.contains("devices") && !json.contains("key"), "{json}");
        assert!(!json.contains(&format!("{}", 0xdead)), "{json}");
        let back: DayCounts = serde_json::from_str(&json).unwrap();
        assert_eq!(back, today);
        // A closed day takes views but no device.
        today.splash(&phone(2), at(9, 0), || true);
        assert_eq!((today.tally.total.views, today.tally.total.shown), (2, 1));
    }

    #[test]
    fn devices_hash_by_their_bytes_under_the_key() {
        let a = Devices::new([1, 2]);
        let b = Devices::new([1, 3]);
        let v4 = Device::Addr("10.0.0.1".parse().unwrap());
        assert_eq!(a.hash(&phone(1)), a.hash(&phone(1)));
        assert_ne!(a.hash(&phone(1)), b.hash(&phone(1)), "another day's key, another value");
        assert_ne!(a.hash(&phone(1)), a.hash(&phone(2)));
        assert_ne!(a.hash(&v4), a.hash(&Device::Addr("::ffff:10.0.0.1".parse().unwrap())));
    }

    #[test]
    fn days_read_and_write_one_form_only() {
        assert_eq!(day("2026-01-31").to_string(), "2026-01-31");
        for bad in ["2026-1-31", "2026-02-30", "26-01-31", "2026/01/31", "", "2026-01-31x"] {
            assert!(bad.parse::<Day>().is_err(), "{bad}");
        }
        assert_eq!(day("2026-03-01").minus_days(1), day("2026-02-28"));
    }

    #[test]
    fn platforms_follow_the_documented_substrings() {
        let p = Platform::from_user_agent;
        assert_eq!(p("Mozilla/5.0 (Linux; Android 14; SM-A546E) Chrome/120"), Platform::Android);
        assert_eq!(p("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X)"), Platform::Ios);
        assert_eq!(p("CaptiveNetworkSupport-443.0.1 wispr"), Platform::Ios);
        assert_eq!(p("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"), Platform::Other);
    }
}
