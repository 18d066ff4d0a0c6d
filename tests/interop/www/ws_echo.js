// Runs in Chromium: talk to this origin's /echo and report what happened.
// Every echo is compared with what was sent by length, opcode and SHA-256.
'use strict';

const MiB = 1024 * 1024;
const SMALL = [0, 1, 3, 125, 126, 127, 65535, 65536];
const ALPHABET = [...'tsunagi-0123456789 éßλжつなぎ繋🔗🌊'];
const enc = new TextEncoder();
const WIDTH = ALPHABET.map((ch) => enc.encode(ch).length);

function randomBytes(n) {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  return out;
}

function compressibleOf(n) {
  const unit = randomBytes(3000);
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += unit.length) out.set(unit.subarray(0, Math.min(unit.length, n - off)), off);
  return out;
}

// A string whose UTF-8 encoding is exactly n bytes, mostly non-ASCII.
function textOf(n) {
  const rnd = randomBytes(Math.min(n, 1 << 20) + 1);
  const parts = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const k = rnd[i % rnd.length] % ALPHABET.length;
    let ch = ALPHABET[k];
    let w = WIDTH[k];
    if (len + w > n) { ch = 'x'; w = 1; }
    parts.push(ch);
    len += w;
  }
  return parts.join('');
}

async function sha(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

function bytesOf(m) {
  return typeof m === 'string' ? enc.encode(m) : new Uint8Array(m);
}

window.runEcho = async function runEcho() {
  const report = { checks: [], failures: [], opened: false };
  const check = (name, ok, detail) => {
    report.checks.push({ name, ok: !!ok, detail });
    if (!ok) report.failures.push(name + ': ' + JSON.stringify(detail));
  };
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/echo';
  report.url = url;
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';

  const inbox = [];
  const waiters = [];
  let closeEvent = null;
  let closedResolve;
  const closed = new Promise((r) => { closedResolve = r; });
  ws.onmessage = (e) => { if (waiters.length) waiters.shift().resolve(e.data); else inbox.push(e.data); };
  ws.onclose = (e) => {
    closeEvent = { code: e.code, reason: e.reason, wasClean: e.wasClean };
    while (waiters.length) waiters.shift().reject(new Error('closed: ' + JSON.stringify(closeEvent)));
    closedResolve();
  };
  const next = (ms) => {
    if (inbox.length) return Promise.resolve(inbox.shift());
    if (closeEvent) return Promise.reject(new Error('closed: ' + JSON.stringify(closeEvent)));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no message within ' + ms + ' ms')), ms);
      waiters.push({ resolve: (m) => { clearTimeout(t); resolve(m); }, reject: (e) => { clearTimeout(t); reject(e); } });
    });
  };

  report.opened = await new Promise((resolve) => {
    ws.onopen = () => resolve(true);
    ws.onerror = () => resolve(false);
  });
  if (!report.opened) {
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
    report.close = closeEvent;
    return report;
  }
  report.extensions = ws.extensions;

  const echo = async (name, msg) => {
    const t = performance.now();
    const sent = bytesOf(msg);
    ws.send(msg);
    const got = await next(30000);
    const gotBytes = bytesOf(got);
    const [a, b] = [await sha(sent), await sha(gotBytes)];
    check(name, typeof got === typeof msg && gotBytes.length === sent.length && a === b, {
      sentBytes: sent.length, gotBytes: gotBytes.length, sentType: typeof msg, gotType: typeof got,
      sentSha: a.slice(0, 16), gotSha: b.slice(0, 16), ms: Math.round(performance.now() - t),
    });
  };

  try {
    for (const n of SMALL) {
      await echo('text ' + n, textOf(n));
      await echo('binary ' + n, randomBytes(n).buffer);
      await echo('compressible ' + n, compressibleOf(n).buffer);
    }
    await echo('text 8 MiB', textOf(8 * MiB));
    await echo('binary 8 MiB', randomBytes(8 * MiB).buffer);
    await echo('compressible 8 MiB', compressibleOf(8 * MiB).buffer);

    const burst = [];
    for (let i = 0; i < 200; i++) {
      const n = (i * 7919) % 5000;
      burst.push(i % 2 ? textOf(n) : randomBytes(n).buffer);
    }
    for (const m of burst) ws.send(m);
    let inOrder = 0;
    for (const m of burst) {
      const got = await next(20000);
      if (typeof got === typeof m && (await sha(bytesOf(got))) === (await sha(bytesOf(m)))) inOrder++;
    }
    check('burst of 200 in order', inOrder === burst.length, { matched: inOrder });
  } catch (e) {
    report.failures.push('exception: ' + e);
  }

  const t0 = performance.now();
  if (!closeEvent) ws.close(1000, 'done');
  await Promise.race([closed, new Promise((r) => setTimeout(r, 10000))]);
  report.closeMs = Math.round(performance.now() - t0);
  report.close = closeEvent;
  check('clean close 1000', closeEvent && closeEvent.code === 1000 && closeEvent.wasClean, closeEvent);
  // Chromium gives the server 2 s to end TCP after the close handshake.
  check('server ends TCP after the close handshake', report.closeMs < 1900, { ms: report.closeMs });
  return report;
};
