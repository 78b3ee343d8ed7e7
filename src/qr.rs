//! The campaign's QR code as a compact inline SVG, made once at start-up.
//!
//! The `qrcode` crate's own SVG writer emits one `<rect>` per dark module
//! (about 20 KiB for a short URL), which alone would eat most of the
//! splash's 30 KiB budget. Here each horizontal run of dark modules is one
//! `h` segment of a single `<path>`, which is a few KiB, and renders crisply
//! at any size because the viewBox is in modules.

use qrcode::{Color, EcLevel, QrCode};

/// Quiet zone around the code, in modules (the standard asks for 4).
const QUIET: usize = 4;

/// Renders `data` as an SVG; `label` becomes its accessible name.
pub fn svg(data: &str, label: &str) -> Result<String, qrcode::types::QrError> {
    // Level M survives a smudged phone screen or a creased poster.
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)?;
    let width = code.width();
    let colors = code.to_colors();
    let mut path = String::with_capacity(width * width / 2);
    for y in 0..width {
        let row = &colors[y * width..(y + 1) * width];
        let mut x = 0;
        while x < width {
            if row[x] == Color::Dark {
                let start = x;
                while x < width && row[x] == Color::Dark {
                    x += 1;
                }
                path.push_str(&format!("M{} {}h{}v1h-{}z", start + QUIET, y + QUIET, x - start, x - start));
            } else {
                x += 1;
            }
        }
    }
    let size = width + 2 * QUIET;
    Ok(format!(
        "<svg viewBox=\"0 0 {size} {size}\" role=\"img\" aria-label=\"{}\" shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>",
        maud::html! { (label) }.into_string().replace('"', "&quot;")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_is_small_and_labelled() {
        let svg = svg("https://www.bluezone.gov.vn", "Bluezone <QR>").unwrap();
        assert!(svg.len() < 6_000, "{} bytes", svg.len());
        assert!(svg.contains("aria-label=\"Bluezone &lt;QR&gt;\""));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
