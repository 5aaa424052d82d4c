// The call detail's drawings in SVG: the SIP ladder and the quality line charts.

import { h } from './api.js';

// ---- SIP ladder ----

const LADDER = { width: 640, left: 130, right: 560, top: 56, row: 40, bottom: 24 };

/** An SVG ladder (role=img, aria-label "SIP ladder"): dialtone and the peer, one arrow a message. */
export function ladder(messages) {
  const { width, left, right, top, row, bottom } = LADDER;
  const height = top + row * messages.length + bottom;
  const peers = [...new Set(messages.map((m) => m.peer).filter(Boolean))];
  const peerName = peers.length === 1 ? peers[0] : peers.length ? `${peers[0]} (+${peers.length - 1})` : 'peer';
  const svg = h('svg', {
    role: 'img', 'aria-label': 'SIP ladder', viewBox: `0 0 ${width} ${height}`, class: 'ladder',
    width, height, preserveAspectRatio: 'xMinYMin meet',
  },
  h('text', { x: left, y: 20, class: 'lane-name', 'text-anchor': 'middle' }, 'dialtone'),
  h('text', { x: right, y: 20, class: 'lane-name', 'text-anchor': 'middle' }, peerName),
  h('line', { x1: left, y1: 30, x2: left, y2: height - 8, class: 'lifeline' }),
  h('line', { x1: right, y1: 30, x2: right, y2: height - 8, class: 'lifeline' }),
  messages.map((m, i) => {
    const y = top + row * i + row / 2;
    const sent = m.direction === 'sent';
    const [x1, x2] = sent ? [left, right] : [right, left];
    const dir = sent ? -1 : 1; // the head points at x2
    const kind = /^[1-6]\d\d\b/.test(m.label || '') ? (Number(m.label.slice(0, 3)) >= 300 ? 'resp-bad' : 'resp') : 'req';
    return h('g', { class: `msg ${kind}` },
      h('title', {}, `${m.first_line || m.label} (${m.direction} ${m.transport || ''} ${m.peer || ''}, +${m.offset_ms} ms)`),
      h('text', { x: 8, y: y + 4, class: 'offset' }, `+${m.offset_ms} ms`),
      h('line', { x1, y1: y, x2: x2 + dir * 8, y2: y, class: 'arrow' }),
      h('polygon', { points: `${x2},${y} ${x2 + dir * 10},${y - 5} ${x2 + dir * 10},${y + 5}`, class: 'head' }),
      h('text', { x: (left + right) / 2, y: y - 6, 'text-anchor': 'middle', class: 'label' }, m.label || m.first_line));
  }));
  return svg;
}

// ---- Line charts ----

const CHART = { width: 320, height: 150, padL: 40, padR: 10, padT: 10, padB: 26 };

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/**
 * A small line chart: `series` is `[{name, cls, points: [[x, y|null], …]}]`; a null breaks the
 * line. `range` fixes the y axis (`[min, max]`), else 0 to a round maximum.
 */
export function lineChart(label, series, { range, xUnit = 's' } = {}) {
  const { width, height, padL, padR, padT, padB } = CHART;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]).filter((y) => y !== null && y !== undefined));
  const x0 = Math.min(0, ...xs);
  const x1 = Math.max(x0 + 1, ...xs);
  const [y0, y1] = range || [0, niceMax(Math.max(0, ...ys))];
  const sx = (x) => padL + ((x - x0) / (x1 - x0)) * (width - padL - padR);
  const sy = (y) => padT + (1 - (Math.min(Math.max(y, y0), y1) - y0) / (y1 - y0)) * (height - padT - padB);
  const grid = [0, 0.5, 1].map((f) => {
    const v = y0 + f * (y1 - y0);
    return h('g', { class: 'grid' },
      h('line', { x1: padL, x2: width - padR, y1: sy(v), y2: sy(v) }),
      h('text', { x: padL - 4, y: sy(v) + 4, 'text-anchor': 'end' }, fmt(v)));
  });
  const lines = series.map((s) => {
    const runs = [];
    let run = [];
    for (const [x, y] of s.points) {
      if (y === null || y === undefined || Number.isNaN(y)) { if (run.length) runs.push(run); run = []; continue; }
      run.push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
    }
    if (run.length) runs.push(run);
    return h('g', { class: `series ${s.cls}` }, runs.map((r) => r.length === 1
      ? h('circle', { cx: r[0].split(',')[0], cy: r[0].split(',')[1], r: 2.5 })
      : h('polyline', { points: r.join(' ') })));
  });
  const svg = h('svg', { role: 'img', 'aria-label': label, viewBox: `0 0 ${width} ${height}`, class: 'chart' },
    grid,
    h('line', { x1: padL, x2: width - padR, y1: height - padB, y2: height - padB, class: 'axis' }),
    h('text', { x: padL, y: height - 8, class: 'tick' }, `${fmt(x0)} ${xUnit}`),
    h('text', { x: width - padR, y: height - 8, class: 'tick', 'text-anchor': 'end' }, `${fmt(x1)} ${xUnit}`),
    lines);
  const legend = h('ul', { class: 'legend' }, series.map((s) => {
    const has = s.points.some((p) => p[1] !== null && p[1] !== undefined);
    return h('li', { class: has ? null : 'no-data', title: has ? null : 'no figures' }, h('span', { class: `swatch ${s.cls}`, 'aria-hidden': 'true' }), s.name);
  }));
  return h('figure', { class: 'chart-box' }, h('figcaption', {}, label), svg, legend);
}

/** The four quality charts of a `GET /api/calls/{id}/quality` answer. */
export function qualityCharts(q) {
  const t = (s) => s.t_ms / 1000;
  const pick = (side, key) => q.samples.map((s) => [t(s), s[side] ? s[side][key] ?? null : null]);
  const two = (key) => [
    { name: 'inbound', cls: 'in', points: pick('inbound', key) },
    { name: 'outbound', cls: 'out', points: pick('outbound', key) },
  ];
  return h('div', { class: 'charts' },
    lineChart('Loss (%)', two('loss_pct')),
    lineChart('Jitter (ms)', two('jitter_ms')),
    lineChart('Round trip (ms)', two('rtt_ms')),
    lineChart('MOS', two('mos'), { range: [1, 4.5] }));
}

export { fmt };
