// Runs in the page, before the page's own scripts, in every browser the call
// tests drive (lib.mjs adds it to Chromium pages, firefox.mjs to Firefox
// pages): window.__callStats(pc) is the report the Python tests judge, what
// the receiving side decoded and which candidate pair ICE selected. It reads
// getStats() in the spec's shapes and in the places Chromium and Firefox
// differ (see the comments), and never changes the page.
window.__callStats = async function (pc) {
  if (!pc) return null;
  const report = await pc.getStats();
  const out = {
    connectionState: pc.connectionState, iceConnectionState: pc.iceConnectionState,
    inbound: {}, outbound: {}, pair: null,
  };
  // Chromium names the selected pair in its transport stats; Firefox has no
  // transport stats and flags the pair itself (selected); the spec's fallback
  // is the nominated pair that succeeded.
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  });
  if (!pair) report.forEach((s) => {
    if (s.type === 'candidate-pair' && s.selected) pair = s;
  });
  if (!pair) report.forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
  });
  if (pair) {
    const c = (id) => {
      const x = report.get(id) || {};
      // url (the TURN server a relay candidate came from) is Chromium's only.
      return { type: x.candidateType, address: x.address, port: x.port, protocol: x.protocol,
               relayProtocol: x.relayProtocol, url: x.url };
    };
    out.pair = { state: pair.state, local: c(pair.localCandidateId), remote: c(pair.remoteCandidateId),
                 bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived };
  }
  report.forEach((s) => {
    // A connection may hold more than one stream of a kind (a transceiver
    // left from a renegotiation): report the one that carried the media,
    // whatever order getStats lists them in.
    if (s.type === 'inbound-rtp' &&
        !((out.inbound[s.kind] || {}).bytesReceived > (s.bytesReceived || 0))) {
      out.inbound[s.kind] = { packetsReceived: s.packetsReceived, bytesReceived: s.bytesReceived,
        framesDecoded: s.framesDecoded, frameWidth: s.frameWidth,
        totalSamplesReceived: s.totalSamplesReceived, totalAudioEnergy: s.totalAudioEnergy,
        audioLevel: s.audioLevel };
    } else if (s.type === 'outbound-rtp') {
      out.outbound[s.kind] = { packetsSent: s.packetsSent, bytesSent: s.bytesSent };
    }
  });
  return out;
};
