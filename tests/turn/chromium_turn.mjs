// Chromium (Debian's /usr/bin/chromium, driven by playwright-core) through
// tsunagi's TURN relay: load PAGE_URL (tests/turn/www/turn.html, served by
// tsunagi from a temporary --web-root), run runTurn(TRANSPORT) for each
// transport given, and print {pageStatus, reports: {udp: ..., tcp: ...}} as
// JSON on the last line.
//
//   node chromium_turn.mjs PAGE_URL udp tcp
//
// Exit status: 0 if the page ran (the caller judges the reports), 2 if the
// browser or the page could not be driven at all.
import { chromium } from 'playwright-core';

const [pageUrl, ...transports] = process.argv.slice(2);
// Debugging: TSUNAGI_TURN_ICE holds an /api/ice-servers answer to use instead.
const iceOverride = process.env.TSUNAGI_TURN_ICE ? JSON.parse(process.env.TSUNAGI_TURN_ICE) : null;
const out = { pageUrl, reports: {} };
let browser;
try {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns'],
    timeout: 30000,
  });
  const context = await browser.newContext();
  const page = await context.newPage();
  const console_ = [];
  page.on('console', (m) => console_.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console_.push(`pageerror: ${e.message}`));
  const resp = await page.goto(pageUrl, { timeout: 20000 });
  out.pageStatus = resp ? resp.status() : null;
  for (const t of transports) {
    out.reports[t] = await page.evaluate(([tr, ice]) => window.runTurn(tr, ice), [t, iceOverride]);
  }
  out.console = console_.slice(-20);
  console.log(JSON.stringify(out));
  await browser.close();
  process.exit(0);
} catch (e) {
  out.error = String(e && e.stack || e);
  console.log(JSON.stringify(out));
  if (browser) await browser.close().catch(() => {});
  process.exit(2);
}
