//! The campaign SVG check: whatever a province ships as an SVG logo is
//! judged without a panic, and nothing it accepts can run a script or load
//! another file.
//!
//! Input: the bytes of an SVG image, given to `campaign::svg::check` as the
//! campaign loader gives it a logo. Whenever it is accepted,
//! `campaign::svg::audit`, an independent look at the parsed document (no
//! script, foreignObject, iframe, object, embed, a, set or animate* in any
//! namespace; no `on*` attribute; no `javascript:`; no `url(` but
//! `url(#`; no `href` but `#id`), must find nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portico::campaign::svg;

fuzz_target!(|data: &[u8]| {
    if svg::check(data).is_ok() {
        if let Err(breach) = svg::audit(data) {
            panic!("accepted, but {breach}: {:?}", String::from_utf8_lossy(data));
        }
    }
});
