//! How a config is checked: one [`Checker`] collects every problem, each
//! naming its key, and the range checks that raw values share are written
//! once, with one wording ("… is out of range (MIN to MAX)").

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::Problem;

/// The problems found so far; validation goes on after each, so
/// `portico check` lists them all.
#[derive(Default)]
pub(super) struct Checker {
    pub(super) problems: Vec<Problem>,
}

impl Checker {
    pub(super) fn bad(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem { key: key.into(), line: None, message: message.into() });
    }

    /// `key`'s address, `default` when absent.
    pub(super) fn addr(&mut self, key: &str, value: Option<&str>, default: &str) -> SocketAddr {
        let value = value.unwrap_or(default);
        value.parse().unwrap_or_else(|_| {
            self.bad(key, format!("{value:?} is not an address:port (like {default:?} or \"[::]:8080\")"));
            ([0, 0, 0, 0], 0).into()
        })
    }

    /// `key`'s number, `default` when absent or out of `range` (a problem).
    pub(super) fn count(&mut self, key: &str, value: Option<u32>, default: u32, range: RangeInclusive<u32>) -> u32 {
        match value {
            None => default,
            Some(v) if range.contains(&v) => v,
            Some(v) => {
                self.bad(key, format!("{v} is out of range ({} to {})", range.start(), range.end()));
                default
            }
        }
    }

    /// `key`'s duration, `default` when absent, not a duration or out of
    /// `range` (a problem).
    pub(super) fn duration(
        &mut self,
        key: &str,
        value: Option<&str>,
        default: Duration,
        range: RangeInclusive<Duration>,
    ) -> Duration {
        match value.map(parse_duration) {
            None => default,
            Some(Ok(d)) if range.contains(&d) => d,
            Some(Ok(d)) => {
                let (min, max) = (Shown(*range.start()), Shown(*range.end()));
                self.bad(key, format!("{} is out of range ({min} to {max})", Shown(d)));
                default
            }
            Some(Err(e)) => {
                self.bad(key, e);
                default
            }
        }
    }
}

/// A duration as the config spells one: `12h`, `1h30m`, `500ms`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("{s:?} is not a duration (like \"12h\", \"90s\", \"1h30m\"; units d h m s ms)");
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "d" => Duration::from_secs(86_400),
            "h" => Duration::from_secs(3_600),
            "m" => Duration::from_secs(60),
            "s" => Duration::from_secs(1),
            "ms" => Duration::from_millis(1),
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        let part = u32::try_from(number).ok().and_then(|n| unit.checked_mul(n)).ok_or_else(err)?;
        total = total.checked_add(part).ok_or_else(err)?;
    }
    Ok(total)
}

/// A duration written back as [`parse_duration`] reads it, largest units
/// first: `1h30m`, `100ms`, `0s`.
struct Shown(Duration);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_bad_ones_say_why() {
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "12", "h", "12x", "1.5h", "-1h", "99999999999d"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("is not a duration"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_range_problem_names_the_key_and_the_range_as_the_config_spells_it() {
        let mut c = Checker::default();
        let range = Duration::from_millis(100)..=Duration::from_secs(600);
        assert_eq!(c.duration("k", Some("90s"), Duration::ZERO, range.clone()), Duration::from_secs(90));
        assert_eq!(c.duration("k", None, Duration::from_secs(1), range.clone()), Duration::from_secs(1));
        assert_eq!(c.duration("limits.x", Some("1h1m"), Duration::from_secs(1), range), Duration::from_secs(1));
        assert_eq!(c.count("limits.y", Some(0), 5, 1..=10), 5);
        let problems: Vec<String> = c.problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect();
        assert_eq!(
            problems,
            ["limits.x: 1h1m is out of range (100ms to 10m)", "limits.y: 0 is out of range (1 to 10)"]
        );
        assert_eq!(Shown(Duration::from_millis(86_400_000 + 1_500)).to_string(), "1d1s500ms");
    }
}
