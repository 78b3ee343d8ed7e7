//! The pages while an alert is on (see [`crate::alert`]): the notice takes
//! the place of the campaign on every surface. The phone pages keep the
//! venue bar, the language links and, on the splash, the *Connect* button:
//! in an emergency a traveller needs the internet more, not less. The
//! boards show the notice alone, full screen, every language in turn; the
//! poster prints it in every language.

use maud::{DOCTYPE, Markup, html};

use super::Page;
use crate::alert::{Notice, NoticeText};

/// The notice in one language: its title and paragraphs, as the page's
/// main content. `role="alert"` so a screen reader announces it first.
fn notice(text: &NoticeText, heading: bool) -> Markup {
    html! {
        section.alert role="alert" lang=(text.tag) {
            @if heading { h1 { (text.title) } } @else { h2 { (text.title) } }
            @for p in &text.paragraphs { p { (p) } }
        }
    }
}

pub fn splash(page: &Page, n: &Notice) -> Markup {
    let t = &page.locale().text;
    let text = n.text_for(&page.locale().tag);
    let body = html! {
        (notice(text, true))
        form.connect method="post" action="/" {
            input type="hidden" name="lang" value=(page.locale().tag);
            button type="submit" { (t.connect) }
        }
    };
    super::layout(page, &text.title, "/", body)
}

pub fn welcome(page: &Page, n: &Notice) -> Markup {
    let t = &page.locale().text;
    let text = n.text_for(&page.locale().tag);
    let body = html! {
        (notice(text, true))
        p { (t.welcome_title) }
    };
    super::layout(page, &text.title, "/welcome", body)
}

/// The board: the notice in each of its languages in turn, starting with
/// the one closest to the page's (the cycle's stylesheet is made for the
/// notice's languages while the alert is on).
pub fn signage(page: &Page, n: &Notice) -> Markup {
    let first = n.texts.iter().position(|t| t == n.text_for(&page.locale().tag)).unwrap_or(0);
    let count = n.texts.len();
    let order = (0..count).map(|i| &n.texts[(first + i) % count]);
    html! {
        (DOCTYPE)
        html lang=(n.texts[first].tag) {
            (super::head(
                &n.texts[first].title,
                &["/assets/boards.css", &super::signage::cycle_path(count)],
                html! { meta http-equiv="refresh" content=(super::signage::RELOAD_SECONDS); },
            ))
            body.signage.alerting {
                main.board.board-alert {
                    div.board-panels {
                        @for text in order {
                            section.board-panel role="alert" lang=(text.tag) {
                                p.board-venue { (page.venue.name) }
                                h1 { (text.title) }
                                @for p in &text.paragraphs { p.board-text { (p) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The printed notice: the page's language first and large, then every
/// other language.
pub fn poster(page: &Page, n: &Notice) -> Markup {
    let text = n.text_for(&page.locale().tag);
    html! {
        (DOCTYPE)
        html lang=(text.tag) {
            (super::head(&format!("{} – {}", text.title, page.venue.name), &["/assets/boards.css"], html! {}))
            body.poster.alerting {
                main.sheet {
                    p.poster-venue { strong { (page.venue.name) } }
                    (notice(text, true))
                    @for other in n.texts.iter().filter(|t| *t != text) {
                        (notice(other, false))
                    }
                }
            }
        }
    }
}
