//! The pages a phone sees, as maud functions returning `Markup`.
//!
//! What must stay true: no JavaScript, nothing from another origin, system
//! fonts only, one small stylesheet from `/assets/`, and the *Connect* button
//! is a plain `<form method="post">` so it works in every captive mini-browser.
//! Everything the campaign needs to say is on the splash itself, because
//! Android closes its login window the moment the network validates.
//! These functions run at start-up (see `pages`), never per request. The
//! signage boards and the printed poster are in their own files.

mod alert;
pub mod operator;
mod poster;
mod signage;

use maud::{DOCTYPE, Markup, PreEscaped, Render, html};

pub use poster::poster;
pub use signage::{SECONDS_PER_LANGUAGE, cycle_css, cycle_path, reload_after};

use crate::campaign::{Campaign, Locale};
use crate::config::Venue;
use crate::platform::Platform;

/// `/signage`: the campaign's board, or the emergency notice's in its
/// place.
pub fn signage(page: &Page) -> Markup {
    match page.alert {
        Some(notice) => alert::signage(page, notice),
        None => signage::board(page),
    }
}

/// What every page of one language needs.
pub struct Page<'a> {
    pub campaign: &'a Campaign,
    pub lang: usize,
    pub venue: &'a Venue,
    /// The campaign's QR code, an SVG document made at start-up.
    pub qr_svg: &'a str,
    /// The emergency notice in force, which takes the campaign's place.
    pub alert: Option<&'a crate::alert::Notice>,
}

/// The campaign's logo, decorative (the title beside it says the name).
pub(crate) fn logo(page: &Page) -> Markup {
    html! {
        @if let Some(logo) = page.campaign.logo() {
            img.logo src={ "/assets/campaign/" (logo.file) "?v=" (logo.version) } alt="" width="56" height="56";
        }
    }
}

impl Page<'_> {
    fn locale(&self) -> &Locale {
        &self.campaign.locales[self.lang]
    }
}

/// The `<head>` every page shares: UTF-8, a phone-sized viewport, a title
/// and our own stylesheets (never another origin's).
pub(crate) fn head(title: &str, stylesheets: &[&str], extra: Markup) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            (extra)
            title { (title) }
            @for href in stylesheets { link rel="stylesheet" href=(href); }
        }
    }
}

/// The whole document around a page body.
fn layout(page: &Page, title: &str, path: &str, body: Markup) -> Markup {
    let locale = page.locale();
    html! {
        (DOCTYPE)
        html lang=(locale.tag) {
            (head(title, &["/assets/portico.css"], html! {}))
            body {
                header.venue {
                    p { (locale.text.wifi_at) " " strong { (page.venue.name) } }
                    (LanguageSwitcher { page, path })
                }
                main { (body) }
                footer {
                    a href=(page.campaign.links.website) { (locale.text.website_label) }
                }
            }
        }
    }
}

/// Links to every language of the campaign, each in its own name.
struct LanguageSwitcher<'a> {
    page: &'a Page<'a>,
    path: &'a str,
}

impl Render for LanguageSwitcher<'_> {
    fn render(&self) -> Markup {
        let current = self.page.lang;
        html! {
            nav.langs aria-label=(self.page.locale().text.language_label) {
                ul {
                    @for (i, locale) in self.page.campaign.locales.iter().enumerate() {
                        li {
                            @if i == current {
                                a href={ (self.path) "?lang=" (locale.tag) } lang=(locale.tag) hreflang=(locale.tag) aria-current="page" { (locale.text.language_name) }
                            } @else {
                                a href={ (self.path) "?lang=" (locale.tag) } lang=(locale.tag) hreflang=(locale.tag) { (locale.text.language_name) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Where a store button goes: on the splash straight to the store; on
/// `/welcome`, online by then, through Portico's counted redirect.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StoreLinks {
    Direct,
    Counted,
}

/// Install steps and store button for one platform.
fn install_block(page: &Page, platform: Platform, links: StoreLinks) -> Markup {
    let t = &page.locale().text;
    let tag = &page.locale().tag;
    let (label, steps, direct, counted, button) = match platform {
        Platform::Ios => (&t.ios_label, &t.steps_ios, &page.campaign.links.app_store, "/go/app-store", &t.app_store),
        _ => (&t.android_label, &t.steps_android, &page.campaign.links.google_play, "/go/google-play", &t.google_play),
    };
    let href = match links {
        StoreLinks::Direct => direct.clone(),
        StoreLinks::Counted => format!("{counted}?lang={tag}"),
    };
    html! {
        section.platform {
            h3 { (label) }
            ol { @for step in steps { li { (step) } } }
            a.store href=(href) { (button) }
        }
    }
}

/// Install steps for both platforms, the visitor's first, then the QR code.
fn install(page: &Page, platform: Platform, links: StoreLinks) -> Markup {
    let t = &page.locale().text;
    let order = match platform {
        Platform::Ios => [Platform::Ios, Platform::Android],
        _ => [Platform::Android, Platform::Ios],
    };
    html! {
        section.install {
            h2 { (t.steps_title) }
            @for p in order { (install_block(page, p, links)) }
            p.note { (t.battery_note) }
            figure.qr {
                (PreEscaped(page.qr_svg))
                figcaption { (t.qr_caption) }
            }
        }
    }
}

pub fn splash(page: &Page, platform: Platform) -> Markup {
    if let Some(notice) = page.alert {
        return alert::splash(page, notice);
    }
    let t = &page.locale().text;
    let body = html! {
        div.title { (logo(page)) h1 { (t.title) } }
        p.slogan { (t.slogan) }
        p { (t.intro) }
        (install(page, platform, StoreLinks::Direct))
        form.connect method="post" action="/" {
            input type="hidden" name="lang" value=(page.locale().tag);
            button type="submit" { (t.connect) }
            p.note { (t.connect_note) }
        }
    };
    layout(page, &t.page_title, "/", body)
}

pub fn welcome(page: &Page, platform: Platform) -> Markup {
    if let Some(notice) = page.alert {
        return alert::welcome(page, notice);
    }
    let t = &page.locale().text;
    let body = html! {
        div.title { (logo(page)) h1 { (t.welcome_title) } }
        p.slogan { (t.slogan) }
        p { (t.welcome_text) }
        (installed_question(page))
        (install(page, platform, StoreLinks::Counted))
    };
    layout(page, &t.welcome_title, "/welcome", body)
}

/// "Already installed?" as one tap, if the campaign asks it.
fn installed_question(page: &Page) -> Markup {
    let t = &page.locale().text;
    match (page.campaign.ask_installed, &t.installed_question, &t.installed_button) {
        (true, Some(question), Some(button)) => html! {
            form.installed method="post" action={ "/installed?lang=" (page.locale().tag) } {
                p { (question) }
                button type="submit" { (button) }
            }
        },
        _ => html! {},
    }
}

/// The thanks after "already installed?".
pub fn installed(page: &Page) -> Markup {
    let t = &page.locale().text;
    let thanks = t.installed_thanks.as_deref().unwrap_or(&t.welcome_title);
    let body = html! {
        h1 { (thanks) }
        p { a href={ "/welcome?lang=" (page.locale().tag) } { (t.back_to_start) } }
    };
    layout(page, thanks, "/installed", body)
}

/// Shown with 503 when a grant could not be applied: the phone is told to
/// try again, and the button repeats the accept.
pub fn retry(page: &Page) -> Markup {
    let t = &page.locale().text;
    let body = html! {
        h1 { (t.retry_title) }
        p { (t.retry_text) }
        form.connect method="post" action="/" {
            input type="hidden" name="lang" value=(page.locale().tag);
            button type="submit" { (t.retry_button) }
        }
    };
    layout(page, &t.retry_title, "/", body)
}

pub fn not_found(page: &Page) -> Markup {
    let t = &page.locale().text;
    let body = html! {
        h1 { (t.not_found_title) }
        p { a href={ "/?lang=" (page.locale().tag) } { (t.back_to_start) } }
    };
    layout(page, &t.not_found_title, "/", body)
}

/// The small HTML body of a redirect, for clients that do not follow it,
/// in the campaign's first language (`lang`): it is made once, not per
/// visitor, and says nothing but the link.
pub fn redirect_body(location: &str, lang: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang) { head { meta charset="utf-8"; title { "Wi-Fi" } } body { p { a href=(location) { (location) } } } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_body_names_its_language_and_links_the_target() {
        let body = redirect_body("http://10.0.0.1/welcome", "vi").into_string();
        assert!(body.starts_with("<!DOCTYPE html><html lang=\"vi\">"), "{body}");
        assert!(body.contains(r#"<a href="http://10.0.0.1/welcome">"#), "{body}");
    }
}
