// ws_echo.js — a WebSocket echo server on the npm package `ws` (Node.js), the
// benchmark's peer: every message goes back as it came (binary or text),
// permessage-deflate off, everything else ws's defaults.
//
//   NODE_PATH=tests/node_modules node bench/ws/ws_echo.js [PORT] [ADDR]
//
// PORT 0 (the default) lets the kernel pick. Prints "listening on ADDR:PORT"
// on stdout once it accepts connections; SIGTERM/SIGINT stop it.
'use strict';

const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const host = process.argv[3] || '127.0.0.1';

const wss = new WebSocketServer({ host, port, perMessageDeflate: false });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {});
});

wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(`listening on ${a.address}:${a.port}\n`);
});

wss.on('error', (err) => {
  process.stderr.write(`ws_echo: ${err.message}\n`);
  process.exit(1);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}
