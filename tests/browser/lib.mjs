// Shared pieces of the browser call tests (tests/integration/test_call_*.py):
// Debian's Chromium through playwright-core with fake media devices (Firefox
// is in firefox.mjs, behind the same page API), a time limit around every
// scenario, and one in-page function (page_stats.js) that reads what the
// receiving side decoded from getStats().
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const NODE_MODULES = join(HERE, '..', 'node_modules');

export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  // Two tabs in two contexts both play media: neither may be throttled.
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--autoplay-policy=no-user-gesture-required',
];

export async function launch() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30000 });
}

// Defined in every test page before its own scripts, in every browser:
// window.__callStats(pc) is the report the Python tests judge (what was
// decoded, which pair is selected).
export const STATS_INIT = readFileSync(join(HERE, 'page_stats.js'), 'utf8');

export async function newPage(browser, log, name) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const page = await context.newPage();
  await page.addInitScript(STATS_INIT);
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log.push(`${name} ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => log.push(`${name} pageerror: ${e.message}`));
  return { context, page };
}

// Serve a file from the repository at url (same origin as tsunagi, so the
// page may open tsunagi's WebSocket and import the module).
export async function serveFile(page, urlGlob, path, contentType) {
  const body = readFileSync(path);
  await page.route(urlGlob, (route) => route.fulfill({ status: 200, contentType, body }));
}

// Show a test page from the repository under tsunagi's origin. The document
// itself must come from tsunagi: Chromium's local-network-access checks
// block a document that a route made up (it has no address space) from
// opening ws://127.0.0.1. So load a real (404) answer from tsunagi at
// base/__test__/ and replace its content; the page's relative imports
// resolve under /__test__/, where serveFile routes them.
export async function openTestPage(page, base, htmlPath) {
  await page.goto(base + '/__test__/');
  await page.setContent(readFileSync(htmlPath, 'utf8'));
}

export function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout after ' + ms + ' ms: ' + what)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Wait until fn(arg), run in the page, is truthy; at most ms. playwright's
// waitForFunction judges what the predicate returns without awaiting it, so
// for an async predicate it sees a Promise, always truthy, and the wait
// ends at the first poll whatever the page says (this made mediaFlow sample
// a call before any video arrived). An async predicate is therefore polled
// from here with evaluate, which awaits it in every engine.
export async function waitFor(page, fn, arg, ms, what) {
  const fail = (e) => { throw new Error('waiting for ' + what + ': ' + e.message.split('\n')[0]); };
  if (fn.constructor.name !== 'AsyncFunction') {
    return page.waitForFunction(fn, arg, { timeout: ms, polling: 100 }).catch(fail);
  }
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await page.evaluate(fn, arg).catch(fail);
    if (ok) return ok;
    if (Date.now() >= deadline) fail(new Error('timeout ' + ms + ' ms exceeded'));
    await sleep(100);
  }
}

// pcExpr: an expression, evaluated in the page, naming its RTCPeerConnection.
export function stats(page, pcExpr) {
  return page.evaluate((expr) => window.__callStats(eval(expr)), pcExpr);
}

// Wait until video frames and audio samples were decoded, then read again
// gapMs later, so the test sees the counters grow: {first, second}. The
// sample that ended the wait is the first, so first always shows decoded
// media; a call that decodes nothing within ms fails here, with the last
// sample in the message.
export async function mediaFlow(page, pcExpr, ms = 20000, gapMs = 2000) {
  const decoded = (s) => !!(s && s.inbound.video && s.inbound.video.framesDecoded > 0 &&
    s.inbound.audio && s.inbound.audio.totalSamplesReceived > 0);
  const deadline = Date.now() + ms;
  let first = await stats(page, pcExpr);
  while (!decoded(first)) {
    if (Date.now() >= deadline) {
      throw new Error('waiting for decoded audio and video: nothing within ' + ms + ' ms; last ' +
        pcExpr + ' stats: ' + JSON.stringify(first && { state: first.connectionState, inbound: first.inbound }));
    }
    await sleep(100);
    first = await stats(page, pcExpr);
  }
  await sleep(gapMs);
  const second = await stats(page, pcExpr);
  return { first, second };
}

// The browsers of a run, each launched when a scenario first opens a page in
// it and closed by close(). engines: {name: {launch(), newPage(browser, log,
// who)}}; newPage resolves to {context, page}, page with the playwright Page
// methods the scenarios use.
export class Browsers {
  constructor(engines) {
    this.engines = engines;
    this.launched = {};
  }

  async open(engine, log, who) {
    const e = this.engines[engine];
    if (!e) throw new Error('no browser engine ' + engine);
    if (!this.launched[engine]) this.launched[engine] = e.launch();
    return e.newPage(await this.launched[engine], log, who);
  }

  async close() {
    for (const launching of Object.values(this.launched)) {
      const browser = await launching.catch(() => null);
      if (browser) await browser.close().catch(() => {});
    }
  }
}

export const CHROMIUM = { launch, newPage };

// Run each named scenario with its own time limit; one report per name. A
// scenario opens each person's page with env.open(who, engine), in Chromium
// unless it names another engine of browsers.
export async function runScenarios(browsers, table, names, ctx, limitMs = 60000) {
  const reports = {};
  for (const name of names) {
    const fn = table[name];
    const log = [];
    const opened = [];
    const env = Object.assign({}, ctx, {
      log,
      open: async (who, engine = 'chromium') => {
        const p = await browsers.open(engine, log, who);
        opened.push(p.context);
        return p;
      },
    });
    const t0 = Date.now();
    try {
      if (!fn) throw new Error('no scenario ' + name);
      reports[name] = await withTimeout(fn(env), limitMs, name);
    } catch (e) {
      reports[name] = { error: String((e && e.stack) || e) };
    }
    reports[name].seconds = (Date.now() - t0) / 1000;
    reports[name].console = log.slice(-30);
    for (const c of opened) await c.close().catch(() => {});
  }
  return reports;
}
