//! `/poster`: the printed A4 notice. The print stylesheet sets the page to
//! A4 with fixed margins and sizes in millimetres, so a browser's *Print*
//! gives one clean page: title, slogan, three steps, a large QR code, the
//! short line in every language of the campaign, the venue's name and the
//! official website written out (a poster cannot be tapped).

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::Page;

pub fn poster(page: &Page) -> Markup {
    if let Some(notice) = page.alert {
        return super::alert::poster(page, notice);
    }
    let campaign = page.campaign;
    let locale = &campaign.locales[page.lang];
    let t = &locale.text;
    let website = campaign.links.website.trim_start_matches("https://").trim_end_matches('/');
    html! {
        (DOCTYPE)
        html lang=(locale.tag) {
            (super::head(&format!("{} – {}", t.title, page.venue.name), &["/assets/boards.css"], html! {}))
            body.poster {
                main.sheet {
                    p.poster-venue { (t.wifi_at) " " strong { (page.venue.name) } }
                    div.poster-title { (super::logo(page)) h1 { (t.title) } }
                    p.poster-slogan { (t.slogan) }
                    div.poster-body {
                        ol.poster-steps { @for step in &t.poster_steps { li { (step) } } }
                        figure.poster-qr {
                            (PreEscaped(page.qr_svg))
                            figcaption { (website) }
                        }
                    }
                    ul.poster-langs {
                        @for other in &campaign.locales {
                            li lang=(other.tag) { (other.text.short_line) }
                        }
                    }
                }
            }
        }
    }
}
