// tsunagi's call page with Firefox on one or both sides: the call scenarios
// of page_scenarios.mjs (start, join by the link, chat both ways, media,
// path and chart, a third person, hang-up), each person's page opened in the
// browser named here. A starts the call and B joins it, so B (the second in
// the room) makes the offer; the two mixed scenarios try both directions.
// Each report says which browser every person really ran (userAgents).
import { pageScenarios } from './page_scenarios.mjs';

// Run scenario with people's pages in engines[who], or else in fallback.
async function inBrowsers(scenario, env, fallback, engines = {}) {
  const pages = {};
  const report = await scenario(Object.assign({}, env, {
    open: async (who) => {
      const p = await env.open(who, engines[who] || fallback);
      pages[who] = p.page;
      return p;
    },
  }));
  report.userAgents = {};
  for (const [who, page] of Object.entries(pages)) {
    report.userAgents[who] = await page.evaluate(() => navigator.userAgent);
  }
  return report;
}

export const firefoxScenarios = {
  // Firefox on both sides.
  'firefox-page': (env) => inBrowsers(pageScenarios.page, env, 'firefox'),
  // Firefox starts, Chromium joins and offers, Firefox answers.
  'firefox-chromium': (env) => inBrowsers(pageScenarios.page, env, 'firefox', { B: 'chromium' }),
  // Chromium starts, Firefox joins and offers, Chromium answers.
  'chromium-firefox': (env) => inBrowsers(pageScenarios.page, env, 'firefox', { A: 'chromium' }),
  // Firefox on both sides, every packet through tsunagi's TURN (?relay=1).
  'firefox-relay': (env) => inBrowsers(pageScenarios['page-relay'], env, 'firefox'),
};
