//! Which phone is asking, as far as the pages and the daily counts care.

/// The visitor's platform, from the page request's User-Agent (the browser's,
/// not the probe's): it decides which install steps come first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Android,
    Ios,
    Other,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Android, Platform::Ios, Platform::Other];

    pub fn from_user_agent(ua: &str) -> Platform {
        if ua.contains("Android") {
            Platform::Android
        } else if ua.contains("iPhone")
            || ua.contains("iPad")
            || ua.contains("iPod")
            || ua.contains("CaptiveNetworkSupport")
        {
            Platform::Ios
        } else {
            Platform::Other
        }
    }

    /// Its name in the report's columns.
    pub fn label(self) -> &'static str {
        match self {
            Platform::Android => "android",
            Platform::Ios => "ios",
            Platform::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_comes_from_the_browser_user_agent() {
        let android = "Mozilla/5.0 (Linux; Android 13; SM-A146P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";
        let desktop =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(Platform::from_user_agent(android), Platform::Android);
        assert_eq!(Platform::from_user_agent(iphone), Platform::Ios);
        assert_eq!(Platform::from_user_agent(desktop), Platform::Other);
        assert_eq!(Platform::from_user_agent(""), Platform::Other);
    }
}
