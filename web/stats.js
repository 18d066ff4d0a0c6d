// What the call page shows about a running call, read from getStats() once a
// second: which path the media takes (the selected ICE candidate pair) and
// the bitrate in each direction and the round-trip time, kept for the last
// minute so chart.js can draw them.
'use strict';

export const HISTORY_SECONDS = 60;

// The candidate pair ICE is using. Chromium names it in the transport stats
// (selectedCandidatePairId); Firefox has no transport stats but marks the
// pair itself (selected); the spec's fallback is the nominated pair that
// succeeded.
function selectedPair(report) {
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
  });
  if (pair) return pair;
  report.forEach((s) => {
    if (s.type === 'candidate-pair' && s.selected) pair = s;
  });
  if (pair) return pair;
  report.forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
  });
  return pair;
}

function candidateInfo(c) {
  if (!c) return null;
  return {
    type: c.candidateType,
    address: c.address || c.ip || '',
    port: c.port,
    protocol: c.protocol,
    relayProtocol: c.relayProtocol,
    url: c.url,
  };
}

// Firefox keeps the type peer-reflexive for a remote candidate it learned
// from a connectivity check before the same candidate arrived by signaling
// (Chromium takes the signaled type then), so two devices on one network
// would read as "through NAT". The remote description holds every candidate
// the other side signaled: take the type it gave for that address and port.
function signaledType(pc, c) {
  if (!c || c.type !== 'prflx' || !pc.remoteDescription) return c && c.type;
  for (const line of pc.remoteDescription.sdp.split(/\r?\n/)) {
    if (!line.startsWith('a=candidate:')) continue;
    // a=candidate:foundation component transport priority address port typ type ...
    const f = line.split(' ');
    if (f[4] === c.address && Number(f[5]) === c.port && f[6] === 'typ') return f[7];
  }
  return c.type;
}

// host <-> host: the two devices talk directly (same network, or public
// addresses). srflx/prflx: an address a NAT gave, learned through STUN; the
// media still goes device to device. relay: through the TURN server.
export function classifyPath(local, remote) {
  if (!local || !remote) return null;
  const types = [local.type, remote.type];
  if (types.includes('relay')) {
    let side = 'both sides';
    if (local.type !== 'relay') side = 'the other side';
    else if (remote.type !== 'relay') side = 'your side';
    return { kind: 'relay', label: 'Through the TURN relay (' + side + ')' };
  }
  if (types.includes('srflx') || types.includes('prflx')) {
    return { kind: 'stun', label: 'Direct, through NAT via STUN' };
  }
  return { kind: 'direct', label: 'Direct (same network)' };
}

// One reading of the counters the page needs.
export async function readStats(pc) {
  const report = await pc.getStats();
  const out = {
    at: performance.now(),
    pair: null,
    path: null,
    rtt: null,
    bytesIn: 0,
    bytesOut: 0,
    inbound: {},
    outbound: {},
  };
  const pair = selectedPair(report);
  if (pair) {
    const local = candidateInfo(report.get(pair.localCandidateId));
    const remote = candidateInfo(report.get(pair.remoteCandidateId));
    if (remote) remote.type = signaledType(pc, remote);
    out.pair = { id: pair.id, state: pair.state, local, remote };
    out.path = classifyPath(local, remote);
    if (typeof pair.currentRoundTripTime === 'number') out.rtt = pair.currentRoundTripTime * 1000;
  }
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && !s.isRemote) {
      out.bytesIn += s.bytesReceived || 0;
      out.inbound[s.kind || s.mediaType] = {
        bytesReceived: s.bytesReceived || 0,
        packetsReceived: s.packetsReceived || 0,
        framesDecoded: s.framesDecoded,
        totalSamplesReceived: s.totalSamplesReceived,
        totalAudioEnergy: s.totalAudioEnergy,
        audioLevel: s.audioLevel,
      };
    } else if (s.type === 'outbound-rtp' && !s.isRemote) {
      out.bytesOut += s.bytesSent || 0;
      out.outbound[s.kind || s.mediaType] = { bytesSent: s.bytesSent || 0 };
    } else if (s.type === 'remote-inbound-rtp' && out.rtt === null && typeof s.roundTripTime === 'number') {
      // No RTT on the pair (Firefox): the one RTCP receiver reports carry.
      out.rtt = s.roundTripTime * 1000;
    }
  });
  return out;
}

// Samples once a second, keeps HISTORY_SECONDS points of
// {t, kbpsIn, kbpsOut, rtt}, and calls onSample(latest, history).
export class StatsMonitor {
  constructor(pc, onSample) {
    this.pc = pc;
    this.onSample = onSample;
    this.history = [];
    this.prev = null;
    this.latest = null;
    this.timer = null;
    this.busy = false;
  }

  start() {
    this.stop();
    this.timer = setInterval(() => this.tick(), 1000);
    this.tick();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async tick() {
    if (this.busy || this.pc.connectionState === 'closed') return;
    this.busy = true;
    try {
      const s = await readStats(this.pc);
      const point = { t: Date.now(), kbpsIn: null, kbpsOut: null, rtt: s.rtt };
      if (this.prev) {
        const dt = (s.at - this.prev.at) / 1000;
        if (dt > 0) {
          // Counters restart with a new pair of transceivers; never draw < 0.
          point.kbpsIn = Math.max(0, (s.bytesIn - this.prev.bytesIn) * 8 / dt / 1000);
          point.kbpsOut = Math.max(0, (s.bytesOut - this.prev.bytesOut) * 8 / dt / 1000);
        }
      }
      this.prev = s;
      this.latest = Object.assign(s, { kbpsIn: point.kbpsIn, kbpsOut: point.kbpsOut });
      this.history.push(point);
      while (this.history.length > HISTORY_SECONDS) this.history.shift();
      this.onSample(this.latest, this.history);
    } catch (e) {
      // A closed connection throws; the next state change stops the monitor.
    } finally {
      this.busy = false;
    }
  }
}
