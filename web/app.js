// tsunagi's call page: two people, one room, audio by default, camera
// optional, a text chat on a data channel, and a live view of how the call
// is doing. Signaling is the Ayame protocol at /signaling (signaling.js);
// the ICE servers come from tsunagi's accept message (its own STUN/TURN with
// short-lived credentials).
//
// Who offers: the one who finds the other already in the room
// (accept.isExistClient), exactly as the official Ayame SDK does, so this
// page and the SDK can call each other.
//
// The media path does not depend on the signaling socket: when the socket
// drops during a call the call goes on, the socket reconnects with backoff
// and registers again, and the one who re-registers second restarts ICE on
// the existing connection so both sides are ready for the next network
// change.
//
// URL: /?room=ID joins room ID (also /#ID). ?relay=1 forces every packet
// through the TURN relay (iceTransportPolicy 'relay'), to try the relay.
// window.tsunagi is a small hook for tests and for curious people; see
// docs/call-page.md.
'use strict';

import { Signaling, signalingUrl } from './signaling.js';
import { StatsMonitor, readStats } from './stats.js';
import { drawChart, describeChart } from './chart.js';
import { MEDIA_ERRORS, attachLocalTracks, getMedia, track } from './media.js';
import { ROOM_RE, newRoomId, randomId, roomFromUrl, roomLink } from './room.js';
import * as ui from './ui.js';
import { el } from './ui.js';

const params = new URLSearchParams(location.search);
const FORCE_RELAY = params.get('relay') === '1';
// After the other side's signaling said bye, a connection that stays
// 'disconnected' this long means they are gone, not just moving networks.
const GONE_AFTER_BYE_MS = 5000;

const call = {
  phase: 'home', // home | media | waiting | connecting | connected | ended | full | error
  roomId: null,
  clientId: crypto.randomUUID ? crypto.randomUUID() : randomId(16),
  sig: null,
  pc: null,
  dc: null,
  monitor: null,
  local: null, // MediaStream of our microphone (and camera)
  iceServers: [],
  isOfferer: false,
  pendingCandidates: [],
  peerByeAt: 0,
  goneTimer: null,
  endedBy: null,
  registrations: 0, // accepts received (the first, and each re-register)
  offers: { sent: 0, received: 0 },
  chat: { sent: [], received: [] },
};

// ------------------------------------------------------------ media --

function showLocal() {
  const hasVideo = !!track(call.local, 'video');
  el.localVideo.srcObject = hasVideo ? call.local : null;
  el.localVideo.parentElement.classList.toggle('off', !hasVideo);
  const mic = track(call.local, 'audio');
  ui.setToggle(el.mute, mic && !mic.enabled, mic && !mic.enabled ? 'Unmute' : 'Mute', !mic);
  ui.setToggle(el.camera, hasVideo, hasVideo ? 'Camera off' : 'Camera on', !navigator.mediaDevices);
}

async function toggleCamera() {
  const cam = track(call.local, 'video');
  if (cam) {
    cam.stop();
    call.local.removeTrack(cam);
  } else {
    try {
      const s = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } } });
      if (!call.local) call.local = new MediaStream();
      call.local.addTrack(s.getVideoTracks()[0]);
    } catch (e) {
      ui.notify(MEDIA_ERRORS[e.name] || 'The camera could not be started: ' + e.message, null, 'error');
      return;
    }
  }
  if (call.pc) attachLocalTracks(call.pc, call.local);
  showLocal();
}

function toggleMute() {
  const mic = track(call.local, 'audio');
  if (!mic) return;
  mic.enabled = !mic.enabled;
  showLocal();
}

// ------------------------------------------------- peer connection --

function newPeerConnection() {
  closePeerConnection();
  const pc = new RTCPeerConnection({
    iceServers: call.iceServers,
    iceTransportPolicy: FORCE_RELAY ? 'relay' : 'all',
  });
  call.pc = pc;
  call.pendingCandidates = [];
  call.peerByeAt = 0;
  // Negotiated on both sides (id 0): it exists whoever makes the offer.
  call.dc = pc.createDataChannel('chat', { negotiated: true, id: 0 });
  wireDataChannel(call.dc);
  pc.onicecandidate = (e) => {
    if (e.candidate && pc === call.pc) call.sig.send({ type: 'candidate', ice: e.candidate.toJSON() });
  };
  pc.ontrack = (e) => {
    if (pc !== call.pc) return;
    const stream = e.streams[0] || el.remoteVideo.srcObject || new MediaStream();
    if (!e.streams[0] && !stream.getTracks().includes(e.track)) stream.addTrack(e.track);
    if (el.remoteVideo.srcObject !== stream) el.remoteVideo.srcObject = stream;
    el.remoteVideo.play().catch(() => {});
  };
  pc.onconnectionstatechange = () => pc === call.pc && connectionChanged();
  // Firefox before 113 has no connectionState; ICE state tells the same story.
  pc.oniceconnectionstatechange = () => pc === call.pc && connectionChanged();
  call.monitor = new StatsMonitor(pc, onStats);
  call.monitor.start();
  return pc;
}

function closePeerConnection() {
  clearTimeout(call.goneTimer);
  if (call.monitor) call.monitor.stop();
  call.monitor = null;
  if (call.dc) call.dc.onclose = call.dc.onmessage = call.dc.onopen = null;
  call.dc = null;
  if (call.pc) call.pc.close();
  call.pc = null;
  el.remoteVideo.srcObject = null;
  ui.setChatEnabled(false);
}

function wireDataChannel(dc) {
  dc.onopen = () => {
    ui.setChatEnabled(true);
    ui.addChatNote('Chat connected.');
  };
  dc.onclose = () => {
    ui.setChatEnabled(false);
    if (dc === call.dc && call.phase !== 'ended') peerLeft();
  };
  dc.onmessage = (e) => {
    let m;
    try {
      m = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    if (m.type === 'chat' && typeof m.text === 'string') {
      call.chat.received.push(m.text);
      ui.addChatLine('them', m.text.slice(0, 2000));
    } else if (m.type === 'bye') {
      peerLeft();
    }
  };
}

function sendChat(text) {
  if (!call.dc || call.dc.readyState !== 'open' || !text) return false;
  call.dc.send(JSON.stringify({ type: 'chat', text }));
  call.chat.sent.push(text);
  ui.addChatLine('me', text);
  return true;
}

function connectionChanged() {
  const pc = call.pc;
  const st = pc.connectionState || pc.iceConnectionState;
  const labels = {
    new: 'Connecting…', checking: 'Connecting…', connecting: 'Connecting…',
    connected: 'Connected', completed: 'Connected',
    disconnected: 'Connection interrupted, trying to recover…',
    failed: 'Connection failed', closed: 'Closed',
  };
  if (st === 'connected' || st === 'completed') {
    call.phase = 'connected';
    el.remoteCaption.textContent = 'The other person';
    clearTimeout(call.goneTimer);
  } else if (st === 'disconnected' && call.peerByeAt) {
    clearTimeout(call.goneTimer);
    call.goneTimer = setTimeout(() => call.pc === pc && peerLeft(), GONE_AFTER_BYE_MS);
  } else if (st === 'failed') {
    if (call.peerByeAt) {
      peerLeft();
      return;
    }
    // Both still in the room: the offerer tries again with an ICE restart.
    ui.notify('The connection failed. Trying again…', null, 'error');
    if (call.isOfferer) makeOffer(true);
  }
  ui.setText(el.callState, labels[st] || st);
}

async function makeOffer(iceRestart) {
  const pc = call.pc;
  call.isOfferer = true;
  if (pc.getTransceivers().length === 0) {
    pc.addTransceiver('audio', { direction: 'sendrecv' });
    pc.addTransceiver('video', { direction: 'sendrecv' });
    attachLocalTracks(call.pc, call.local);
  }
  try {
    const offer = await pc.createOffer({ iceRestart: !!iceRestart });
    if (pc !== call.pc) return;
    await pc.setLocalDescription(offer);
    call.sig.send({ type: 'offer', sdp: pc.localDescription.sdp });
    call.offers.sent++;
  } catch (e) {
    ui.notify('Could not start the call: ' + e.message, null, 'error');
  }
}

const fingerprint = (sdp) => (/^a=fingerprint:(.+)$/m.exec(sdp || '') || [])[1] || null;

async function handleOffer(msg) {
  // An offer from a different peer connection (the other person reloaded
  // the page) cannot be applied to ours: its DTLS identity changed.
  const old = call.pc && call.pc.remoteDescription;
  if (!call.pc || call.pc.connectionState === 'closed' ||
      (old && fingerprint(old.sdp) !== fingerprint(msg.sdp))) {
    newPeerConnection();
  }
  const pc = call.pc;
  call.isOfferer = false;
  call.peerByeAt = 0;
  call.offers.received++;
  try {
    await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    attachLocalTracks(call.pc, call.local);
    await flushCandidates(pc);
    const answer = await pc.createAnswer();
    if (pc !== call.pc) return;
    await pc.setLocalDescription(answer);
    call.sig.send({ type: 'answer', sdp: pc.localDescription.sdp });
  } catch (e) {
    ui.notify('Could not answer the call: ' + e.message, null, 'error');
  }
}

async function handleAnswer(msg) {
  const pc = call.pc;
  if (!pc || pc.signalingState !== 'have-local-offer') return;
  try {
    await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
    await flushCandidates(pc);
  } catch (e) {
    ui.notify('Could not use the answer: ' + e.message, null, 'error');
  }
}

async function handleCandidate(msg) {
  if (!msg.ice || !call.pc) return;
  if (!call.pc.remoteDescription) {
    call.pendingCandidates.push(msg.ice);
    return;
  }
  await call.pc.addIceCandidate(msg.ice).catch(() => {});
}

async function flushCandidates(pc) {
  const list = call.pendingCandidates;
  call.pendingCandidates = [];
  for (const c of list) await pc.addIceCandidate(c).catch(() => {});
}

function onStats(latest, history) {
  drawChart(el.chart, history);
  el.chart.setAttribute('aria-label', describeChart(history));
  if (latest.path && (call.pc.connectionState || call.pc.iceConnectionState) !== 'new') {
    ui.setText(el.path, latest.path.label);
    el.path.dataset.kind = latest.path.kind;
  }
}

// ---------------------------------------------------------- signaling --

const signalingCallbacks = {
  onAccept(msg, again) {
    call.registrations++;
    if (Array.isArray(msg.iceServers) && msg.iceServers.length) call.iceServers = msg.iceServers;
    const peerThere = msg.isExistClient === true || msg.isExistUser === true;
    const live = call.pc && ['connected', 'connecting'].includes(call.pc.connectionState);
    if (again) ui.notify('Reconnected to the server.');
    if (live) {
      // The call survived the lost socket. Fresh credentials for the relay;
      // if we are second in the room, restart ICE on the same connection.
      try {
        call.pc.setConfiguration({ iceServers: call.iceServers, iceTransportPolicy: FORCE_RELAY ? 'relay' : 'all' });
      } catch (e) {
        // keep the old configuration
      }
      if (peerThere) makeOffer(true);
      return;
    }
    newPeerConnection();
    if (peerThere) {
      call.phase = 'connecting';
      ui.setText(el.callState, 'Connecting…');
      makeOffer(false);
    } else {
      call.phase = 'waiting';
      ui.setText(el.callState, 'Waiting for the other person');
      el.remoteCaption.textContent = 'Waiting for the other person… Send them the link.';
    }
  },
  onReject(reason) {
    const full = reason === 'full';
    endCall(full ? 'full' : 'rejected');
    ui.notify(full ? 'This room is full: two people are already in this call.'
      : 'The server refused to let you in (' + reason + ').', [
      { label: 'Start a new call', run: () => startNew() },
    ], 'error');
  },
  onError(reason) {
    endCall('error');
    ui.notify('The server closed the connection: ' + reason, null, 'error');
  },
  onMessage(msg) {
    if (msg.type === 'offer') handleOffer(msg);
    else if (msg.type === 'answer') handleAnswer(msg);
    else if (msg.type === 'candidate') handleCandidate(msg);
    else if (msg.type === 'bye') peerSignalingGone();
  },
  onState(state, detail) {
    const inCall = call.phase === 'connected';
    if (state === 'registered') ui.setText(el.serverState, 'connected');
    else if (state === 'connecting' || state === 'open' || state === 'rejoining') {
      ui.setText(el.serverState, 'connecting…');
    }
    else if (state === 'lost') {
      const s = Math.max(1, Math.round(detail.retryIn / 1000));
      ui.setText(el.serverState, 'lost, reconnecting in ' + s + ' s');
      ui.notify('Lost the connection to the server. Reconnecting in ' + s + ' s' +
        (inCall ? ' — the call goes on meanwhile.' : '.'), [
        { label: 'Retry now', run: () => call.sig && call.sig.retryNow() },
      ], 'warn');
    } else if (state === 'closed') ui.setText(el.serverState, 'disconnected');
  },
};

// The other side's socket left the room. If our media still flows, their
// socket may just have dropped: keep the call and let it decide (a data
// channel 'bye', or a connection that fails, ends it).
function peerSignalingGone() {
  const pc = call.pc;
  if (pc && (pc.connectionState === 'connected' || pc.iceConnectionState === 'connected' ||
             pc.iceConnectionState === 'completed')) {
    call.peerByeAt = Date.now();
    return;
  }
  peerLeft();
}

function peerLeft() {
  if (call.phase === 'ended') return;
  const wasInCall = call.phase === 'connected';
  newPeerConnection();
  call.isOfferer = false;
  call.phase = 'waiting';
  ui.setText(el.callState, 'Waiting for the other person');
  ui.setText(el.path, '–');
  el.remoteCaption.textContent = 'Waiting for the other person… Send them the link.';
  if (wasInCall) {
    ui.notify('The other person left the call.');
    ui.addChatNote('The other person left.');
  }
}

// ---------------------------------------------------------- lifecycle --

async function enterRoom(roomId, withCamera, withoutMic) {
  // A second press while the microphone prompt is open, or while in a room.
  if (call.phase === 'media' || call.sig) return;
  ui.clearNotice();
  call.roomId = roomId;
  call.phase = 'media';
  call.endedBy = null;
  if (!withoutMic && !call.local) {
    try {
      call.local = await getMedia(withCamera, (t) => ui.notify(t));
    } catch (e) {
      call.phase = 'home';
      const text = e.name === 'Insecure' ? e.message : MEDIA_ERRORS[e.name] || 'Your microphone could not be started: ' + e.message;
      ui.notify(text, [
        { label: 'Try again', run: () => enterRoom(roomId, withCamera, false) },
        { label: 'Join without microphone', run: () => enterRoom(roomId, false, true) },
      ], 'error');
      return;
    }
  }
  if (location.search !== '?room=' + roomId) {
    history.replaceState(null, '', roomLink(roomId, FORCE_RELAY).slice(location.origin.length));
  }
  el.shareLink.value = roomLink(roomId, FORCE_RELAY);
  el.chatLog.replaceChildren();
  ui.showScreen('call');
  showLocal();
  ui.setText(el.callState, 'Joining…');
  ui.setText(el.path, '–');
  call.sig = new Signaling(signalingUrl(location), roomId, call.clientId, signalingCallbacks);
  call.sig.start();
}

function endCall(why) {
  if (call.dc && call.dc.readyState === 'open') {
    try {
      call.dc.send(JSON.stringify({ type: 'bye' }));
    } catch (e) {
      // closing anyway
    }
  }
  const phase = call.phase;
  call.phase = 'ended';
  call.endedBy = why;
  closePeerConnection();
  if (call.sig) call.sig.stop(why === 'hangup');
  call.sig = null;
  if (call.local) call.local.getTracks().forEach((t) => t.stop());
  call.local = null;
  el.localVideo.srcObject = null;
  if (why === 'full') call.phase = 'full';
  else if (why === 'error' || why === 'rejected') call.phase = 'error';
  ui.setText(el.callState, why === 'hangup' ? 'Ended' : 'Not connected');
  ui.setText(el.path, '–');
  delete el.path.dataset.kind;
  el.endedText.textContent = why === 'hangup' ? 'You hung up.' : '';
  if (why === 'hangup') {
    ui.showScreen('ended');
  } else if (why === 'full') {
    // That room is taken: the home screen offers a new one.
    history.replaceState(null, '', '/');
    showHome(null);
  } else {
    showHome(call.roomId);
  }
  return phase;
}

function startNew() {
  ui.clearNotice();
  const id = newRoomId();
  enterRoom(id, el.withCamera.checked, false);
}

function showHome(roomId) {
  ui.showScreen('home');
  if (roomId) {
    el.homeTitle.textContent = 'Join the call';
    el.homeText.textContent = 'You were invited to a call. Your microphone is used; the camera only if you tick the box.';
    el.start.textContent = 'Join the call';
  } else {
    el.homeTitle.textContent = 'Start a call';
    el.homeText.textContent = 'Start a call, then send the link to the person you want to talk to.';
    el.start.textContent = 'Start a call';
  }
}

function init() {
  const roomId = roomFromUrl(location.href);
  el.start.addEventListener('click', () => {
    const id = roomFromUrl(location.href);
    if (id) enterRoom(id, el.withCamera.checked, false);
    else startNew();
  });
  el.joinForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = el.joinLink.value.trim();
    const id = ROOM_RE.test(text) ? text : roomFromUrl(text.includes('/') ? text : '/?room=' + text);
    if (id) enterRoom(id, el.withCamera.checked, false);
    else ui.notify('That is not a call link: it should end in ?room= followed by the room code.', null, 'error');
  });
  el.copyLink.addEventListener('click', async () => {
    const ok = await ui.copyText(el.shareLink);
    el.copyLink.textContent = ok ? 'Copied' : 'Select and copy';
    setTimeout(() => (el.copyLink.textContent = 'Copy link'), 2000);
  });
  el.mute.addEventListener('click', toggleMute);
  el.camera.addEventListener('click', toggleCamera);
  el.hangup.addEventListener('click', () => endCall('hangup'));
  el.rejoin.addEventListener('click', () => enterRoom(call.roomId, el.withCamera.checked, false));
  el.newCall.addEventListener('click', () => {
    history.replaceState(null, '', '/');
    startNew();
  });
  el.chatForm.addEventListener('submit', (e) => {
    e.preventDefault();
    if (sendChat(el.chatInput.value.trim())) el.chatInput.value = '';
  });
  window.addEventListener('resize', () => call.monitor && drawChart(el.chart, call.monitor.history));
  window.addEventListener('pagehide', () => call.phase !== 'ended' && call.sig && endCall('hangup'));
  if (params.get('room') && !roomId) {
    ui.notify('The room code in this link is not valid.', null, 'error');
  }
  showHome(roomId);
}

// The documented test hook (docs/call-page.md). Read-only views plus
// sendChat; tests also click the real buttons.
window.tsunagi = {
  get pc() {
    return call.pc;
  },
  get state() {
    return {
      phase: call.phase,
      roomId: call.roomId,
      signaling: call.sig ? call.sig.state : 'closed',
      connection: call.pc ? call.pc.connectionState : null,
      ice: call.pc ? call.pc.iceConnectionState : null,
      isOfferer: call.isOfferer,
      path: call.monitor && call.monitor.latest ? call.monitor.latest.path : null,
      iceServers: call.iceServers,
      relayOnly: FORCE_RELAY,
      dataChannel: call.dc ? call.dc.readyState : null,
      registrations: call.registrations,
      offers: Object.assign({}, call.offers),
    };
  },
  get stats() {
    return call.monitor ? call.monitor.latest : null;
  },
  get history() {
    return call.monitor ? call.monitor.history.slice() : [];
  },
  chat: call.chat,
  sendChat,
  readStats: () => (call.pc ? readStats(call.pc) : Promise.resolve(null)),
  newRoomId,
};

init();
