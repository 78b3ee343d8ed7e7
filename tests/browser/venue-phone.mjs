// The traveller's browser in the venue test (tests/venue/browser.rs):
// Debian's headless chromium, driven by playwright-core, run inside a
// phone's network namespace (`ip netns exec PHONE node venue-phone.mjs
// PROFILE`). It must behave like stock Chrome: HTTPS upgrades on (see
// DISABLED_FEATURES), its own connection reuse and its own address order.
//
// A line protocol, so the Rust side can interleave revokes and timing:
// one command per line on stdin, one JSON object per line on stdout.
//
//   goto URL   navigate the one tab to URL and wait for `load`
//   click      click the splash form's submit button (a real click) and
//              wait for the navigation it causes
//   quit       close chromium and exit
//
// Every answer has `ok`, `t0` and `t1` (milliseconds on this process's
// monotonic clock: when the command began and ended) and `wall` (Unix
// milliseconds at `t1`). A navigation also has `url` (where it ended),
// `status`, `upstream` (the venue upstream's `x-venue-upstream` header, or
// null), `server` (the address chromium connected to), `chain` (the
// redirects, oldest first, each `STATUS URL [via ADDRESS PORT]`), `title`
// and `text` (the start of the body). `click` adds `button` (its text) and
// `accept_ms` (request sent to first byte of the answer, for the POST).
// On failure: `error`.
// The first line, once chromium is up, is `{"ready":true,...}`.

import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';

const [profile] = process.argv.slice(2);
if (!profile) {
  console.error('usage: node venue-phone.mjs <fresh profile folder>');
  process.exit(2);
}

// playwright-core 1.65.1 (chromiumSwitches.ts) launches chromium with
// `--disable-features=` this list plus `HttpsUpgrades` and
// `HttpsFirstBalancedModeAutoEnable`, which keeps http:// navigations on
// http. Stock Chrome upgrades them (and falls back to http when 443 fails),
// and that changes what a captive portal sees, so the same switch is given
// again without those two: chromium keeps the last value of a repeated
// switch. The venue test proves the upgrade happens (the upstream's 443
// sees chromium's ClientHello). Keep this list in step with the pinned
// playwright-core.
const DISABLED_FEATURES = [
  'AvoidUnnecessaryBeforeUnloadCheckSync',
  'DestroyProfileOnBrowserClose',
  'LensOverlay',
  'MediaRouter',
  'PaintHolding',
  'ThirdPartyStoragePartitioning',
  'AvoidCorsURLLoaderRestartOnRedirect',
  'TcpPortRandomizationWin',
  'OptimizationHints',
  'NetworkTimeServiceQuerying',
  'AimEnabled',
  'PreconnectToSearch',
  'msForceBrowserSignIn',
  'msEdgeUpdateLaunchServicesPreferredVersion',
];

const NAVIGATION_TIMEOUT = 15_000;

const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: [...CHROMIUM_ARGS, '--disable-features=' + DISABLED_FEATURES.join(',')],
  viewport: { width: 360, height: 740 },
});
const page = context.pages()[0] ?? (await context.newPage());

function say(answer) {
  process.stdout.write(JSON.stringify(answer) + '\n');
}

// What a navigation ended on, from its final response.
async function visit(response) {
  if (!response) {
    return { url: page.url(), status: null, upstream: null, server: null, chain: [], title: '', text: '' };
  }
  const chain = [];
  for (let r = response.request().redirectedFrom(); r; r = r.redirectedFrom()) {
    const earlier = await r.response();
    const from = earlier ? await earlier.serverAddr() : null;
    const via = from ? ` via ${from.ipAddress} ${from.port}` : '';
    chain.unshift(`${earlier ? earlier.status() : '?'} ${r.url()}${via}`);
  }
  const server = await response.serverAddr();
  const text = (await page.evaluate(() => document.body?.innerText ?? '')).slice(0, 200);
  return {
    url: response.url(),
    status: response.status(),
    upstream: (await response.headerValue('x-venue-upstream')) ?? null,
    server: server ? `${server.ipAddress} ${server.port}` : null,
    chain,
    title: await page.title(),
    text,
  };
}

async function run(line) {
  const [command, ...rest] = line.trim().split(' ');
  const argument = rest.join(' ');
  switch (command) {
    case 'goto':
      return visit(await page.goto(argument, { waitUntil: 'load', timeout: NAVIGATION_TIMEOUT }));
    case 'click': {
      // The splash's accept action is its one post form (DESIGN.md).
      const button = page.locator('form[method="post" i] [type="submit"]').first();
      const label = (await button.innerText({ timeout: 2_000 })).trim();
      const [response] = await Promise.all([
        page.waitForNavigation({ waitUntil: 'load', timeout: NAVIGATION_TIMEOUT }),
        button.click(),
      ]);
      // How long Portico took to answer the accept (request sent → first
      // byte of its 303), from chromium's own timing of the POST.
      const post = response?.request().redirectedFrom()?.timing();
      const accept_ms = post && post.responseStart >= 0 ? post.responseStart - post.requestStart : null;
      return { button: label, accept_ms, ...(await visit(response)) };
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(line)}`);
  }
}

say({ ready: true, ok: true, t0: 0, t1: performance.now(), wall: Date.now(), version: context.browser()?.version() });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === 'quit') {
    break;
  }
  const t0 = performance.now();
  try {
    const answer = await run(line);
    say({ ok: true, t0, t1: performance.now(), wall: Date.now(), ...answer });
  } catch (e) {
    say({ ok: false, t0, t1: performance.now(), wall: Date.now(), url: page.url(), error: String(e.message ?? e).split('\n')[0] });
  }
}
await context.close();
