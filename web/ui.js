// The page's DOM: which screen shows, the notice banner, status texts, the
// chat log and the buttons' labels. app.js decides; this file only renders.
// Text from the network (chat, server reasons) goes in as textContent, never
// as HTML.
'use strict';

const $ = (id) => document.getElementById(id);

export const el = {
  notice: $('notice'),
  noticeText: $('notice-text'),
  noticeActions: $('notice-actions'),
  home: $('home'),
  homeTitle: $('home-title'),
  homeText: $('home-text'),
  withCamera: $('with-camera'),
  start: $('start'),
  joinForm: $('join-form'),
  joinLink: $('join-link'),
  call: $('call'),
  callState: $('call-state'),
  path: $('path'),
  serverState: $('server-state'),
  shareLink: $('share-link'),
  copyLink: $('copy-link'),
  remoteVideo: $('remote-video'),
  remoteCaption: $('remote-caption'),
  localVideo: $('local-video'),
  mute: $('mute'),
  camera: $('camera'),
  hangup: $('hangup'),
  chart: $('chart'),
  chatLog: $('chat-log'),
  chatForm: $('chat-form'),
  chatInput: $('chat-input'),
  chatSend: $('chat-send'),
  ended: $('ended'),
  endedText: $('ended-text'),
  rejoin: $('rejoin'),
  newCall: $('new-call'),
};

export function showScreen(name) {
  for (const s of ['home', 'call', 'ended']) el[s].hidden = s !== name;
}

// A notice stays until replaced or cleared. actions: [{label, run}].
export function notify(text, actions, level) {
  el.notice.hidden = false;
  el.notice.dataset.level = level || 'info';
  el.noticeText.textContent = text;
  el.noticeActions.replaceChildren();
  for (const a of actions || []) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = a.label;
    b.addEventListener('click', a.run);
    el.noticeActions.append(b);
  }
}

export function clearNotice() {
  el.notice.hidden = true;
  el.noticeText.textContent = '';
  el.noticeActions.replaceChildren();
}

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// Mute and camera buttons say what a press does ("Unmute"); the label
// changes instead of an aria-pressed state, so a screen reader reads the
// action. data-on only colours the button.
export function setToggle(button, on, label, disabled) {
  button.dataset.on = on ? 'true' : 'false';
  button.textContent = label;
  button.disabled = !!disabled;
}

export function setChatEnabled(on) {
  el.chatInput.disabled = !on;
  el.chatSend.disabled = !on;
}

export function addChatLine(who, text) {
  const li = document.createElement('li');
  li.className = who === 'me' ? 'me' : 'them';
  const name = document.createElement('span');
  name.className = 'who';
  name.textContent = who === 'me' ? 'You: ' : 'Them: ';
  const body = document.createElement('span');
  body.textContent = text;
  li.append(name, body);
  el.chatLog.append(li);
  el.chatLog.scrollTop = el.chatLog.scrollHeight;
}

export function addChatNote(text) {
  const li = document.createElement('li');
  li.className = 'note';
  li.textContent = text;
  el.chatLog.append(li);
}

// Copy to the clipboard where allowed (https or localhost); elsewhere select
// the text so a long press or Ctrl+C copies it.
export async function copyText(input) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(input.value);
      return true;
    }
  } catch (e) {
    // fall through to selecting
  }
  input.focus();
  input.select();
  try {
    return document.execCommand('copy');
  } catch (e) {
    return false;
  }
}
