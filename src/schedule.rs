//! Which campaign is on the air, and which one a device sees.
//!
//! `[[campaigns]]` entries each have an optional window of the venue's days
//! (`from`, `until`, both included), the venue kinds they are for, and a
//! weight. On a given day the entries whose window holds it and whose kinds
//! include the venue's (an empty list is every kind) are on the air; with
//! none, `portal.campaign` shows.
//!
//! With several on the air, each device sees one of them all day, picked by
//! weight from the device's hash under the day's key (the same keyed hash
//! the daily counts keep, see [`crate::counts`]): stable for that device
//! that day, across restarts, and unrelated from one day to the next,
//! since the key is new each day and nothing else about the device is
//! kept. A weight-2 campaign is seen by about twice as many devices as a
//! weight-1 one.
//!
//! Picking walks the few entries twice and allocates nothing: it runs for
//! every page a phone loads when more than one campaign is on the air.

use crate::config::{ScheduledCampaign, VenueKind};
use crate::counts::Day;

/// Whether `entry` is on the air at a venue of `kind` on `day`.
pub fn on_air(entry: &ScheduledCampaign, kind: VenueKind, day: Day) -> bool {
    entry.from.is_none_or(|f| f <= day)
        && entry.until.is_none_or(|u| day <= u)
        && (entry.kinds.is_empty() || entry.kinds.contains(&kind))
}

/// The entry (its index) a device with `hash` sees on `day`, among those on
/// the air that `available` says can be shown (a bundle not fetched yet
/// cannot); `None` when no entry is on the air: the default campaign.
pub fn pick(
    entries: &[ScheduledCampaign],
    kind: VenueKind,
    day: Day,
    hash: u64,
    available: impl Fn(usize) -> bool,
) -> Option<usize> {
    let airing = || entries.iter().enumerate().filter(|(i, e)| on_air(e, kind, day) && available(*i));
    let total: u64 = airing().map(|(_, e)| u64::from(e.weight)).sum();
    if total == 0 {
        return None;
    }
    // At most 1000 × a few entries against 2^64: the modulo's bias is nil.
    let mut target = hash % total;
    for (i, e) in airing() {
        match target.checked_sub(u64::from(e.weight)) {
            Some(rest) => target = rest,
            None => return Some(i),
        }
    }
    None
}

/// Whether more than one entry can be on the air on `day`: only then does
/// the choice depend on the device.
pub fn depends_on_device(
    entries: &[ScheduledCampaign],
    kind: VenueKind,
    day: Day,
    available: impl Fn(usize) -> bool,
) -> bool {
    entries.iter().enumerate().filter(|(i, e)| on_air(e, kind, day) && available(*i)).nth(1).is_some()
}

/// Consecutive days with the same entries on the air.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub first: Day,
    pub last: Day,
    /// The entries on the air, as indices; empty: the default campaign.
    pub on_air: Vec<usize>,
}

/// The `days` days from `first`, as runs: what `portico check` prints.
pub fn runs(entries: &[ScheduledCampaign], kind: VenueKind, first: Day, days: u32) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut day = first;
    for _ in 0..days {
        let on_air: Vec<usize> = (0..entries.len()).filter(|&i| on_air(&entries[i], kind, day)).collect();
        match runs.last_mut() {
            Some(run) if run.on_air == on_air => run.last = day,
            _ => runs.push(Run { first: day, last: day, on_air }),
        }
        day = day.next();
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::CampaignSource;

    fn day(s: &str) -> Day {
        s.parse().unwrap()
    }

    fn entry(
        name: &str,
        from: Option<&str>,
        until: Option<&str>,
        kinds: &[VenueKind],
        weight: u32,
    ) -> ScheduledCampaign {
        ScheduledCampaign {
            source: CampaignSource::Builtin(name.into()),
            from: from.map(day),
            until: until.map(day),
            kinds: kinds.to_vec(),
            weight,
        }
    }

    #[test]
    fn a_window_holds_its_first_and_last_day_and_nothing_around() {
        let drive = [entry("drive", Some("2026-12-24"), Some("2026-12-26"), &[], 1)];
        let seen = |d: &str| pick(&drive, VenueKind::Station, day(d), 7, |_| true);
        assert_eq!(seen("2026-12-23"), None);
        assert_eq!(seen("2026-12-24"), Some(0));
        assert_eq!(seen("2026-12-26"), Some(0));
        assert_eq!(seen("2026-12-27"), None);
        let open = [entry("open", None, Some("2026-01-01"), &[], 1), entry("later", Some("2027-01-01"), None, &[], 1)];
        assert_eq!(pick(&open, VenueKind::Station, day("1999-05-05"), 0, |_| true), Some(0));
        assert_eq!(pick(&open, VenueKind::Station, day("2026-06-01"), 0, |_| true), None);
        assert_eq!(pick(&open, VenueKind::Station, day("2099-05-05"), 0, |_| true), Some(1));
    }

    #[test]
    fn kinds_target_venues_and_none_means_every_venue() {
        let entries = [entry("airports", None, None, &[VenueKind::Airport], 1)];
        assert_eq!(pick(&entries, VenueKind::Airport, day("2026-12-01"), 3, |_| true), Some(0));
        assert_eq!(pick(&entries, VenueKind::Station, day("2026-12-01"), 3, |_| true), None);
        let everywhere = [entry("all", None, None, &[], 1)];
        for (_, kind) in VenueKind::ALL {
            assert_eq!(pick(&everywhere, kind, day("2026-12-01"), 3, |_| true), Some(0));
        }
    }

    #[test]
    fn weights_share_the_devices_and_each_device_keeps_its_pick() {
        let entries = [entry("a", None, None, &[], 1), entry("b", None, None, &[], 3)];
        let today = day("2026-12-01");
        let mut seen = [0u32; 2];
        // Hashes as the counts make them: SipHash under a random key.
        let hasher = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        for device in 0..4000u32 {
            let hash = std::hash::BuildHasher::hash_one(&hasher, device);
            let i = pick(&entries, VenueKind::Station, today, hash, |_| true).unwrap();
            assert_eq!(pick(&entries, VenueKind::Station, today, hash, |_| true), Some(i), "stable");
            seen[i] += 1;
        }
        assert!((850..1150).contains(&seen[0]) && (2850..3150).contains(&seen[1]), "{seen:?}");
        // Exact at the boundaries: hash % 4 of 0 is a, 1 to 3 are b.
        let at = |h| pick(&entries, VenueKind::Station, today, h, |_| true);
        assert_eq!((at(0), at(1), at(3), at(4)), (Some(0), Some(1), Some(1), Some(0)));
    }

    #[test]
    fn an_entry_that_cannot_be_shown_gives_way() {
        let entries = [entry("bundle", None, None, &[], 5), entry("folder", None, None, &[], 1)];
        let today = day("2026-12-01");
        for hash in 0..12 {
            assert_eq!(pick(&entries, VenueKind::Station, today, hash, |i| i != 0), Some(1));
            assert_eq!(pick(&entries, VenueKind::Station, today, hash, |_| false), None);
        }
        assert!(depends_on_device(&entries, VenueKind::Station, today, |_| true));
        assert!(!depends_on_device(&entries, VenueKind::Station, today, |i| i != 0));
    }

    #[test]
    fn runs_group_the_days_for_check() {
        let entries = [
            entry("pc-covid", Some("2026-12-03"), Some("2026-12-04"), &[], 1),
            entry("typhoon drill", Some("2026-12-04"), None, &[VenueKind::Port], 1),
        ];
        let runs = runs(&entries, VenueKind::Port, day("2026-12-01"), 6);
        let shown: Vec<(String, String, Vec<usize>)> =
            runs.into_iter().map(|r| (r.first.to_string(), r.last.to_string(), r.on_air)).collect();
        assert_eq!(
            shown,
            [
                ("2026-12-01".into(), "2026-12-02".into(), vec![]),
                ("2026-12-03".into(), "2026-12-03".into(), vec![0]),
                ("2026-12-04".into(), "2026-12-04".into(), vec![0, 1]),
                ("2026-12-05".into(), "2026-12-06".into(), vec![1]),
            ]
        );
    }
}
