// Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against
// tsunagi: load PAGE_URL (served by tsunagi from tests/interop/www), run the
// page's runEcho() and print its report as JSON on the last line.
//
//   node chromium_ws_echo.mjs PAGE_URL
//
// Exit status: 0 if the page ran (the caller judges the report), 2 if the
// browser or the page could not be driven at all.
import { chromium } from 'playwright-core';

const [pageUrl] = process.argv.slice(2);
const out = { pageUrl };
let browser;
try {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--ignore-certificate-errors'],
    timeout: 30000,
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const console_ = [];
  page.on('console', (m) => console_.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console_.push(`pageerror: ${e.message}`));
  const resp = await page.goto(pageUrl, { timeout: 20000 });
  out.pageStatus = resp ? resp.status() : null;
  out.report = await page.evaluate(() => window.runEcho());
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
