// Room ids and call links. A new room id is 128 bits from the browser's
// CSPRNG in base64url (22 characters): the link is the only key to the room,
// so it must not be guessable. The id travels in the query (/?room=ID); a
// fragment (/#ID) is accepted too.
'use strict';

export const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;

export function randomId(bytes) {
  const b = new Uint8Array(bytes);
  crypto.getRandomValues(b);
  return btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function newRoomId() {
  return randomId(16);
}

export function roomFromUrl(url) {
  const u = new URL(url, location.href);
  const id = u.searchParams.get('room') || decodeURIComponent(u.hash.slice(1));
  return id && ROOM_RE.test(id) ? id : null;
}

export function roomLink(roomId, relay) {
  const u = new URL('/', location.href);
  u.searchParams.set('room', roomId);
  if (relay) u.searchParams.set('relay', '1');
  return u.href;
}
