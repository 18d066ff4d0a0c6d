// Scenarios with tsunagi's own call page (web/): two people in two browser
// contexts click through the page as a person would (tick "camera", Start,
// open the copied link, Join, chat, hang up); the page's test hook
// window.tsunagi (docs/call-page.md) supplies the RTCPeerConnection and the
// state, and the visible texts are read too.
import { mediaFlow, sleep, stats, waitFor } from './lib.mjs';

const PC = 'window.tsunagi.pc';

// What a person sees, plus the hook's state.
function view(page) {
  return page.evaluate(() => {
    const text = (sel) => {
      const e = document.querySelector(sel);
      return e ? e.textContent.trim() : null;
    };
    const notice = document.getElementById('notice');
    const canvas = document.getElementById('chart');
    let inked = 0;
    if (canvas && canvas.width > 0 && canvas.height > 0) {
      const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) inked++;
    }
    const screens = ['home', 'call', 'ended'].filter((id) => !document.getElementById(id).hidden);
    const rv = document.getElementById('remote-video');
    return {
      screen: screens.join(','),
      callState: text('#call-state'),
      path: text('#path'),
      pathKind: document.getElementById('path').dataset.kind || null,
      server: text('#server-state'),
      notice: notice.hidden ? null : text('#notice-text'),
      chatLog: Array.from(document.querySelectorAll('#chat-log li')).map((li) => li.textContent),
      chartInked: inked,
      chartLabel: canvas ? canvas.getAttribute('aria-label') : null,
      remoteVideo: { width: rv.videoWidth, height: rv.videoHeight, paused: rv.paused },
      shareLink: document.getElementById('share-link').value,
      state: window.tsunagi.state,
      history: window.tsunagi.history.length,
      chat: { sent: window.tsunagi.chat.sent.slice(), received: window.tsunagi.chat.received.slice() },
    };
  });
}

const connected = () => window.tsunagi.state.connection === 'connected' &&
  window.tsunagi.state.dataChannel === 'open';

// A starts a call (camera on), B opens the link and joins: both connected,
// chat open. Returns {a, b, link}.
async function startAndJoin(env, query, report) {
  const A = await env.open('A');
  const B = await env.open('B');
  const homeResp = await A.page.goto(env.base + '/' + (query || ''));
  report.homeStatus = homeResp.status();
  report.homeTitle = await A.page.textContent('#home-title');
  await A.page.check('#with-camera');
  await A.page.click('#start');
  await waitFor(A.page, () => window.tsunagi.state.phase === 'waiting' &&
    window.tsunagi.state.signaling === 'registered', null, 15000, 'A registered and waiting');
  report.aWaiting = await view(A.page);
  const link = await A.page.inputValue('#share-link');
  report.link = link;
  await B.page.goto(link);
  report.joinTitle = await B.page.textContent('#home-title');
  await B.page.check('#with-camera');
  await B.page.click('#start');
  await Promise.all([
    waitFor(A.page, connected, null, 30000, 'A connected'),
    waitFor(B.page, connected, null, 30000, 'B connected'),
  ]);
  return { a: A.page, b: B.page, link };
}

// One message typed into the chat box on A, one sent through the hook on B.
async function chatBothWays(a, b, tag) {
  await a.fill('#chat-input', 'hello from A ' + tag);
  await a.click('#chat-send');
  await b.evaluate((t) => window.tsunagi.sendChat('hello from B ' + t), tag);
  await Promise.all([
    waitFor(b, (t) => window.tsunagi.chat.received.includes('hello from A ' + t), tag, 10000, 'B got chat'),
    waitFor(a, (t) => window.tsunagi.chat.received.includes('hello from B ' + t), tag, 10000, 'A got chat'),
  ]);
}

async function pathShown(page) {
  await waitFor(page, () => document.getElementById('path').dataset.kind &&
    window.tsunagi.history.length >= 3, null, 15000, 'path and chart shown');
}

async function call(env, relay) {
  const report = {};
  const { a, b, link } = await startAndJoin(env, relay ? '?relay=1' : '', report);
  await chatBothWays(a, b, relay ? 'relay' : 'direct');
  report.aMedia = await mediaFlow(a, PC);
  report.bMedia = await mediaFlow(b, PC);
  await Promise.all([pathShown(a), pathShown(b)]);
  report.a = await view(a);
  report.b = await view(b);

  if (!relay) {
    // A third person with the link: the room holds two.
    const C = await env.open('C');
    await C.page.goto(link);
    await C.page.click('#start');
    await waitFor(C.page, () => !document.getElementById('notice').hidden &&
      /full/.test(document.getElementById('notice-text').textContent), null, 15000, 'C told the room is full');
    report.c = await view(C.page);
    // A and B did not notice.
    report.bAfterC = await view(b);
  }

  // A hangs up: B learns it at once (data channel) and waits for someone
  // new. tsunagi, as OpenAyame, closes the room and B's socket after its
  // bye, so B registers again.
  const regs = await b.evaluate(() => window.tsunagi.state.registrations);
  await a.click('#hangup');
  await waitFor(b, (n) => window.tsunagi.state.phase === 'waiting' &&
    !document.getElementById('notice').hidden && window.tsunagi.state.registrations > n &&
    window.tsunagi.state.signaling === 'registered', regs, 15000, 'B told that A left');
  report.aEnded = await view(a);
  report.bAfterHangup = await view(b);
  return report;
}

// A's signaling socket is cut (by the browser-side WebSocket route, so tsunagi
// sees a real close) and its first reconnection is refused: the call must go
// on, the socket come back by itself, and A re-register in the same room.
async function reconnect(env) {
  const report = { routed: 0, refused: 0 };
  const A = await env.open('A');
  const B = await env.open('B');
  let current = null;
  let refuse = 0;
  await A.page.routeWebSocket(/\/signaling$/, (ws) => {
    report.routed++;
    if (refuse > 0) {
      refuse--;
      report.refused++;
      ws.close({ code: 1011, reason: 'test refuses' });
      return;
    }
    current = { ws, server: ws.connectToServer() };
  });
  await A.page.goto(env.base + '/');
  await A.page.check('#with-camera');
  await A.page.click('#start');
  await waitFor(A.page, () => window.tsunagi.state.signaling === 'registered', null, 15000, 'A registered');
  const link = await A.page.inputValue('#share-link');
  await B.page.goto(link);
  await B.page.check('#with-camera');
  await B.page.click('#start');
  await Promise.all([
    waitFor(A.page, connected, null, 30000, 'A connected'),
    waitFor(B.page, connected, null, 30000, 'B connected'),
  ]);
  await mediaFlow(B.page, PC);
  report.before = await stats(B.page, PC);

  refuse = 1;
  const cut = current;
  await cut.server.close({ code: 1000 });
  await cut.ws.close({ code: 4000, reason: 'cut by the test' });
  await waitFor(A.page, () => window.tsunagi.state.signaling === 'lost', null, 10000, 'A notices the loss');
  report.aLost = await view(A.page);
  await sleep(1500);
  report.during = await stats(B.page, PC);
  report.bDuring = await view(B.page);
  await waitFor(A.page, () => window.tsunagi.state.signaling === 'registered', null, 20000, 'A re-registered');
  // The second in the room restarts ICE on the same connection.
  await sleep(3000);
  report.aBack = await view(A.page);
  report.bBack = await view(B.page);
  await chatBothWays(A.page, B.page, 'after reconnect');
  report.after = await stats(B.page, PC);
  report.aAfter = await view(A.page);
  return report;
}

// The microphone is refused (a NotAllowedError from getUserMedia, as a person
// clicking "Block" causes); the page says so and offers to join and listen.
async function denied(env) {
  const report = {};
  const A = await env.open('A');
  await A.page.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = () =>
      Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
  });
  await A.page.goto(env.base + '/?room=' + 'deniedRoom_' + Date.now());
  await A.page.click('#start');
  await waitFor(A.page, () => !document.getElementById('notice').hidden, null, 10000, 'a notice');
  report.notice = await view(A.page);
  report.buttons = await A.page.$$eval('#notice-actions button', (bs) => bs.map((b) => b.textContent));
  await A.page.click('#notice-actions >> text=Join without microphone');
  await waitFor(A.page, () => window.tsunagi.state.signaling === 'registered', null, 15000, 'listen-only registered');
  report.listenOnly = await view(A.page);
  return report;
}

// Phone-sized screen: nothing wider than the viewport, controls reachable.
async function phone(env) {
  const A = await env.open('A');
  await A.page.setViewportSize({ width: 360, height: 740 });
  await A.page.goto(env.base + '/');
  await A.page.click('#start');
  await waitFor(A.page, () => window.tsunagi.state.signaling === 'registered', null, 15000, 'registered');
  return A.page.evaluate(() => {
    const wide = [];
    for (const e of document.querySelectorAll('#call *')) {
      const r = e.getBoundingClientRect();
      if (r.width > 0 && r.right > window.innerWidth + 0.5) wide.push(e.tagName + '#' + e.id + ' ' + r.right);
    }
    const btn = (id) => {
      const r = document.getElementById(id).getBoundingClientRect();
      return { w: r.width, h: r.height, right: r.right };
    };
    return {
      innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth, wide,
      hangup: btn('hangup'), mute: btn('mute'), camera: btn('camera'), copy: btn('copy-link'),
    };
  });
}

export const pageScenarios = {
  'page': (env) => call(env, false),
  'page-relay': (env) => call(env, true),
  'page-reconnect': reconnect,
  'page-denied': denied,
  'page-phone': phone,
};
