//! `/signage`: the notice on the electronic boards in lifts, halls and
//! stations. Full screen, no scrollbars, readable from a few metres (sizes
//! in viewport units), one large QR code, and every language of the
//! campaign in turn.
//!
//! The languages take turns by CSS alone: the page holds one panel per
//! language, stacked in one grid cell, and a keyframe animation makes each
//! visible for [`SECONDS_PER_LANGUAGE`] in turn (a board's browser may run no
//! script). Not a short meta refresh in the page: that fails WCAG 2.2.1,
//! and it would reload the page every few seconds. The page's own refresh
//! is daily; the board is told by an HTTP `Refresh` header of one whole
//! cycle ([`reload_after`]) to load the page again when its cycle ends, so
//! a new campaign or an emergency notice reaches every board within a
//! cycle, and never cuts one short. The timing depends on how many
//! languages the board shows, so its stylesheet ([`cycle_css`]) is made
//! with the pages, under a name that holds the count ([`cycle_path`]): a
//! board's cached stylesheet of another count is never used for it.
//! Landscape (16:9) puts the text beside the code; portrait stacks them.

use std::fmt::Write as _;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::Page;

/// Seconds each language stays on the board.
pub const SECONDS_PER_LANGUAGE: u32 = 12;

/// The board reloads itself once a day (WCAG 2.2.1 allows 20 hours and up).
pub(super) const RELOAD_SECONDS: u32 = 86_400;

/// Where the board's stylesheet for `languages` panels is served.
pub fn cycle_path(languages: usize) -> String {
    format!("/assets/signage-cycle-{languages}.css")
}

/// The seconds of one whole cycle of `languages` panels: how long a board
/// waits before it loads the page again.
pub fn reload_after(languages: usize) -> u32 {
    SECONDS_PER_LANGUAGE * languages.max(1) as u32
}

/// The campaign's board, starting with `page.lang` and then the others in
/// campaign order.
pub fn board(page: &Page) -> Markup {
    let campaign = page.campaign;
    let locale = &campaign.locales[page.lang];
    let n = campaign.locales.len();
    let order = (0..n).map(|i| &campaign.locales[(page.lang + i) % n]);
    html! {
        (DOCTYPE)
        html lang=(locale.tag) {
            (super::head(
                &locale.text.title,
                &["/assets/boards.css", &cycle_path(n)],
                html! { meta http-equiv="refresh" content=(RELOAD_SECONDS); },
            ))
            body.signage {
                main.board {
                    div.board-panels {
                        @for other in order {
                            section.board-panel lang=(other.tag) {
                                p.board-venue { (other.text.wifi_at) " " (page.venue.name) }
                                div.board-title { (super::logo(page)) h1 { (other.text.title) } }
                                p.board-slogan { (other.text.slogan) }
                                ol.board-steps { @for step in &other.text.poster_steps { li { (step) } } }
                                p.board-short { (other.text.short_line) }
                            }
                        }
                    }
                    figure.board-qr { (PreEscaped(page.qr_svg)) }
                }
            }
        }
    }
}

/// The animation for `languages` panels: each visible for its share of the
/// cycle, starting one after another.
pub fn cycle_css(languages: usize) -> String {
    let mut css = String::from("/* Made at start-up for this campaign's languages. */\n");
    if languages <= 1 {
        css.push_str(".board-panel{visibility:visible}\n");
        return css;
    }
    let cycle = SECONDS_PER_LANGUAGE as usize * languages;
    let share = 100.0 / languages as f64;
    let _ = writeln!(css, ".board-panel{{animation:board-turn {cycle}s step-end infinite}}");
    let _ = writeln!(css, "@keyframes board-turn{{0%{{visibility:visible}}{share:.3}%,100%{{visibility:hidden}}}}");
    for i in 1..languages {
        let _ = writeln!(
            css,
            ".board-panel:nth-child({}){{animation-delay:{}s}}",
            i + 1,
            i * SECONDS_PER_LANGUAGE as usize
        );
    }
    css
}
