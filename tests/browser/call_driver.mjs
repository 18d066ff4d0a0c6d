// Drives Debian's Chromium (playwright-core) and Firefox ESR (puppeteer-core,
// firefox.mjs), with fake cameras and microphones, through two-party calls
// via tsunagi, and prints one JSON report per scenario on the last line of
// stdout; the Python tests (tests/integration/test_call_*.py) judge the
// reports.
//
//   node call_driver.mjs BASE_URL SCENARIO...
//
// BASE_URL is tsunagi's http://127.0.0.1:PORT. Scenarios: see the tables in
// page_scenarios.mjs, sdk_scenarios.mjs, peerjs_scenarios.mjs,
// firefox_scenarios.mjs and harness_scenarios.mjs. A browser is launched
// when a scenario first opens a page in it and then serves every later
// scenario of the run; each scenario opens its own contexts (one per person)
// and has 60 s.
//
// Exit status: 0 if the run finished (the caller judges the reports, which
// say if a browser could not be launched), 2 if it could not be driven at
// all.
import { Browsers, CHROMIUM, runScenarios } from './lib.mjs';
import { pageScenarios } from './page_scenarios.mjs';
import { sdkScenarios } from './sdk_scenarios.mjs';
import { peerjsScenarios } from './peerjs_scenarios.mjs';
import { firefoxScenarios } from './firefox_scenarios.mjs';
import { harnessScenarios } from './harness_scenarios.mjs';

// puppeteer-core is loaded only by a run that opens a Firefox page.
const FIREFOX = {
  launch: async () => (await import('./firefox.mjs')).launchFirefox(),
  newPage: async (...args) => (await import('./firefox.mjs')).newFirefoxPage(...args),
};

const [base, ...names] = process.argv.slice(2);
const table = Object.assign({}, pageScenarios, sdkScenarios, peerjsScenarios, firefoxScenarios,
  harnessScenarios);
const out = { base, reports: {} };
const browsers = new Browsers({ chromium: CHROMIUM, firefox: FIREFOX });
try {
  out.reports = await runScenarios(browsers, table, names, { base });
  console.log(JSON.stringify(out));
  await browsers.close();
  process.exit(0);
} catch (e) {
  out.error = String((e && e.stack) || e);
  console.log(JSON.stringify(out));
  await browsers.close();
  process.exit(2);
}
