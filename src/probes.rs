//! The operating systems' connectivity probes, and the exact answer each
//! one takes to mean "online".
//!
//! A probe only reaches Portico from a client *with* a grant in a race (the
//! kernel set was updated a moment after the probe left) or with the `none`
//! backend; then the popup must close, so the answer has to match what the
//! real probe server sends, byte for byte where the OS compares bytes
//! (Firefox compares the whole body of `canonical.html`). Probes are
//! recognised by host and path only, never by User-Agent: Android probes with
//! a desktop Chrome one.

/// What a known probe expects back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// 204 with an empty body.
    NoContent,
    /// 200 with this body and content type.
    Ok { body: &'static str, content_type: &'static str },
}

const APPLE_SUCCESS: ProbeAnswer = ProbeAnswer::Ok {
    body: "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
    content_type: "text/html",
};
const TEXT: &str = "text/plain";

/// `(host, path, answer)`; a path of `"*"` matches every path on that host.
const PROBES: &[(&str, &str, ProbeAnswer)] = &[
    // iOS / macOS: captive.apple.com answers Success on any path.
    ("captive.apple.com", "*", APPLE_SUCCESS),
    ("www.apple.com", "/library/test/success.html", APPLE_SUCCESS),
    ("www.appleiphonecell.com", "*", APPLE_SUCCESS),
    // Android (AOSP), Samsung, Chrome and ChromeOS.
    ("connectivitycheck.gstatic.com", "/generate_204", ProbeAnswer::NoContent),
    ("www.gstatic.com", "/generate_204", ProbeAnswer::NoContent),
    ("www.google.com", "/gen_204", ProbeAnswer::NoContent),
    ("www.google.com", "/generate_204", ProbeAnswer::NoContent),
    ("play.googleapis.com", "/generate_204", ProbeAnswer::NoContent),
    ("clients3.google.com", "/generate_204", ProbeAnswer::NoContent),
    ("clients1.google.com", "/generate_204", ProbeAnswer::NoContent),
    ("connectivitycheck.android.com", "/generate_204", ProbeAnswer::NoContent),
    // Xiaomi and Huawei.
    ("connect.rom.miui.com", "/generate_204", ProbeAnswer::NoContent),
    ("connectivitycheck.platform.hicloud.com", "/generate_204", ProbeAnswer::NoContent),
    // Windows 10/11, and older Windows.
    (
        "www.msftconnecttest.com",
        "/connecttest.txt",
        ProbeAnswer::Ok { body: "Microsoft Connect Test", content_type: TEXT },
    ),
    (
        "ipv6.msftconnecttest.com",
        "/connecttest.txt",
        ProbeAnswer::Ok { body: "Microsoft Connect Test", content_type: TEXT },
    ),
    ("www.msftncsi.com", "/ncsi.txt", ProbeAnswer::Ok { body: "Microsoft NCSI", content_type: TEXT }),
    // Firefox: the whole body is compared, so no trailing newline.
    (
        "detectportal.firefox.com",
        "/canonical.html",
        ProbeAnswer::Ok {
            body: "<meta http-equiv=\"refresh\" content=\"0;url=https://support.mozilla.org/kb/captive-portal\"/>",
            content_type: "text/html",
        },
    ),
    ("detectportal.firefox.com", "/success.txt", ProbeAnswer::Ok { body: "success\n", content_type: TEXT }),
    // NetworkManager (GNOME, Ubuntu, Fedora).
    (
        "nmcheck.gnome.org",
        "/check_network_status.txt",
        ProbeAnswer::Ok { body: "NetworkManager is online\n", content_type: TEXT },
    ),
    ("connectivity-check.ubuntu.com", "/", ProbeAnswer::NoContent),
    ("fedoraproject.org", "/static/hotspot.txt", ProbeAnswer::Ok { body: "OK\n", content_type: TEXT }),
    // Kindle: any page that contains this GUID.
    (
        "spectrum.s3.amazonaws.com",
        "/kindle-wifi/wifistub.html",
        ProbeAnswer::Ok {
            body: "<html><head><title>Kindle Reachability Probe Page</title></head><body>81ce4465-7167-4dcb-835b-dcc9e44c112a</body></html>",
            content_type: "text/html",
        },
    ),
];

/// The answer for a probe, if `host` (lower case, no port) and `path` are
/// one. The query string is not part of `path`.
pub fn classify(host: &str, path: &str) -> Option<ProbeAnswer> {
    PROBES.iter().find(|(h, p, _)| *h == host && (*p == "*" || *p == path)).map(|(_, _, answer)| *answer)
}

/// Every probe as `(host, path)`, with `/` standing for the wildcard: for
/// tests and documentation.
pub fn all() -> impl Iterator<Item = (&'static str, &'static str, ProbeAnswer)> {
    PROBES.iter().map(|(h, p, a)| (*h, if *p == "*" { "/hotspot-detect.html" } else { *p }, *a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_probes_classify_and_others_do_not() {
        assert_eq!(classify("connectivitycheck.gstatic.com", "/generate_204"), Some(ProbeAnswer::NoContent));
        assert_eq!(classify("captive.apple.com", "/abc/def/hotspot-detect.html"), Some(APPLE_SUCCESS));
        assert_eq!(classify("connectivitycheck.gstatic.com", "/"), None);
        assert_eq!(classify("example.com", "/generate_204"), None);
        assert_eq!(classify("www.apple.com", "/"), None, "only Apple's probe path on www.apple.com");
    }
}
