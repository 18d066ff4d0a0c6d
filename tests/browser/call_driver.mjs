// Drives Debian's Chromium (playwright-core, fake camera and microphone)
// through two-party calls via tsunagi, and prints one JSON report per
// scenario on the last line of stdout; the Python tests
// (tests/integration/test_call_*.py) judge the reports.
//
//   node call_driver.mjs BASE_URL SCENARIO...
//
// BASE_URL is tsunagi's http://127.0.0.1:PORT. Scenarios: see the tables in
// page_scenarios.mjs, sdk_scenarios.mjs and peerjs_scenarios.mjs. One
// browser serves every scenario of a run; each scenario opens its own
// contexts (one per person) and has 60 s.
//
// Exit status: 0 if the browser ran (the caller judges the reports), 2 if it
// could not be driven at all.
import { launch, runScenarios } from './lib.mjs';
import { pageScenarios } from './page_scenarios.mjs';
import { sdkScenarios } from './sdk_scenarios.mjs';
import { peerjsScenarios } from './peerjs_scenarios.mjs';

const [base, ...names] = process.argv.slice(2);
const table = Object.assign({}, pageScenarios, sdkScenarios, peerjsScenarios);
const out = { base, reports: {} };
let browser;
try {
  browser = await launch();
  out.reports = await runScenarios(browser, table, names, { base });
  console.log(JSON.stringify(out));
  await browser.close();
  process.exit(0);
} catch (e) {
  out.error = String((e && e.stack) || e);
  console.log(JSON.stringify(out));
  if (browser) await browser.close().catch(() => {});
  process.exit(2);
}
