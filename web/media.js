// The microphone and camera: getUserMedia with messages a person can act
// on, and handing tracks to a peer connection's transceivers.
'use strict';

export const MEDIA_ERRORS = {
  NotAllowedError: 'The browser was not allowed to use your microphone or camera. ' +
    "Allow it in the browser's site settings (the icon next to the address), then try again.",
  SecurityError: 'The browser blocked the microphone and camera on this page.',
  NotFoundError: 'No microphone was found. Plug one in, or join without one to only listen.',
  OverconstrainedError: 'No microphone or camera fits what the page asked for.',
  NotReadableError: 'Your microphone or camera is busy (another application may be using it).',
  AbortError: 'Your microphone or camera could not be started.',
};

export async function getMedia(withCamera, onNotice) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const e = new Error('Browsers allow the microphone and camera only on https:// pages and on ' +
      'localhost. Open this page over https:// (tsunagi --https), or join without a microphone.');
    e.name = 'Insecure';
    throw e;
  }
  const video = withCamera ? { width: { ideal: 640 }, height: { ideal: 480 } } : false;
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video });
  } catch (e) {
    // A missing camera should not cost the call: retry with audio alone.
    if (withCamera && (e.name === 'NotFoundError' || e.name === 'OverconstrainedError')) {
      const s = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      onNotice('No camera was found; you are in the call with audio only.');
      return s;
    }
    throw e;
  }
}

export function track(stream, kind) {
  if (!stream) return null;
  return (kind === 'audio' ? stream.getAudioTracks() : stream.getVideoTracks())[0] || null;
}

// Give every transceiver our track of its kind (or none). Tracks are swapped
// with replaceTrack, so turning the camera on later needs no renegotiation.
export function attachLocalTracks(pc, stream) {
  for (const t of pc.getTransceivers()) {
    const kind = t.receiver.track && t.receiver.track.kind;
    if (!kind || t.stopped || t.currentDirection === 'stopped') continue;
    if (t.direction !== 'sendrecv') t.direction = 'sendrecv';
    const mine = track(stream, kind);
    if (t.sender.track !== mine) t.sender.replaceTrack(mine).catch(() => {});
    if (mine && t.sender.setStreams) t.sender.setStreams(stream);
  }
}
