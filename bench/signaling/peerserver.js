// peerserver.js — the npm `peer` PeerServer (the reference PeerJS server) for
// the signaling benchmark: mounted at "/", so the WebSocket is at
// /peerjs?key=peerjs&id=…&token=… and the banner at GET /.
//
//   NODE_PATH=tests/node_modules node bench/signaling/peerserver.js PORT [LIMIT] [ADDR]
//
// LIMIT is concurrent_limit (default 30000: the benchmark holds up to 19,000
// clients; PeerServer's own default is 5,000). Everything else is PeerServer's
// default (alive_timeout 90 s, expire_timeout 5 s, key "peerjs"). Prints
// "listening on ADDR:PORT" once it accepts connections; SIGTERM/SIGINT stop it.
'use strict';

const { PeerServer } = require('peer');

const port = Number(process.argv[2] || 9000);
const limit = Number(process.argv[3] || 30000);
const host = process.argv[4] || '127.0.0.1';

const server = PeerServer({ port, host, path: '/', concurrent_limit: limit }, (srv) => {
  const a = srv.address();
  process.stdout.write(`listening on ${a.address}:${a.port}\n`);
});

// A client's socket error must not end the server (PeerServer emits them).
server.on('error', (err) => {
  process.stderr.write(`peerserver: ${err && err.message}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}
