//! `/signage`: the notice on the electronic boards in lifts, halls and
//! stations. Full screen, no scrollbars, readable from a few metres (sizes
//! in viewport units), a large QR code, and it moves on to the next language
//! by itself with a meta refresh, because a board's browser may run no
//! script at all. Landscape (16:9) puts the text beside the code; portrait
//! stacks them.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::Page;

/// Seconds each language stays on the board.
pub const SECONDS_PER_LANGUAGE: u32 = 12;

pub fn signage(page: &Page) -> Markup {
    let campaign = page.campaign;
    let locale = &campaign.locales[page.lang];
    let t = &locale.text;
    let next = &campaign.locales[(page.lang + 1) % campaign.locales.len()].tag;
    html! {
        (DOCTYPE)
        html lang=(locale.tag) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if campaign.locales.len() > 1 {
                    meta http-equiv="refresh" content={ (SECONDS_PER_LANGUAGE) ";url=/signage?lang=" (next) };
                }
                title { (t.title) }
                link rel="stylesheet" href="/assets/boards.css";
            }
            body.signage {
                main.board {
                    div.board-text {
                        p.board-venue { (t.wifi_at) " " (page.venue.name) }
                        div.board-title { (super::logo(page)) h1 { (t.title) } }
                        p.board-slogan { (t.slogan) }
                        ol.board-steps { @for step in &t.poster_steps { li { (step) } } }
                    }
                    figure.board-qr {
                        (PreEscaped(page.qr_svg))
                        figcaption { (t.short_line) }
                    }
                }
            }
        }
    }
}
