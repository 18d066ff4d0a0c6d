// The harness's own waits (lib.mjs), checked where they once failed: a wait
// that ends before what it waits for makes a call test sample too early and
// flake under load, and a wait that cannot time out cannot fail. A call
// inside one page (www/loopback.html, no server involved) gives media to
// wait for; test_call_harness.py judges the report.
import { join } from 'node:path';
import { HERE, mediaFlow, openTestPage, waitFor } from './lib.mjs';

const PAGE = join(HERE, 'www', 'loopback.html');

// How a wait that must not succeed ended: {ms, error} (error null if it
// returned, which is the failure the test looks for).
async function mustTimeOut(promise) {
  const t0 = Date.now();
  try {
    await promise;
    return { ms: Date.now() - t0, error: null };
  } catch (e) {
    return { ms: Date.now() - t0, error: String(e.message || e) };
  }
}

async function harnessWaits(env) {
  const report = {};
  const { page } = await env.open('loop');
  await openTestPage(page, env.base, PAGE);
  await waitFor(page, () => typeof window.startLoop === 'function', null, 10000, 'the loopback page');
  // Sample from the moment the call starts: mediaFlow must wait for decoded
  // video and audio, however long they take to come.
  await page.evaluate(() => { window.startLoop(); });
  report.media = await mediaFlow(page, 'window.loop.pc2');
  report.loopError = await page.evaluate(() => window.loop.error);
  // Nothing to wait for: both waits must run out their time and throw.
  report.noCall = await mustTimeOut(mediaFlow(page, 'null', 1500, 100));
  report.asyncNever = await mustTimeOut(waitFor(page, async () => false, null, 1000, 'never'));
  // An async predicate that becomes true on its third poll resolves to its value.
  report.asyncThird = await waitFor(page, async () => {
    window.polls = (window.polls || 0) + 1;
    return window.polls >= 3 && window.polls;
  }, null, 10000, 'the third poll');
  return report;
}

export const harnessScenarios = { 'harness-waits': harnessWaits };
