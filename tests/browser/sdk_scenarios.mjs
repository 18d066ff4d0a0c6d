// Scenarios with the official @open-ayame/ayame-web-sdk against tsunagi's
// /signaling. The SDK and its test page (www/ayame_sdk.html) are served to
// the browser under tsunagi's own origin by playwright routes, so nothing is
// copied into tsunagi's web root.
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { HERE, NODE_MODULES, mediaFlow, openTestPage, serveFile, sleep, waitFor } from './lib.mjs';

const SDK = join(NODE_MODULES, '@open-ayame', 'ayame-web-sdk', 'dist', 'ayame.mjs');
const PAGE = join(HERE, 'www', 'ayame_sdk.html');
const PC = 'window.sdkCall.conn.pc';

async function openSdk(env, who) {
  const p = await env.open(who);
  await serveFile(p.page, '**/__test__/ayame.mjs', SDK, 'text/javascript; charset=utf-8');
  await openTestPage(p.page, env.base, PAGE);
  await p.page.waitForFunction(() => typeof window.startSdk === 'function', null, { timeout: 10000 });
  return p.page;
}

const sdkState = (page) => page.evaluate(() => ({
  state: window.sdkCall.state, events: window.sdkCall.events.slice(),
  received: window.sdkCall.received.slice(),
  connectionState: window.sdkCall.conn && window.sdkCall.conn.connectionState,
  iceServers: window.sdkCall.conn && window.sdkCall.conn.pcConfig.iceServers,
}));

const roomId = () => 'sdk-' + randomBytes(9).toString('base64url');

// Both people use the SDK.
async function sdkCall(env) {
  const report = { room: roomId() };
  const a = await openSdk(env, 'A');
  const b = await openSdk(env, 'B');
  // A is first in the room and waits; B finds A there and makes the offer.
  await a.evaluate((r) => { window.startSdk(r, false); }, report.room);
  await waitFor(a, () => window.sdkCall.conn && window.sdkCall.conn.pc, null, 15000, 'A accepted');
  await b.evaluate((r) => { window.startSdk(r, false); }, report.room);
  const open = () => window.sdkCall.state === 'connected' && window.sdkCall.dc &&
    window.sdkCall.dc.readyState === 'open';
  await Promise.all([waitFor(a, open, null, 30000, 'A connected'), waitFor(b, open, null, 30000, 'B connected')]);
  await a.evaluate(() => window.sdkCall.dc.send('hello from A'));
  await b.evaluate(() => window.sdkCall.dc.send('hello from B'));
  await Promise.all([
    waitFor(a, () => window.sdkCall.received.includes('hello from B'), null, 10000, 'A got B\'s message'),
    waitFor(b, () => window.sdkCall.received.includes('hello from A'), null, 10000, 'B got A\'s message'),
  ]);
  report.aMedia = await mediaFlow(a, PC);
  report.bMedia = await mediaFlow(b, PC);
  report.a = await sdkState(a);
  report.b = await sdkState(b);
  // A leaves: tsunagi tells B 'bye'.
  await a.evaluate(() => window.sdkCall.conn.disconnect());
  await waitFor(b, () => window.sdkCall.events.includes('bye'), null, 10000, 'B got bye');
  report.bAfterBye = await sdkState(b);
  return report;
}

// The official SDK waits in a room, tsunagi's own page joins it from a link:
// the page speaks the protocol as the SDK expects (it makes the offer).
async function sdkAndPage(env) {
  const report = { room: roomId().replace(/[^A-Za-z0-9_-]/g, '') };
  const a = await openSdk(env, 'A-sdk');
  await a.evaluate((r) => { window.startSdk(r, false); }, report.room);
  await waitFor(a, () => window.sdkCall.conn && window.sdkCall.conn.pc, null, 15000, 'SDK accepted');
  const B = await env.open('B-page');
  const b = B.page;
  await b.goto(env.base + '/?room=' + report.room);
  await b.check('#with-camera');
  await b.click('#start');
  await waitFor(a, () => window.sdkCall.state === 'connected', null, 30000, 'SDK connected');
  await waitFor(b, () => window.tsunagi.state.connection === 'connected', null, 30000, 'page connected');
  report.aMedia = await mediaFlow(a, PC);
  report.bMedia = await mediaFlow(b, 'window.tsunagi.pc');
  await sleep(1500);
  report.a = await sdkState(a);
  report.b = await b.evaluate(() => ({ state: window.tsunagi.state,
    callState: document.getElementById('call-state').textContent,
    path: document.getElementById('path').textContent }));
  return report;
}

export const sdkScenarios = {
  'ayame-sdk': sdkCall,
  'ayame-sdk-page': sdkAndPage,
};
