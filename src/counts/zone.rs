//! The venue's clock: an instant → the venue's [`Day`] and hour.
//!
//! Zones come from jiff: the system's tz database when there is one
//! (`/usr/share/zoneinfo`, kept current by the OS). OpenWrt has none unless
//! a `zoneinfo-*` package adds it, so the default zone, `Asia/Ho_Chi_Minh`,
//! is also built into the binary: that one zone, a few hundred bytes, not
//! the whole database (which would add about 250 KB to the binary).
//! Another zone on such a gateway is refused with a message saying to
//! install zoneinfo.
//! The counts ask for the day and hour on every splash view, so the
//! answer is kept until the venue's clock reaches its next hour.

use std::time::{SystemTime, UNIX_EPOCH};

use super::Day;

/// A validated IANA time zone.
#[derive(Clone, Debug)]
pub struct Zone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl Zone {
    /// The default, and the zone of every province Portico is made for.
    pub const DEFAULT: &'static str = "Asia/Ho_Chi_Minh";

    /// An IANA zone by name (`Asia/Ho_Chi_Minh`, `UTC`).
    pub fn named(name: &str) -> Result<Zone, String> {
        // An empty name or a path would make jiff read a file by that name.
        if name.is_empty() || name.starts_with('/') || name.contains("..") {
            return Err(format!("{name:?} is not an IANA time zone name (like \"Asia/Ho_Chi_Minh\")"));
        }
        match jiff::tz::TimeZone::get(name) {
            Ok(tz) => Ok(Zone { name: name.to_owned(), tz }),
            Err(_) if name == Zone::DEFAULT => {
                Ok(Zone { name: name.to_owned(), tz: jiff::tz::get!("Asia/Ho_Chi_Minh") })
            }
            Err(_) if name == "UTC" => Ok(Zone { name: name.to_owned(), tz: jiff::tz::TimeZone::UTC }),
            Err(_) => Err(format!(
                "{name:?} is not an IANA time zone name (like \"Asia/Ho_Chi_Minh\"), or this system has no \
                 tz database for it (on OpenWrt: opkg install zoneinfo-all)"
            )),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The venue's day and hour at `secs` (Unix seconds), and the first
    /// second of the venue's next hour, until which the answer holds.
    pub fn local(&self, secs: i64) -> (Day, u8, i64) {
        let ts = jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let dt = self.tz.to_datetime(ts);
        let into_hour = i64::from(dt.minute()) * 60 + i64::from(dt.second());
        (Day(dt.date()), dt.hour() as u8, secs - into_hour + 3600)
    }

    /// The venue's day at `secs`.
    pub fn day(&self, secs: i64) -> Day {
        self.local(secs).0
    }
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::named(Zone::DEFAULT).expect("the built-in tz database has the default zone")
    }
}

/// Unix seconds of a `SystemTime` (0 before 1970).
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// [`Zone::local`] remembered until the hour changes: most events cost a
/// comparison instead of a zone lookup.
#[derive(Debug, Default)]
pub(super) struct HourCache {
    from: i64,
    until: i64,
    day: Option<Day>,
    hour: u8,
}

impl HourCache {
    pub(super) fn local(&mut self, zone: &Zone, secs: i64) -> (Day, u8) {
        match self.day {
            Some(day) if (self.from..self.until).contains(&secs) => (day, self.hour),
            _ => {
                let (day, hour, until) = zone.local(secs);
                *self = HourCache { from: secs, until, day: Some(day), hour };
                (day, hour)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(utc: &str) -> i64 {
        utc.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    #[test]
    fn the_day_turns_at_the_venues_midnight_not_utcs() {
        let hcm = Zone::default();
        assert_eq!(hcm.local(secs("2026-03-01T16:59:59Z")).0.to_string(), "2026-03-01");
        assert_eq!(hcm.local(secs("2026-03-01T16:59:59Z")).1, 23);
        assert_eq!(hcm.local(secs("2026-03-01T17:00:00Z")).0.to_string(), "2026-03-02");
        assert_eq!(hcm.local(secs("2026-03-01T17:00:00Z")).1, 0);
        assert_eq!(hcm.local(secs("2026-03-02T02:30:00Z")).1, 9, "hours are the venue's");
        let utc = Zone::named("UTC").unwrap();
        assert_eq!(utc.day(secs("2026-03-01T17:00:00Z")).to_string(), "2026-03-01");
    }

    #[test]
    fn the_cache_answers_until_the_next_hour() {
        let hcm = Zone::default();
        let mut cache = HourCache::default();
        let t = secs("2026-03-01T16:30:00Z");
        assert_eq!(cache.local(&hcm, t).1, 23);
        assert_eq!(cache.local(&hcm, t + 1799).1, 23);
        let (day, hour) = cache.local(&hcm, t + 1800);
        assert_eq!((day.to_string().as_str(), hour), ("2026-03-02", 0));
        // A clock set back is asked afresh.
        assert_eq!(cache.local(&hcm, t - 3600).1, 22);
    }

    #[test]
    fn the_built_in_default_agrees_with_the_database() {
        let built_in = jiff::tz::get!("Asia/Ho_Chi_Minh");
        let t = jiff::Timestamp::from_second(1_772_384_400).unwrap();
        assert_eq!(built_in.to_datetime(t), Zone::default().tz.to_datetime(t));
        assert_eq!(built_in.to_offset(t).seconds(), 7 * 3600);
    }

    #[test]
    fn a_bad_name_is_refused() {
        for bad in ["", "Asia/Hanoi_City", "/etc/passwd", "../zoneinfo/UTC", "Mars/Olympus"] {
            assert!(Zone::named(bad).is_err(), "{bad}");
        }
        assert_eq!(Zone::named("Europe/Paris").unwrap().name(), "Europe/Paris");
    }
}
