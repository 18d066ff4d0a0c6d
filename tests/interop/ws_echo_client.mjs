// The npm `ws` client against tsunagi's /echo (run by test_ws_interop_node.py).
//
//   node ws_echo_client.mjs URL [--no-deflate] [--insecure]
//
// Sends text and binary messages (small sizes around the frame-length
// encodings, 8 MiB, a pipelined burst), checks every echo byte for byte
// (SHA-256 and opcode), pings, closes with 1000, and prints one JSON report
// as its last line. Exit status 0 only if every check passed.
import { createHash, randomBytes } from 'node:crypto';
import WebSocket from 'ws';

const [url, ...flags] = process.argv.slice(2);
const deflate = !flags.includes('--no-deflate');
const report = { url, deflate, checks: [], failures: [] };
const MiB = 1024 * 1024;
const SMALL = [0, 1, 3, 125, 126, 127, 65535, 65536];
const ALPHABET = [...'tsunagi-0123456789 éßλжつなぎ繋🔗🌊'];

const sha = (buf) => createHash('sha256').update(buf).digest('hex');

function check(name, ok, detail) {
  report.checks.push({ name, ok: !!ok, detail });
  if (!ok) report.failures.push(`${name}: ${JSON.stringify(detail)}`);
}

// A string whose UTF-8 encoding is exactly n bytes, mostly non-ASCII.
function textOf(n) {
  const parts = [];
  let len = 0;
  const rnd = randomBytes(Math.min(n, 1 << 22) + 1);
  let i = 0;
  while (len < n) {
    let ch = ALPHABET[rnd[i++ % rnd.length] % ALPHABET.length];
    let w = Buffer.byteLength(ch);
    if (len + w > n) { ch = 'x'; w = 1; }
    parts.push(ch);
    len += w;
  }
  return parts.join('');
}

function compressibleOf(n) {
  const unit = randomBytes(3000);
  const out = Buffer.alloc(n);
  for (let off = 0; off < n; off += unit.length) unit.copy(out, off, 0, Math.min(unit.length, n - off));
  return out;
}

// Messages arrive in a queue so a burst can be read back in order.
const inbox = [];
const waiters = [];
let gone = null; // set when the connection closes: no message will come
function nextMessage(ms) {
  if (inbox.length) return Promise.resolve(inbox.shift());
  if (gone) return Promise.reject(new Error(`connection closed: ${gone}`));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no message within ${ms} ms`)), ms);
    waiters.push({
      resolve: (m) => { clearTimeout(t); resolve(m); },
      reject: (e) => { clearTimeout(t); reject(e); },
    });
  });
}

async function echo(ws, name, payload) {
  const binary = typeof payload !== 'string';
  const bytes = binary ? payload : Buffer.from(payload, 'utf8');
  ws.send(payload, { binary });
  const m = await nextMessage(30000);
  check(name, m.isBinary === binary && m.data.length === bytes.length && sha(m.data) === sha(bytes), {
    sentBytes: bytes.length, gotBytes: m.data.length, sentBinary: binary, gotBinary: m.isBinary,
    sentSha: sha(bytes).slice(0, 16), gotSha: sha(m.data).slice(0, 16),
  });
}

async function main() {
  const ws = new WebSocket(url, {
    perMessageDeflate: deflate,
    maxPayload: 64 * MiB,
    rejectUnauthorized: !flags.includes('--insecure'),
    handshakeTimeout: 10000,
  });
  let closeEvent = null;
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => {
    closeEvent = { code, reason: reason.toString() };
    gone = `close event ${code} ${reason}`;
    while (waiters.length) waiters.shift().reject(new Error(`connection closed: ${gone}`));
    resolve();
  }));
  ws.on('message', (data, isBinary) => {
    const m = { data, isBinary };
    if (waiters.length) waiters.shift().resolve(m); else inbox.push(m);
  });
  ws.on('error', (e) => report.failures.push(`error event: ${e.message}`));
  await new Promise((resolve, reject) => {
    ws.on('upgrade', (res) => { report.responseExtensions = res.headers['sec-websocket-extensions'] || null; });
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  report.extensions = ws.extensions;
  report.tls = typeof ws._socket.getProtocol === 'function' ? ws._socket.getProtocol() : null;

  for (const n of SMALL) {
    await echo(ws, `text ${n}`, textOf(n));
    await echo(ws, `binary ${n}`, randomBytes(n));
    await echo(ws, `compressible ${n}`, compressibleOf(n));
  }
  await echo(ws, 'text 8 MiB', textOf(8 * MiB));
  await echo(ws, 'binary 8 MiB', randomBytes(8 * MiB));
  await echo(ws, 'compressible 8 MiB', compressibleOf(8 * MiB));

  // A pipelined burst comes back complete and in order.
  const burst = [];
  for (let i = 0; i < 200; i++) {
    const n = (i * 7919) % 5000;
    burst.push(i % 2 ? textOf(n) : randomBytes(n));
  }
  for (const m of burst) ws.send(m, { binary: typeof m !== 'string' });
  let inOrder = 0;
  for (const m of burst) {
    const got = await nextMessage(20000);
    const bytes = typeof m === 'string' ? Buffer.from(m) : m;
    if (got.isBinary === (typeof m !== 'string') && sha(got.data) === sha(bytes)) inOrder++;
  }
  check('burst of 200 in order', inOrder === burst.length, { matched: inOrder });

  // Ping: the Pong carries the same application data.
  for (const payload of [Buffer.alloc(0), Buffer.from('hello'), randomBytes(125)]) {
    const pong = await new Promise((resolve) => {
      const t = setTimeout(() => resolve(null), 5000);
      ws.once('pong', (data) => { clearTimeout(t); resolve(data); });
      ws.ping(payload);
    });
    check(`pong for a ${payload.length}-byte ping`, pong !== null && pong.equals(payload), {
      got: pong && pong.toString('hex').slice(0, 32),
    });
  }

  const t0 = Date.now();
  ws.close(1000, 'done');
  await Promise.race([closed, new Promise((r) => setTimeout(r, 10000))]);
  report.closeMs = Date.now() - t0;
  check('close 1000 echoed', closeEvent && closeEvent.code === 1000, closeEvent);
  // ws waits 30 s for the server to end TCP after the close handshake.
  check('server ends TCP after the close handshake', report.closeMs < 3000, { ms: report.closeMs });
}

try {
  await main();
} catch (e) {
  report.failures.push(`exception: ${e && e.stack || e}`);
}
console.log(JSON.stringify(report));
process.exit(report.failures.length ? 1 : 0);
