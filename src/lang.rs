//! Language negotiation: which of a campaign's languages a visitor sees.
//!
//! Order of precedence: the `?lang=` query (the switcher's links), then the
//! `Accept-Language` header by q-value, then the campaign default. A tag
//! matches exactly (case-insensitively) first; Chinese is mapped by script
//! or region (`zh-CN`, `zh-SG` → `zh-Hans`; `zh-TW`, `zh-HK`, `zh-MO` →
//! `zh-Hant`); otherwise the primary subtag decides (`en-AU` → `en`).
//! Everything here is bounded: a hostile header of any length costs at most
//! [`MAX_RANGES`] comparisons per campaign language.

/// How many entries of an `Accept-Language` header are considered.
pub const MAX_RANGES: usize = 16;

/// Whether `tag` looks like a BCP 47 tag we can put in a URL and a file name.
pub fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 35
        && tag.split('-').all(|p| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Picks the index into `tags` to show, or `None` for "use the default".
pub fn negotiate<T: AsRef<str>>(tags: &[T], query_lang: Option<&str>, accept_language: Option<&str>) -> Option<usize> {
    if let Some(i) = query_lang.and_then(|q| best_match(tags, q)) {
        return Some(i);
    }
    let header = accept_language?;
    let mut ranges: Vec<(u16, usize, &str)> = header
        .split(',')
        .take(MAX_RANGES)
        .enumerate()
        .filter_map(|(pos, item)| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .map_or(Some(1000), parse_q)?;
            (q > 0 && !tag.is_empty()).then_some((q, pos, tag))
        })
        .collect();
    // Highest q first; equal q keeps the header's order.
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges.iter().find_map(|(_, _, tag)| best_match(tags, tag))
}

/// A q-value in thousandths (`0.8` → 800); `None` when malformed.
fn parse_q(s: &str) -> Option<u16> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

/// The campaign language that best serves one requested tag.
fn best_match<T: AsRef<str>>(tags: &[T], requested: &str) -> Option<usize> {
    if requested == "*" || !is_valid_tag(requested) {
        return None;
    }
    if let Some(i) = tags.iter().position(|t| t.as_ref().eq_ignore_ascii_case(requested)) {
        return Some(i);
    }
    let mut subtags = requested.split('-');
    let primary = subtags.next()?;
    if primary.eq_ignore_ascii_case("zh") {
        let script = chinese_script(requested);
        if let Some(i) = tags.iter().position(|t| t.as_ref().eq_ignore_ascii_case(script)) {
            return Some(i);
        }
    }
    tags.iter().position(|t| t.as_ref().split('-').next().is_some_and(|p| p.eq_ignore_ascii_case(primary)))
}

/// `zh-Hans` or `zh-Hant` for any Chinese tag. Traditional where the script
/// says so or the region writes it; Simplified otherwise (the mainland and
/// Singapore, and bare `zh`).
fn chinese_script(tag: &str) -> &'static str {
    let traditional =
        tag.split('-').skip(1).any(|s| ["hant", "tw", "hk", "mo"].iter().any(|t| s.eq_ignore_ascii_case(t)));
    if traditional { "zh-Hant" } else { "zh-Hans" }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAGS: &[&str] = &["vi", "en", "zh-Hans", "zh-Hant", "ko", "ja", "ru", "fr"];

    fn pick(q: Option<&str>, header: Option<&str>) -> Option<&'static str> {
        negotiate(TAGS, q, header).map(|i| TAGS[i])
    }

    #[test]
    fn query_beats_header_and_unknown_query_is_ignored() {
        assert_eq!(pick(Some("en"), Some("fr")), Some("en"));
        assert_eq!(pick(Some("EN"), None), Some("en"));
        assert_eq!(pick(Some("xx"), Some("fr")), Some("fr"));
        assert_eq!(pick(Some("../etc"), None), None);
    }

    #[test]
    fn q_values_order_the_ranges() {
        assert_eq!(pick(None, Some("fr;q=0.5, ru;q=0.9")), Some("ru"));
        assert_eq!(pick(None, Some("de, en;q=0.1")), Some("en"));
        assert_eq!(pick(None, Some("en;q=0, fr")), Some("fr"));
        assert_eq!(pick(None, Some("ko;q=1.0, ja;q=0.999")), Some("ko"));
        assert_eq!(pick(None, Some("en;q=2")), None, "q above 1 is malformed and skipped");
        assert_eq!(pick(None, Some("*")), None);
        assert_eq!(pick(None, Some("de-DE, es")), None);
    }

    #[test]
    fn regional_tags_map_sensibly() {
        for (tag, want) in [
            ("zh-CN", "zh-Hans"),
            ("zh-SG", "zh-Hans"),
            ("zh", "zh-Hans"),
            ("zh-TW", "zh-Hant"),
            ("zh-HK", "zh-Hant"),
            ("zh-Hant-TW", "zh-Hant"),
            ("en-AU", "en"),
            ("fr-CA", "fr"),
            ("vi-VN", "vi"),
            ("ko-KR", "ko"),
        ] {
            assert_eq!(pick(None, Some(tag)), Some(want), "{tag}");
        }
        // With only Vietnamese and English, Chinese falls through to the default.
        assert_eq!(negotiate(&["vi", "en"], None, Some("zh-TW")), None);
    }

    #[test]
    fn hostile_headers_are_bounded_and_harmless() {
        let long = "xx,".repeat(10_000) + "en";
        assert_eq!(pick(None, Some(&long)), None, "only the first ranges are read");
        assert_eq!(pick(None, Some(";;;,,,q=,;q=0.5")), None);
    }
}
