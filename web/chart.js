// A small hand-drawn line chart on a <canvas>: bitrate in and out (kbit/s,
// left scale) and round-trip time (ms, right scale) over the last minute.
// No library: the page has no build step and loads nothing from the net.
'use strict';

import { HISTORY_SECONDS } from './stats.js';

// A "nice" upper bound for a scale (1, 2 or 5 times a power of ten) so the
// grid labels read as round numbers and the scale does not jitter every second.
function niceMax(v, floor) {
  const x = Math.max(v, floor);
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 5, 10]) {
    if (x <= m * p) return m * p;
  }
  return 10 * p;
}

function cssVar(el, name, fallback) {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}

function formatKbps(v) {
  return v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + ' Mbit/s' : Math.round(v) + ' kbit/s';
}

// Fit the backing store to the displayed size and the screen's pixel ratio;
// returns the drawing size in CSS pixels.
function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth));
  const h = Math.max(1, Math.round(canvas.clientHeight));
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, w, h };
}

function series(ctx, history, key, x, y, color, dashed) {
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.setLineDash(dashed ? [5, 4] : []);
  ctx.beginPath();
  let pen = false;
  history.forEach((p, i) => {
    const v = p[key];
    if (v === null || v === undefined) {
      pen = false;
      return;
    }
    if (pen) ctx.lineTo(x(i), y(v));
    else ctx.moveTo(x(i), y(v));
    pen = true;
  });
  ctx.stroke();
  ctx.setLineDash([]);
}

// Legend entries with the latest values (people read the chart, not a
// table), laid out in as many rows as the width needs.
function legend(ctx, history, colors, left, width) {
  const last = history[history.length - 1] || {};
  const items = [
    ['in ' + (last.kbpsIn != null ? formatKbps(last.kbpsIn) : '–'), colors.in, false],
    ['out ' + (last.kbpsOut != null ? formatKbps(last.kbpsOut) : '–'), colors.out, false],
    ['RTT ' + (last.rtt != null ? Math.round(last.rtt) + ' ms' : '–'), colors.rtt, true],
  ];
  const placed = [];
  let x = left;
  let row = 0;
  for (const [label, color, dashed] of items) {
    const w = 28 + ctx.measureText(label).width;
    if (x > left && x + w > left + width) {
      x = left;
      row++;
    }
    placed.push({ label, color, dashed, x, y: 10 + row * 15 });
    x += w;
  }
  return { placed, height: (row + 1) * 15 + 6 };
}

function drawLegend(ctx, placed, textColor) {
  ctx.textAlign = 'left';
  for (const p of placed) {
    ctx.strokeStyle = p.color;
    ctx.lineWidth = 2;
    ctx.setLineDash(p.dashed ? [5, 4] : []);
    ctx.beginPath();
    ctx.moveTo(p.x, p.y);
    ctx.lineTo(p.x + 16, p.y);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = textColor;
    ctx.fillText(p.label, p.x + 20, p.y + 4);
  }
}

function drawGrid(ctx, box, kTop, rTop, colors, n) {
  const { l, t, pw, ph, h } = box;
  ctx.strokeStyle = colors.grid;
  ctx.lineWidth = 1;
  ctx.fillStyle = colors.text;
  for (let g = 0; g <= 4; g++) {
    const gy = Math.round(t + (ph * g) / 4) + 0.5;
    ctx.beginPath();
    ctx.moveTo(l, gy);
    ctx.lineTo(l + pw, gy);
    ctx.stroke();
    ctx.textAlign = 'right';
    ctx.fillText(formatKbps((kTop * (4 - g)) / 4), l - 4, gy + 4);
    ctx.textAlign = 'left';
    ctx.fillText(Math.round((rTop * (4 - g)) / 4) + ' ms', l + pw + 4, gy + 4);
  }
  ctx.textAlign = 'left';
  ctx.fillText('-' + n + ' s', l, h - 4);
  ctx.textAlign = 'right';
  ctx.fillText('now', l + pw, h - 4);
}

export function drawChart(canvas, history) {
  const { ctx, w, h } = fitCanvas(canvas);
  const colors = {
    grid: cssVar(canvas, '--chart-grid', '#ccc'),
    text: cssVar(canvas, '--chart-text', '#555'),
    in: cssVar(canvas, '--chart-in', '#1565c0'),
    out: cssVar(canvas, '--chart-out', '#2e7d32'),
    rtt: cssVar(canvas, '--chart-rtt', '#c62828'),
  };
  ctx.clearRect(0, 0, w, h);
  ctx.font = '11px system-ui, sans-serif';
  const l = 58;
  const r = 44;
  const leg = legend(ctx, history, colors, 8, w - 16);
  const box = { l, t: leg.height + 4, pw: w - l - r, ph: h - leg.height - 4 - 18, h };
  if (box.pw < 40 || box.ph < 30) return;

  let maxKbps = 0;
  let maxRtt = 0;
  for (const p of history) {
    maxKbps = Math.max(maxKbps, p.kbpsIn || 0, p.kbpsOut || 0);
    maxRtt = Math.max(maxRtt, p.rtt || 0);
  }
  const kTop = niceMax(maxKbps, 10);
  const rTop = niceMax(maxRtt, 10);
  const n = HISTORY_SECONDS;
  // The newest point sits at the right edge; older ones scroll left.
  const offset = n - history.length;
  const x = (i) => box.l + ((i + offset) / (n - 1)) * box.pw;
  const yK = (v) => box.t + box.ph - (v / kTop) * box.ph;
  const yR = (v) => box.t + box.ph - (v / rTop) * box.ph;

  drawGrid(ctx, box, kTop, rTop, colors, n);
  series(ctx, history, 'kbpsIn', x, yK, colors.in, false);
  series(ctx, history, 'kbpsOut', x, yK, colors.out, false);
  series(ctx, history, 'rtt', x, yR, colors.rtt, true);
  drawLegend(ctx, leg.placed, colors.text);
}

// A text equivalent of the chart for screen readers (the canvas's label).
export function describeChart(history) {
  const last = history[history.length - 1];
  if (!last) return 'No measurements yet.';
  const parts = [];
  if (last.kbpsIn != null) parts.push('receiving ' + formatKbps(last.kbpsIn));
  if (last.kbpsOut != null) parts.push('sending ' + formatKbps(last.kbpsOut));
  if (last.rtt != null) parts.push('round-trip time ' + Math.round(last.rtt) + ' ms');
  return parts.length ? 'Now ' + parts.join(', ') + '.' : 'No measurements yet.';
}
