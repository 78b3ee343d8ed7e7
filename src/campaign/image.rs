//! A campaign's images (a logo, for now): checked when the campaign loads,
//! then served from memory at `/assets/campaign/<file>`.
//!
//! An image must be small, because the splash's whole weight budget is
//! 30 KiB on a phone that may have no mobile data, and must be what its name
//! says, because it is served with the content type its extension implies.
//! An SVG must also only draw (no script, no other file: see `svg`),
//! because it is served from the portal's own origin.

use bytes::Bytes;

use super::svg;

/// The largest image a campaign may ship.
pub const MAX_IMAGE_BYTES: usize = 12 * 1024;

#[derive(Clone, Debug)]
pub struct Image {
    /// The key in `campaign.toml`'s `[images]` (e.g. `logo`).
    pub name: String,
    /// The file name it is served under, e.g. `logo.svg`.
    pub file: String,
    pub content_type: &'static str,
    pub bytes: Bytes,
    /// A checksum of the bytes, put in the image's URL (`?v=`), so that a
    /// phone's cached copy of another campaign's `logo.svg` (after a swap)
    /// is never shown for this one.
    pub version: String,
}

/// Checks one image's bytes; the error says what is wrong and what would do.
pub fn check(name: &str, path: &str, bytes: Vec<u8>) -> Result<Image, String> {
    let file = path.rsplit('/').next().unwrap_or(path).to_owned();
    let valid_name = !file.is_empty()
        && !file.starts_with('.')
        && file.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !valid_name || path.contains("..") || path.starts_with('/') {
        return Err("must be a plain file name inside the campaign folder (a-z 0-9 - _ .)".into());
    }
    let extension = file.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    let content_type = match extension.as_str() {
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => return Err("is not an .svg, .png, .jpg or .webp file".into()),
    };
    // The size first, so that nothing past the budget is ever parsed.
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(format!("is {} bytes; at most {MAX_IMAGE_BYTES} fit the splash's 30 KiB budget", bytes.len()));
    }
    let looks_right = match extension.as_str() {
        // An SVG is served from the portal's own origin: it must only draw.
        "svg" => {
            svg::check(&bytes).map_err(|why| format!("is not an SVG image that only draws: {why}"))?;
            true
        }
        "png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "jpg" | "jpeg" => bytes.starts_with(&[0xff, 0xd8, 0xff]),
        // webp, the one extension left.
        _ => bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
    };
    if !looks_right {
        return Err(format!("is not a valid {extension} image"));
    }
    let version = format!("{:08x}", crc32fast::hash(&bytes));
    Ok(Image { name: name.to_owned(), file, content_type, bytes: Bytes::from(bytes), version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_checked_for_name_kind_and_size() {
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"></svg>"#.to_vec();
        assert_eq!(check("logo", "images/logo.svg", svg.clone()).unwrap().content_type, "image/svg+xml");
        assert!(check("logo", "images/logo.png", svg.clone()).unwrap_err().contains("not a valid png"));
        assert!(check("logo", "../logo.svg", svg.clone()).is_err());
        assert!(check("logo", "logo.gif", svg).unwrap_err().contains(".svg, .png"));
        let script = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec();
        let e = check("logo", "logo.svg", script).unwrap_err();
        assert_eq!(e, "is not an SVG image that only draws: element <script> is not allowed (line 1, column 41)");
        let handler = br#"<svg xmlns="http://www.w3.org/2000/svg" onload = "alert(1)"></svg>"#.to_vec();
        assert!(check("logo", "logo.svg", handler).unwrap_err().contains("event handler onload="));
        let words = br#"<svg xmlns="http://www.w3.org/2000/svg"><title>Scan on arrival</title></svg>"#.to_vec();
        assert!(check("logo", "logo.svg", words).is_ok());
        let big = format!("<svg>{}</svg>", " ".repeat(MAX_IMAGE_BYTES)).into_bytes();
        assert!(check("logo", "big.svg", big).unwrap_err().contains("30 KiB"), "the size is judged before the XML");
        let big = [b"\x89PNG\r\n\x1a\n".to_vec(), vec![0; MAX_IMAGE_BYTES]].concat();
        assert!(check("logo", "big.png", big).unwrap_err().contains("30 KiB"));
    }
}
