// A WebSocket echo server on Node's ws, to validate the conformance harness:
// ws passes the whole Autobahn|Testsuite, so every Autobahn case must pass
// against it.   node tests/conformance/ws_echo_server.js [PORT]
// Listens on 127.0.0.1 (PORT 0 or absent: the kernel picks) and prints
// "listening on ws://127.0.0.1:PORT/echo".
'use strict';

const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, '..', 'node_modules', 'ws'));

const port = parseInt(process.argv[2] || '0', 10);
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  path: '/echo',
  // Compress every message (threshold 0) so the 12.x/13.x echoes are compressed.
  perMessageDeflate: { threshold: 0 },
  // tsunagi's /echo limit: 16 MiB exactly (9.1.6 sends 16 MiB; X.3.x send more).
  maxPayload: 16 * 1024 * 1024,
  // ws >= 8.19 fails a message of more than 16384 fragments with 1008; Autobahn
  // 9.3.1 / 9.4.1 send 65536 (4 MiB in 64-octet fragments).
  maxFragments: 65536,
});

wss.on('listening', () => {
  console.log(`listening on ws://127.0.0.1:${wss.address().port}/echo`);
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {}); // protocol errors close the connection; nothing to log
});
process.on('SIGTERM', () => process.exit(0));
