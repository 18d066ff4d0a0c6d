// The Ayame protocol over the WebSocket at /signaling, as the official
// @open-ayame/ayame-web-sdk speaks it, plus what a person in a call needs on
// top of it: automatic reconnection with backoff when the socket drops.
//
// Client -> server: register, pong, offer, answer, candidate, bye.
// Server -> client: accept, reject, ping, bye, error (tsunagi's own, sent
// before it closes on bad input) and the relayed offer/answer/candidate.
//
// The call itself (RTCPeerConnection) lives in app.js; this file only moves
// messages and tells the app what happened through the callbacks given to
// the constructor:
//   onAccept(msg, isReconnect)  registered in the room
//   onReject(reason)            refused (e.g. 'full'); no more reconnecting
//   onMessage(msg)              relayed offer/answer/candidate, bye
//   onError(reason)             tsunagi refused our input; no more reconnecting
//   onState(state, detail)      'connecting' | 'open' | 'registered' |
//                               'lost' (detail.retryIn ms) | 'closed'
//
// isReconnect is true when the previous socket was lost. It is false after
// a 'bye': like OpenAyame, tsunagi deletes the room when one member leaves,
// tells the other 'bye' and closes its socket too, so the page registers
// again at once (alone in a fresh room) without calling that a loss.
'use strict';

// Seconds between reconnection attempts; the last one repeats. A random
// +-20 % keeps many clients that lost the same server from coming back in
// lockstep.
const BACKOFF_S = [1, 2, 4, 8, 15, 30];

// Without any message for this long (the server pings every 5 s by default)
// the socket is considered dead even if the browser has not noticed: a laptop
// that changed networks can keep a half-open TCP connection for minutes.
const SILENCE_MIN_MS = 20000;

export function signalingUrl(location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return scheme + '//' + location.host + '/signaling';
}

export class Signaling {
  constructor(url, roomId, clientId, callbacks) {
    this.url = url;
    this.roomId = roomId;
    this.clientId = clientId;
    this.cb = callbacks;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.retryTimer = null;
    this.watchdog = null;
    this.lastMessageAt = 0;
    this.lastPingAt = 0;
    this.pingInterval = 0;
    this.state = 'idle';
    this.byeReceived = false;
    this.wasLost = false;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  // Leave for good: tell the room (bye) when the socket is up, then close.
  stop(sayBye) {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      if (sayBye && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'bye' }));
      ws.onclose = ws.onerror = ws.onmessage = null;
      ws.close(1000);
    }
    this.setState('closed');
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  setState(state, detail) {
    this.state = state;
    if (this.cb.onState) this.cb.onState(state, detail || {});
  }

  open() {
    let ws;
    this.setState('connecting', { attempt: this.attempt });
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.lost('cannot open ' + this.url + ': ' + e.message);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.lastMessageAt = Date.now();
      this.setState('open');
      this.send({
        type: 'register',
        roomId: this.roomId,
        clientId: this.clientId,
        ayameClient: 'tsunagi-web',
        environment: navigator.userAgent,
      });
      this.startWatchdog();
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    // onerror is always followed by onclose; one place handles the loss.
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.watchdog);
      if (this.byeReceived && !this.stopped) {
        // The server closes the room after a bye: expected, register again.
        this.byeReceived = false;
        this.setState('rejoining');
        this.retryTimer = setTimeout(() => !this.stopped && this.open(), 100);
        return;
      }
      this.lost('closed (' + ev.code + (ev.reason ? ' ' + ev.reason : '') + ')');
    };
  }

  receive(data) {
    let msg;
    if (typeof data !== 'string') return;
    this.lastMessageAt = Date.now();
    try {
      msg = JSON.parse(data);
    } catch (e) {
      return; // not ours to judge; the server never sends this
    }
    switch (msg.type) {
      case 'ping':
        this.notePing();
        this.send({ type: 'pong' });
        break;
      case 'accept': {
        const again = this.wasLost;
        this.wasLost = false;
        this.byeReceived = false;
        this.attempt = 0;
        this.setState('registered');
        this.cb.onAccept(msg, again);
        break;
      }
      case 'reject':
        this.giveUp();
        this.cb.onReject(msg.reason || 'rejected');
        break;
      case 'error':
        this.giveUp();
        if (this.cb.onError) this.cb.onError(msg.reason || 'error');
        break;
      case 'bye':
        this.byeReceived = true;
        this.cb.onMessage(msg);
        break;
      default:
        this.cb.onMessage(msg);
    }
  }

  // The server decided; reconnecting would only get the same answer.
  giveUp() {
    const ws = this.ws;
    this.stopped = true;
    this.ws = null;
    clearInterval(this.watchdog);
    if (ws) {
      ws.onclose = ws.onerror = ws.onmessage = null;
      ws.close(1000);
    }
    this.setState('closed');
  }

  notePing() {
    const now = Date.now();
    if (this.lastPingAt) this.pingInterval = now - this.lastPingAt;
    this.lastPingAt = now;
  }

  startWatchdog() {
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      const limit = Math.max(SILENCE_MIN_MS, 3 * this.pingInterval);
      if (this.ws && Date.now() - this.lastMessageAt > limit) {
        const ws = this.ws;
        this.ws = null;
        ws.onclose = ws.onerror = ws.onmessage = null;
        ws.close();
        clearInterval(this.watchdog);
        this.lost('no message from the server for ' + Math.round(limit / 1000) + ' s');
      }
    }, 2000);
  }

  lost(why) {
    if (this.stopped) return;
    this.wasLost = true;
    const base = BACKOFF_S[Math.min(this.attempt, BACKOFF_S.length - 1)] * 1000;
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    this.attempt++;
    this.setState('lost', { retryIn: delay, why, attempt: this.attempt });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (!this.stopped) this.open();
    }, delay);
  }

  // Reconnect now instead of waiting out the backoff (a "retry" button).
  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.open();
  }
}
