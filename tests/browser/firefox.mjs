// Firefox for the browser call tests: Debian's firefox-esr driven through
// WebDriver BiDi by puppeteer-core (playwright-core drives only its own
// patched Firefox builds), with fake media devices. Each person's page is
// wrapped in FirefoxPage, which has the playwright Page methods the
// scenarios use, so one scenario runs unchanged in either browser and
// lib.mjs's helpers (waitFor, stats, mediaFlow) work on both.
import puppeteer from 'puppeteer-core';
import { STATS_INIT } from './lib.mjs';

export const FIREFOX = '/usr/bin/firefox-esr';

export const FIREFOX_PREFS = {
  // A fake camera (a moving test pattern) and microphone (a 1 kHz tone),
  // given without a prompt.
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  // Firefox gathers host candidates on every interface only for a page that
  // captures or holds a camera/microphone permission, and fake devices count
  // as a capture only with this pref; otherwise it offers the default
  // route's address alone, never 127.0.0.1.
  'media.navigator.permission.fake': true,
  // 127.0.0.1 and ::1 host candidates (a testing switch, off by default),
  // as Chromium's --allow-loopback-in-peer-connection.
  'media.peerconnection.ice.loopback': true,
  // Addresses rather than mDNS .local names, as Chromium's
  // --disable-features=WebRtcHideLocalIpsWithMdns.
  'media.peerconnection.ice.obfuscate_host_addresses': false,
};

const VIEWPORT = { width: 1000, height: 800 };

export function launchFirefox() {
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    timeout: 30000,
    defaultViewport: VIEWPORT,
    extraPrefsFirefox: FIREFOX_PREFS,
  });
}

// The playwright Page methods (same names, arguments and results) that the
// scenarios and lib.mjs call, on a puppeteer page.
export class FirefoxPage {
  constructor(page) {
    this.page = page;
  }

  goto(url) {
    return this.page.goto(url);
  }

  click(selector) {
    return this.page.click(selector);
  }

  async check(selector) {
    if (!(await this.page.$eval(selector, (e) => e.checked))) await this.page.click(selector);
  }

  fill(selector, text) {
    return this.page.locator(selector).fill(text);
  }

  textContent(selector) {
    return this.page.$eval(selector, (e) => e.textContent);
  }

  inputValue(selector) {
    return this.page.$eval(selector, (e) => e.value);
  }

  evaluate(fn, arg) {
    return this.page.evaluate(fn, arg);
  }

  $$eval(selector, fn, arg) {
    return this.page.$$eval(selector, fn, arg);
  }

  waitForFunction(fn, arg, options = {}) {
    return this.page.waitForFunction(fn, { timeout: options.timeout, polling: options.polling }, arg);
  }

  addInitScript(script) {
    return this.page.evaluateOnNewDocument(script);
  }

  setViewportSize(size) {
    return this.page.setViewport(size);
  }
}

// One person: a private browsing context (its own cookies and storage, as a
// playwright context) shown in its own window, so that no person is a
// background tab, whose timers Firefox slows down.
export async function newFirefoxPage(browser, log, name) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage({ type: 'window' });
  await page.setViewport(VIEWPORT);
  await page.evaluateOnNewDocument(STATS_INIT);
  page.on('console', (m) => {
    const type = m.type();
    if (type === 'error' || type === 'warn' || type === 'warning') log.push(`${name} ${type}: ${m.text()}`);
  });
  page.on('pageerror', (e) => log.push(`${name} pageerror: ${e.message}`));
  return { context, page: new FirefoxPage(page) };
}
