// Portico's pages in a real browser: Debian's chromium, headless, driven by
// playwright-core (browsers cannot be downloaded here, so no playwright
// browser build: `executablePath: '/usr/bin/chromium'`).
//
//   node tests/browser/pages.mjs <portal base URL> <output folder> <admin base URL>
//
// For every page (splash, welcome, signage, poster) in every language the
// splash's switcher offers, on a 360×740 Android phone: zero axe-core
// violations (WCAG 2.0/2.1 A and AA, and best practices), `<html lang>` is
// the tag, no sideways scroll, no request to another origin, HTTP 200, tap
// targets of at least 44×44 CSS px on the splash and welcome, and a
// full-page screenshot. The splash weighs at most 30 KiB with its
// stylesheet. Then the signage boards (landscape and portrait, no
// scrollbars, every language in turn by CSS), the printed poster (one
// A4 page), and *Connect* with JavaScript turned off (lands on /welcome,
// and the captive API then says the client is not captive). Last, the
// operator's page on the admin listener, in Vietnamese and English on the
// same phone, before anything is counted and after: zero axe violations,
// no sideways scroll, no script and nothing else loaded, `no-store`, and
// its two SVG charts drawn, empty and saying so, then with the day's bars.
//
// Every failure is collected and printed at the end; the exit code is 1 if
// there was any. tests/browser.rs starts Portico and runs this script.

import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];

// The campaign's languages (issue 4): the switcher must offer at least these.
const CAMPAIGN_LANGUAGES = ['vi', 'en', 'zh-Hans', 'zh-Hant', 'ko', 'ja', 'ru', 'fr'];
const SPLASH_BUDGET = 30 * 1024;
const MIN_TAP = 44;

const PHONE = {
  viewport: { width: 360, height: 740 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  userAgent:
    'Mozilla/5.0 (Linux; Android 13; SM-A146P) AppleWebKit/537.36 (KHTML, like Gecko) ' +
    'Chrome/120.0.0.0 Mobile Safari/537.36',
};
const BOARDS = [
  { name: 'landscape', viewport: { width: 1920, height: 1080 } },
  { name: 'portrait', viewport: { width: 1080, height: 1920 } },
];

// [name, path, tap targets checked]
const PAGES = [
  ['splash', '/', true],
  ['welcome', '/welcome', true],
  ['signage', '/signage', false],
  ['poster', '/poster', false],
];

// The operator's page is in these two only (src/views/operator.rs).
const OPERATOR_LANGUAGES = ['vi', 'en'];

const [baseArg, outArg, adminArg] = process.argv.slice(2);
if (!baseArg || !outArg || !adminArg) {
  console.error('usage: node pages.mjs <portal base URL> <output folder> <admin base URL>');
  process.exit(2);
}
const BASE = new URL(baseArg);
const ORIGIN = BASE.origin;
const ADMIN = new URL(adminArg);
const OUT = path.resolve(outArg);

const failures = [];
const notes = [];
function fail(where, what) {
  failures.push(`${where}: ${what}`);
  console.log(`  FAIL ${where}: ${what}`);
}
function note(where, what) {
  notes.push(`${where}: ${what}`);
}

function url(pathname, lang, base = BASE) {
  const u = new URL(pathname, base);
  if (lang) u.searchParams.set('lang', lang);
  return u.href;
}

// A fresh context (empty cache, so every page's weight includes its
// stylesheet) that records every request and refuses any to another origin
// than `origin` (the portal's, unless told).
async function openContext(browser, options, origin = ORIGIN) {
  const context = await browser.newContext(options);
  const log = { finished: [], foreign: [], failed: [], errors: [] };
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith('data:') || new URL(u).origin === origin) return route.continue();
    log.foreign.push(`${route.request().method()} ${u}`);
    return route.abort('blockedbyclient');
  });
  context.on('requestfinished', (req) => {
    log.finished.push(
      req.sizes().then(
        (sizes) => ({ url: req.url(), sizes, req }),
        () => ({ url: req.url(), sizes: null, req }),
      ),
    );
  });
  context.on('requestfailed', (req) => {
    if (new URL(req.url()).origin === origin) log.failed.push(`${req.url()} (${req.failure()?.errorText})`);
  });
  context.on('response', (res) => {
    if (res.status() >= 400) log.errors.push(`${res.status()} ${res.url()}`);
  });
  return { context, log };
}

// Bytes of every response body that arrived (as transferred: encoded size),
// and the requests, once the page has gone quiet.
async function weigh(log) {
  const done = await Promise.all(log.finished);
  let bytes = 0;
  const parts = [];
  for (const { url: u, sizes, req } of done) {
    let size = sizes?.responseBodySize;
    if (size == null || size < 0) {
      const res = await req.response();
      size = res ? (await res.body().catch(() => Buffer.alloc(0))).length : 0;
    }
    bytes += size;
    parts.push(`${new URL(u).pathname}${new URL(u).search}=${size}`);
  }
  return { bytes, parts };
}

async function runAxe(page) {
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(async (tags) => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, {
      runOnly: { type: 'tag', values: tags },
      resultTypes: ['violations', 'incomplete'],
    });
    const brief = (items) =>
      items.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => ({
          target: n.target.join(' '),
          summary: (n.failureSummary || '').replace(/\s+/g, ' ').trim(),
        })),
      }));
    return { violations: brief(result.violations), incomplete: brief(result.incomplete) };
  }, AXE_TAGS);
}

// axe's violations on the page fail `where`; what it could not decide is
// noted for review.
async function checkAxe(where, page) {
  const { violations, incomplete } = await runAxe(page);
  for (const v of violations) {
    const targets = v.nodes.map((n) => `${n.target}${n.summary ? ` [${n.summary}]` : ''}`).join(' | ');
    fail(where, `axe ${v.id} (${v.impact}): ${v.help} — ${targets}`);
  }
  for (const v of incomplete) {
    note(where, `axe needs review: ${v.id} (${v.help}) on ${v.nodes.map((n) => n.target).join(' | ')}`);
  }
}

// Interactive elements smaller than 44×44 CSS px. A link that is part of a
// sentence (display inline, with other text around it) is exempt, as in
// WCAG 2.5.5's "inline" exception; it is reported separately.
function tapTargets(page) {
  return page.evaluate((min) => {
    const describe = (el) => {
      const parts = [];
      for (let e = el; e && e !== document.body; e = e.parentElement) {
        let part = e.localName + [...e.classList].map((c) => `.${c}`).join('');
        const same = e.parentElement ? [...e.parentElement.children].filter((c) => c.localName === e.localName) : [];
        if (same.length > 1) part += `:nth-of-type(${same.indexOf(e) + 1})`;
        parts.unshift(part);
        if (e.classList.length && parts.length > 1) break;
      }
      return `${parts.join(' > ')} "${el.textContent.trim().slice(0, 40)}"`;
    };
    const small = [];
    const inline = [];
    for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')) {
      const style = getComputedStyle(el);
      if (style.display === 'none' || style.visibility === 'hidden') continue;
      const r = el.getBoundingClientRect();
      if (r.width >= min && r.height >= min) continue;
      const item = `${describe(el)} ${r.width.toFixed(1)}×${r.height.toFixed(1)}`;
      const inSentence =
        style.display === 'inline' &&
        el.parentElement &&
        el.parentElement.textContent.trim().length > el.textContent.trim().length;
      (inSentence ? inline : small).push(item);
    }
    return { small, inline };
  }, MIN_TAP);
}

// The outermost elements sticking out to the right of a `width`-px
// viewport (their parent fits): where a fix belongs.
function overflowing(page, width) {
  return page.evaluate((width) => {
    const out = [];
    const sticksOut = (el) => el.getBoundingClientRect().right > width + 0.5;
    for (const el of document.body.querySelectorAll('*')) {
      if (sticksOut(el) && (el.parentElement === document.body || !sticksOut(el.parentElement))) {
        const r = el.getBoundingClientRect();
        out.push(`${el.localName}${[...el.classList].map((c) => `.${c}`).join('')} ${r.width.toFixed(0)} px wide, right edge at ${r.right.toFixed(0)}`);
      }
    }
    return out.slice(0, 5);
  }, width);
}

// Boxes that hide what does not fit (overflow hidden or clip) and have
// more content than room: text cut off on a board or a printed sheet,
// which no scrollbar and no page count would reveal.
function clipped(page) {
  return page.evaluate(() => {
    const out = [];
    for (const el of document.body.querySelectorAll('*')) {
      if (el instanceof SVGElement) continue;
      const style = getComputedStyle(el);
      if (!/hidden|clip/.test(`${style.overflowX} ${style.overflowY}`)) continue;
      if (el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1) {
        const name = `${el.localName}${[...el.classList].map((c) => `.${c}`).join('')}`;
        out.push(`${name} holds ${el.scrollWidth}×${el.scrollHeight} px in ${el.clientWidth}×${el.clientHeight}`);
      }
    }
    return out;
  });
}

// The splash's language switcher, read as a visitor would see it.
async function languages(browser) {
  const { context } = await openContext(browser, PHONE);
  const page = await context.newPage();
  await page.goto(url('/'));
  const tags = await page.$$eval('nav a[hreflang]', (links) => links.map((a) => a.getAttribute('hreflang')));
  await context.close();
  const unique = [...new Set(tags)];
  if (unique.length < CAMPAIGN_LANGUAGES.length) {
    fail('splash', `the language switcher offers ${unique.length} languages (${unique.join(', ')}), fewer than ${CAMPAIGN_LANGUAGES.length}`);
  }
  for (const tag of CAMPAIGN_LANGUAGES) {
    if (!unique.includes(tag)) fail('splash', `the language switcher does not offer ${tag}`);
  }
  return unique.length ? unique : CAMPAIGN_LANGUAGES;
}

// One page in one language on the phone; returns its weight and its h1.
async function onPhone(browser, name, pathname, taps, lang) {
  const where = `${name}?lang=${lang}`;
  const { context, log } = await openContext(browser, PHONE);
  const page = await context.newPage();
  const result = { bytes: null, requests: [], h1: null };
  try {
    const res = await page.goto(url(pathname, lang), { waitUntil: 'load' });
    await page.waitForLoadState('networkidle');
    if (res.status() !== 200) fail(where, `HTTP ${res.status()}`);

    const { bytes, parts } = await weigh(log);
    result.bytes = bytes;
    result.requests = parts;
    if (name === 'splash' && bytes > SPLASH_BUDGET) {
      fail(where, `weighs ${bytes} bytes, over the ${SPLASH_BUDGET}-byte budget (${parts.join(', ')})`);
    }
    for (const f of log.foreign) fail(where, `request to another origin: ${f}`);
    for (const f of log.failed) fail(where, `request failed: ${f}`);
    for (const e of log.errors) fail(where, `error response: ${e}`);

    const htmlLang = await page.evaluate(() => document.documentElement.getAttribute('lang'));
    if (htmlLang !== lang) fail(where, `<html lang="${htmlLang}">, expected "${lang}"`);

    const box = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
    }));
    if (box.scrollWidth > box.innerWidth || box.scrollWidth > PHONE.viewport.width) {
      const culprits = await overflowing(page, PHONE.viewport.width);
      fail(
        where,
        `scrolls sideways: scrollWidth ${box.scrollWidth} > innerWidth ${box.innerWidth} at ${PHONE.viewport.width} px` +
          (culprits.length ? ` (sticking out: ${culprits.join('; ')})` : ''),
      );
    }

    if (taps) {
      const { small, inline } = await tapTargets(page);
      for (const s of small) fail(where, `tap target under ${MIN_TAP}×${MIN_TAP} px: ${s}`);
      for (const s of inline) note(where, `inline link in running text, exempt from the tap-target size: ${s}`);
    }

    result.h1 = await page.evaluate(() => document.querySelector('h1')?.textContent.trim() ?? null);
    if (!result.h1) fail(where, 'no h1');

    await page.screenshot({ path: path.join(OUT, `${name}-${lang}.png`), fullPage: true });

    await checkAxe(where, page);
  } catch (e) {
    fail(where, `error: ${e.message.split('\n')[0]}`);
  } finally {
    await context.close();
  }
  return result;
}

// The signage board at full-HD landscape and portrait: no scrollbars, a
// panel for every language starting with the one asked for, exactly one
// shown at a time, and the CSS rotation moving on to the next (checked by
// fast-forwarding the page's animations rather than waiting).
async function boards(browser, tags) {
  for (const board of BOARDS) {
    const { context, log } = await openContext(browser, { viewport: board.viewport, deviceScaleFactor: 1 });
    const page = await context.newPage();
    for (const [i, lang] of tags.entries()) {
      const where = `signage?lang=${lang} ${board.viewport.width}×${board.viewport.height}`;
      try {
        await page.goto(url('/signage', lang), { waitUntil: 'load' });
        const shownAt = (ms) =>
          page.evaluate((ms) => {
            for (const a of document.getAnimations()) {
              a.pause();
              a.currentTime = ms;
            }
            return [...document.querySelectorAll('.board-panel')]
              .filter((p) => getComputedStyle(p).visibility === 'visible')
              .map((p) => p.lang);
          }, ms);
        const box = await page.evaluate(() => ({
          scrollWidth: document.documentElement.scrollWidth,
          scrollHeight: document.documentElement.scrollHeight,
          innerWidth: window.innerWidth,
          innerHeight: window.innerHeight,
          panels: [...document.querySelectorAll('.board-panel')].map((p) => p.lang),
        }));
        if (box.scrollWidth > box.innerWidth || box.scrollHeight > box.innerHeight) {
          fail(where, `does not fit: content ${box.scrollWidth}×${box.scrollHeight} in ${box.innerWidth}×${box.innerHeight}`);
        }
        for (const c of await clipped(page)) fail(where, `content cut off: ${c}`);
        const rotated = tags.slice(i).concat(tags.slice(0, i));
        if (JSON.stringify(box.panels) !== JSON.stringify(rotated)) {
          fail(where, `panels ${box.panels.join(',')}, expected ${rotated.join(',')}`);
        }
        const first = await shownAt(500);
        const second = await shownAt(12_500);
        const next = tags[(i + 1) % tags.length];
        if (JSON.stringify(first) !== JSON.stringify([lang])) fail(where, `shown first: ${first}, expected ${lang}`);
        if (JSON.stringify(second) !== JSON.stringify([next])) fail(where, `shown after 12.5 s: ${second}, expected ${next}`);
        await shownAt(500);
        await page.screenshot({ path: path.join(OUT, `signage-${board.name}-${lang}.png`) });
      } catch (e) {
        fail(where, `error: ${e.message.split('\n')[0]}`);
      }
    }
    for (const f of log.foreign) fail(`signage ${board.name}`, `request to another origin: ${f}`);
    await context.close();
  }
}

// The poster printed to A4: exactly one page. The PDF of the default
// language (and of any that fails) is kept.
async function posters(browser, tags) {
  const { context } = await openContext(browser, {});
  const page = await context.newPage();
  for (const [i, lang] of tags.entries()) {
    const where = `poster?lang=${lang} print`;
    try {
      await page.goto(url('/poster', lang), { waitUntil: 'load' });
      await page.emulateMedia({ media: 'print' });
      for (const c of await clipped(page)) fail(where, `content cut off: ${c}`);
      const pdf = await page.pdf({ format: 'A4', printBackground: true });
      const pages = (pdf.toString('latin1').match(/\/Type\s*\/Page(?!s)/g) || []).length;
      if (pages !== 1) fail(where, `prints on ${pages} A4 pages, expected 1 (saved poster-${lang}.pdf)`);
      if (i === 0 || pages !== 1) await writeFile(path.join(OUT, `poster-${lang}.pdf`), pdf);
      await page.emulateMedia({ media: 'screen' });
    } catch (e) {
      fail(where, `error: ${e.message.split('\n')[0]}`);
    }
  }
  await context.close();
}

async function captive(context) {
  const res = await context.request.get(url('/api/captive'), { headers: { accept: 'application/captive+json' } });
  return { status: res.status(), body: await res.text() };
}

// *Connect* with JavaScript turned off, as in a captive mini-browser that
// runs none: the form's plain POST must land on /welcome, 200, in the
// same language, and the captive API must then say "not captive".
async function connectWithoutScript(browser, tags, welcomeH1) {
  const { context, log } = await openContext(browser, { ...PHONE, javaScriptEnabled: false });
  try {
    // Make sure the page's own scripts really do not run here (playwright's
    // evaluate still works: it is the devtools protocol, not the page).
    const probe = await context.newPage();
    await probe.setContent('<p id="js">off</p><script>document.getElementById("js").textContent = "on"</script>');
    const js = await probe.textContent('#js');
    await probe.close();
    if (js !== 'off') fail('connect', `JavaScript still runs in the javaScriptEnabled: false context (${js})`);
    const before = await captive(context);
    if (!/"captive"\s*:\s*true/.test(before.body)) {
      fail('connect', `before Connect, /api/captive says ${before.body} (HTTP ${before.status}), expected "captive":true`);
    }
    for (const lang of tags) {
      const where = `connect without JavaScript, lang=${lang}`;
      const page = await context.newPage();
      try {
        const navigations = [];
        page.on('response', (res) => {
          if (res.request().isNavigationRequest() && res.frame() === page.mainFrame()) {
            navigations.push(`${res.request().method()} ${new URL(res.url()).pathname} → ${res.status()}`);
          }
        });
        await page.goto(url('/', lang));
        const landed = page.waitForResponse(
          (res) => res.request().isNavigationRequest() && new URL(res.url()).pathname === '/welcome',
          { timeout: 15000 },
        );
        await page.locator('form[method="post" i] [type="submit"]').click();
        const res = await landed;
        await page.waitForLoadState('load');
        const final = new URL(page.url());
        if (final.pathname !== '/welcome') fail(where, `ended on ${page.url()}, expected /welcome`);
        if (res.status() !== 200) fail(where, `/welcome answered HTTP ${res.status()}`);
        if (final.searchParams.get('lang') !== lang) fail(where, `landed on ${final.pathname}${final.search}, not in ${lang}`);
        const post = navigations.find((n) => n.startsWith('POST '));
        if (!post || !post.endsWith('303')) fail(where, `the form's POST answered ${post ?? 'nothing'}, expected 303`);
        // Read without script: the page's own text, from the accessibility tree.
        const h1 = (await page.locator('h1').first().textContent())?.trim();
        if (!h1 || h1 !== welcomeH1[lang]) {
          fail(where, `the page says ${JSON.stringify(h1)}, expected the welcome heading ${JSON.stringify(welcomeH1[lang])}`);
        }
        if (lang === 'en' && !/online|connected/i.test(h1 ?? '')) fail(where, `"${h1}" does not say the device is online`);
      } catch (e) {
        fail(where, `error: ${e.message.split('\n')[0]}`);
      } finally {
        await page.close();
      }
    }
    const after = await captive(context);
    if (!/"captive"\s*:\s*false/.test(after.body)) {
      fail('connect', `after Connect, /api/captive says ${after.body} (HTTP ${after.status}), expected "captive":false`);
    }
    for (const f of log.foreign) fail('connect', `request to another origin: ${f}`);
  } finally {
    await context.close();
  }
}

// The operator's page in one language on the phone. `counted` says
// whether the browser has been through the splash and *Connect* by now
// (one device, from one address): before, both charts must be empty and
// say so; after, they draw bars and the figures say one device was shown
// the notice, connected and is online.
async function operator(browser, lang, counted) {
  const where = `operator?lang=${lang}${counted ? '' : ' (nothing counted yet)'}`;
  const { context, log } = await openContext(browser, PHONE, ADMIN.origin);
  const page = await context.newPage();
  try {
    const res = await page.goto(url('/', lang, ADMIN), { waitUntil: 'load' });
    await page.waitForLoadState('networkidle');
    if (res.status() !== 200) fail(where, `HTTP ${res.status()}`);
    if (res.headers()['cache-control'] !== 'no-store') {
      fail(where, `Cache-Control: ${res.headers()['cache-control']}, expected no-store`);
    }
    const { parts } = await weigh(log);
    if (parts.length !== 1) fail(where, `loads more than itself: ${parts.join(', ')}`);
    for (const f of log.foreign) fail(where, `request to another origin: ${f}`);
    for (const e of log.errors) fail(where, `error response: ${e}`);

    const seen = await page.evaluate(() => ({
      lang: document.documentElement.getAttribute('lang'),
      scripts: document.querySelectorAll('script').length,
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      charts: [...document.querySelectorAll('svg[role="img"]')].map((svg) => ({
        name: (svg.getAttribute('aria-labelledby') || '')
          .split(' ')
          .map((id) => document.getElementById(id)?.textContent.trim() ?? '')
          .join(' '),
        width: svg.getBoundingClientRect().width,
        bars: [...svg.querySelectorAll('rect')].filter((r) => Number(r.getAttribute('height')) > 0).length,
        empty: svg.querySelector('.empty') !== null,
      })),
      figures: [...document.querySelectorAll('.figures dd')].map((dd) => Number(dd.textContent)),
    }));
    if (seen.lang !== lang) fail(where, `<html lang="${seen.lang}">, expected "${lang}"`);
    if (seen.scripts !== 0) fail(where, `${seen.scripts} script element(s)`);
    if (seen.scrollWidth > seen.innerWidth || seen.scrollWidth > PHONE.viewport.width) {
      const culprits = await overflowing(page, PHONE.viewport.width);
      fail(where, `scrolls sideways: scrollWidth ${seen.scrollWidth} at ${PHONE.viewport.width} px (${culprits.join('; ')})`);
    }
    if (seen.charts.length !== 2) fail(where, `${seen.charts.length} SVG charts, expected 2 (today by hour, last 30 days)`);
    for (const [i, chart] of seen.charts.entries()) {
      const which = `${where} chart ${i + 1}`;
      if (chart.name.length < 10) fail(which, `no text alternative (accessible name "${chart.name}")`);
      if (chart.width < 250) fail(which, `drawn ${chart.width.toFixed(0)} px wide on a ${PHONE.viewport.width} px phone`);
      if (!counted && (chart.bars > 0 || !chart.empty)) fail(which, `${chart.bars} bars before anything was counted`);
      if (counted && (chart.bars === 0 || chart.empty)) fail(which, 'no bars after a device was shown the notice and connected');
    }
    // Online now, shown the notice, connected, returning, splash views.
    const [online, shown, connected] = seen.figures;
    const expected = counted ? [1, 1, 1] : [0, 0, 0];
    if (JSON.stringify([online, shown, connected]) !== JSON.stringify(expected)) {
      fail(where, `online now, shown and connected are ${[online, shown, connected].join(', ')}, expected ${expected.join(', ')}`);
    }
    const { small, inline } = await tapTargets(page);
    for (const s of small) fail(where, `tap target under ${MIN_TAP}×${MIN_TAP} px: ${s}`);
    for (const s of inline) note(where, `inline link in running text, exempt from the tap-target size: ${s}`);

    await page.screenshot({ path: path.join(OUT, `operator-${counted ? '' : 'empty-'}${lang}.png`), fullPage: true });
    await checkAxe(where, page);
  } catch (e) {
    fail(where, `error: ${e.message.split('\n')[0]}`);
  } finally {
    await context.close();
  }
}

function table(tags, weights) {
  const names = PAGES.map(([name]) => name);
  const width = Math.max(8, ...tags.map((t) => t.length)) + 1;
  const lines = [['lang'.padEnd(width), ...names.map((n) => n.padStart(9))].join('')];
  for (const lang of tags) {
    lines.push(
      [lang.padEnd(width), ...names.map((n) => String(weights[n]?.[lang] ?? '-').padStart(9))].join(''),
    );
  }
  return lines.join('\n');
}

async function main() {
  await mkdir(OUT, { recursive: true });
  const started = Date.now();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  console.log(`chromium ${browser.version()} at ${CHROMIUM}; portal ${ORIGIN}; admin ${ADMIN.origin}`);
  const weights = {};
  const requests = {};
  const welcomeH1 = {};
  try {
    // Before the splash is first loaded, so that nothing is counted yet.
    for (const lang of OPERATOR_LANGUAGES) await operator(browser, lang, false);
    const tags = await languages(browser);
    console.log(`languages offered by the splash: ${tags.join(', ')}`);
    for (const [name, pathname, taps] of PAGES) {
      weights[name] = {};
      requests[name] = {};
      for (const lang of tags) {
        const { bytes, requests: parts, h1 } = await onPhone(browser, name, pathname, taps, lang);
        weights[name][lang] = bytes;
        requests[name][lang] = parts;
        if (name === 'welcome') welcomeH1[lang] = h1;
        console.log(`  ${name}?lang=${lang}: ${bytes ?? '?'} bytes`);
      }
    }
    await boards(browser, tags);
    await posters(browser, tags);
    await connectWithoutScript(browser, tags, welcomeH1);
    for (const lang of OPERATOR_LANGUAGES) await operator(browser, lang, true);

    console.log(`\nPage weight in bytes (response bodies as transferred, stylesheet included; splash budget ${SPLASH_BUDGET}):`);
    console.log(table(tags, weights));
    await writeFile(path.join(OUT, 'weights.json'), `${JSON.stringify({ bytes: weights, requests }, null, 2)}\n`);
  } finally {
    await browser.close();
  }
  if (notes.length) {
    console.log(`\nNotes (not failures):`);
    for (const n of notes) console.log(`  ${n}`);
  }
  console.log(`\nScreenshots and the poster PDF: ${OUT}`);
  console.log(`Took ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  if (failures.length) {
    console.log(`\n${failures.length} failure(s):`);
    for (const f of failures) console.log(`  ${f}`);
    process.exit(1);
  }
  console.log('\nAll browser checks passed.');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
