//! Language negotiation: any `?lang=` value and any `Accept-Language` header
//! pick one of the campaign's languages or none, never an index out of
//! range and never a panic.
//!
//! Input: bytes split at the first `\n` into the query value and the header
//! (lossy UTF-8).

#![no_main]

use libfuzzer_sys::fuzz_target;
use portico::lang::negotiate;

/// The built-in campaign's languages, in its switcher order.
const TAGS: [&str; 8] = ["vi", "en", "zh-Hans", "zh-Hant", "ko", "ja", "ru", "fr"];

fuzz_target!(|data: &[u8]| {
    let (query, header) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let query = String::from_utf8_lossy(query);
    let header = String::from_utf8_lossy(header);

    let picked = negotiate(&TAGS, Some(&query), Some(&header));
    assert!(picked.is_none_or(|i| i < TAGS.len()), "{picked:?} for {query:?} / {header:?}");
    // The query beats the header: an exact tag (any case) is always honoured.
    if let Some(exact) = TAGS.iter().position(|t| t.eq_ignore_ascii_case(&query)) {
        assert_eq!(picked, Some(exact), "?lang={query:?} with Accept-Language {header:?}");
    }

    // The header alone, since a matching query never reaches it.
    let from_header = negotiate(&TAGS, None, Some(&header));
    assert!(from_header.is_none_or(|i| i < TAGS.len()), "{from_header:?} for {header:?}");
});
