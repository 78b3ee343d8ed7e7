//! Every page variant rendered once, at start-up, into shared bytes.
//!
//! The hot paths are the probe redirect and the splash; per request they are
//! an index into these tables and a reference-count bump on a `Bytes`, never
//! a render. The tables are rebuilt only when the campaign or config changes.

use anyhow::Context as _;
use bytes::Bytes;

use crate::alert::Alert;
use crate::campaign::Campaign;
use crate::config::Config;
use crate::platform::Platform;
use crate::qr;
use crate::views::{self, Page};

/// The phone pages' stylesheet, embedded.
pub const STYLESHEET: &str = include_str!("../assets/portico.css");
/// The signage and poster stylesheet, kept apart so phones never load it.
pub const BOARDS_STYLESHEET: &str = include_str!("../assets/boards.css");

pub struct Pages {
    /// `[language][platform]`.
    splash: Vec<[Bytes; 3]>,
    welcome: Vec<[Bytes; 3]>,
    retry: Vec<Bytes>,
    not_found: Vec<Bytes>,
    installed: Vec<Bytes>,
    signage: Vec<Bytes>,
    poster: Vec<Bytes>,
    /// Where a client without a grant is sent, and the body sent with it.
    pub portal_url: String,
    pub portal_redirect_body: Bytes,
    /// Where a granted client's stray request is sent.
    pub welcome_url: String,
    pub welcome_redirect_body: Bytes,
    pub stylesheet: Bytes,
    pub boards_stylesheet: Bytes,
    /// The signage's language rotation, timed for the languages the boards
    /// show (the campaign's, or an alert's), and how many they are.
    pub signage_cycle: Bytes,
    pub board_languages: usize,
}

impl Pages {
    /// Every page of `campaign`, or of the alert's notice in its place.
    pub fn build(config: &Config, campaign: &Campaign, alert: Option<&Alert>) -> anyhow::Result<Pages> {
        let notice = alert.map(|a| &a.notice);
        let boards = notice.map_or(campaign.locales.len(), |n| n.texts.len());
        let mut pages = Pages {
            splash: Vec::new(),
            welcome: Vec::new(),
            retry: Vec::new(),
            not_found: Vec::new(),
            installed: Vec::new(),
            signage: Vec::new(),
            poster: Vec::new(),
            portal_url: config.portal.public_url.url.clone(),
            portal_redirect_body: Bytes::new(),
            welcome_url: config.portal.public_url.join("welcome"),
            welcome_redirect_body: Bytes::new(),
            stylesheet: Bytes::from_static(STYLESHEET.as_bytes()),
            boards_stylesheet: Bytes::from_static(BOARDS_STYLESHEET.as_bytes()),
            signage_cycle: Bytes::from(views::cycle_css(boards)),
            board_languages: boards,
        };
        // A campaign has at least one language (checked at load).
        let first = &campaign.locales[0].tag;
        pages.portal_redirect_body = bytes(views::redirect_body(&pages.portal_url, first));
        pages.welcome_redirect_body = bytes(views::redirect_body(&pages.welcome_url, first));
        for (lang, locale) in campaign.locales.iter().enumerate() {
            let label = format!("{} – {}", campaign.name, locale.text.qr_caption);
            let qr_svg = qr::svg(&campaign.links.install_url, &label)
                .with_context(|| format!("making the QR code for {}", campaign.links.install_url))?;
            let page = Page { campaign, lang, venue: &config.venue, qr_svg: &qr_svg, alert: notice };
            pages.splash.push(Platform::ALL.map(|p| bytes(views::splash(&page, p))));
            pages.welcome.push(Platform::ALL.map(|p| bytes(views::welcome(&page, p))));
            pages.retry.push(bytes(views::retry(&page)));
            pages.not_found.push(bytes(views::not_found(&page)));
            pages.installed.push(bytes(views::installed(&page)));
            pages.signage.push(bytes(views::signage(&page)));
            pages.poster.push(bytes(views::poster(&page)));
        }
        Ok(pages)
    }

    pub fn splash(&self, lang: usize, platform: Platform) -> Bytes {
        self.splash[lang][platform.index()].clone()
    }

    pub fn welcome(&self, lang: usize, platform: Platform) -> Bytes {
        self.welcome[lang][platform.index()].clone()
    }

    pub fn retry(&self, lang: usize) -> Bytes {
        self.retry[lang].clone()
    }

    pub fn not_found(&self, lang: usize) -> Bytes {
        self.not_found[lang].clone()
    }

    pub fn installed(&self, lang: usize) -> Bytes {
        self.installed[lang].clone()
    }

    pub fn signage(&self, lang: usize) -> Bytes {
        self.signage[lang].clone()
    }

    pub fn poster(&self, lang: usize) -> Bytes {
        self.poster[lang].clone()
    }
}

fn bytes(markup: maud::Markup) -> Bytes {
    Bytes::from(markup.into_string())
}
