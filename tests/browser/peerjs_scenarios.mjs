// The official peerjs client (1.5.5) against tsunagi's PeerJS server at
// /peerjs: B calls A (media both ways) and opens a data connection to A.
// The client and its test page (www/peerjs.html) are served under tsunagi's
// origin by playwright routes.
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { HERE, NODE_MODULES, mediaFlow, openTestPage, serveFile, waitFor } from './lib.mjs';

const CLIENT = join(NODE_MODULES, 'peerjs', 'dist', 'peerjs.min.js');
const PAGE = join(HERE, 'www', 'peerjs.html');
const PC = 'window.pj.media.peerConnection';

async function openPeer(env, who) {
  const p = await env.open(who);
  await serveFile(p.page, '**/__test__/peerjs.min.js', CLIENT, 'text/javascript; charset=utf-8');
  await openTestPage(p.page, env.base, PAGE);
  return p.page;
}

const peerState = (page) => page.evaluate(() => ({
  id: window.pj.id, errors: window.pj.errors.slice(), events: window.pj.events.slice(),
  received: window.pj.received.slice(),
  dataOpen: !!(window.pj.data && window.pj.data.open),
  dataConnectionState: window.pj.data && window.pj.data.peerConnection &&
    window.pj.data.peerConnection.connectionState,
}));

async function peerjsCall(env) {
  const report = {};
  const a = await openPeer(env, 'A');
  const b = await openPeer(env, 'B');
  const idA = 'a' + randomBytes(8).toString('hex');
  // A takes its id from the command line, B asks the server for one.
  report.idA = await a.evaluate((id) => window.startPeer(id), idA);
  report.idB = await b.evaluate(() => window.startPeer(undefined));
  await b.evaluate((id) => window.callPeer(id), report.idA);
  const ready = () => window.pj.data && window.pj.data.open && window.pj.media &&
    window.pj.media.peerConnection && window.pj.media.peerConnection.connectionState === 'connected';
  await Promise.all([waitFor(a, ready, null, 30000, 'A ready'), waitFor(b, ready, null, 30000, 'B ready')]);
  await a.evaluate(() => window.pj.data.send('hello from A'));
  await b.evaluate(() => window.pj.data.send('hello from B'));
  await Promise.all([
    waitFor(a, () => window.pj.received.includes('hello from B'), null, 10000, 'A got B\'s message'),
    waitFor(b, () => window.pj.received.includes('hello from A'), null, 10000, 'B got A\'s message'),
  ]);
  report.aMedia = await mediaFlow(a, PC);
  report.bMedia = await mediaFlow(b, PC);
  report.a = await peerState(a);
  report.b = await peerState(b);
  return report;
}

export const peerjsScenarios = { 'peerjs': peerjsCall };
