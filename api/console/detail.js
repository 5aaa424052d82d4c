// "Call <id>": facts, timeline, SIP ladder, quality, recording (audio + waveform) and the
// agent's figures of one call.

import { api, raw, can, h, fill, alertBox, timeEl, secs, dash } from './api.js';
import { parties } from './live.js';
import { ladder, qualityCharts, fmt } from './charts.js';
import { decodeWav, waveform } from './wave.js';

/** A `<dl>` of [term, value] pairs (values may be nodes). */
function dl(pairs, cls) {
  return h('dl', { class: cls || 'facts' }, pairs.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v === null || v === undefined || v === '' ? '—' : v))));
}

/** GET that answers null on a 404 (an endpoint not there yet, or nothing kept). */
async function optional(path) {
  try {
    return await api('GET', path);
  } catch (x) {
    if (x.status === 404) return null;
    throw x;
  }
}

export function callPage(main, id) {
  const err = alertBox();
  let alive = true;
  const stops = [];
  const section = (title, slug) => {
    const body = h('div', { class: 'section-body' }, h('p', { class: 'muted' }, 'Loading…'));
    main.append(h('section', { 'aria-labelledby': `sec-${slug}` }, h('h2', { id: `sec-${slug}` }, title), body));
    return body;
  };
  main.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/calls' }, '← Call log')),
    h('h1', { tabindex: -1 }, `Call ${id}`), err);
  const facts = section('Facts', 'facts');
  const timeline = section('Timeline', 'timeline');
  const sip = section('SIP ladder', 'sip');
  const quality = section('Quality', 'quality');
  const recording = section('Recording', 'recording');
  const agent = section('Agent', 'agent');
  const path = (what) => `/api/calls/${encodeURIComponent(id)}${what}`;

  (async () => {
    let call;
    try {
      call = await api('GET', path(''));
    } catch (x) {
      if (!alive) return;
      err.show(x);
      for (const s of [facts, timeline, sip, quality, recording, agent]) fill(s, h('p', { class: 'muted' }, 'Not available.'));
      return;
    }
    if (!alive) return;
    showFacts(call);
    showTimeline(call);
    showAgent(call);
    showRecording(call);
    showSip();
    showQuality();
  })();

  function showFacts(c) {
    const p = parties(c);
    const cause = [c.sip_status, c.reason].filter((v) => v !== null && v !== undefined && v !== '').join(' ');
    const rec = c.recording ? c.recording.state : c.record ? 'asked, none yet' : 'not recorded';
    fill(facts, dl([
      ['Status', h('span', { class: `badge s-${c.status}` }, c.status)],
      ['Direction', c.direction],
      ['From', p.from],
      ['To', p.to],
      ['Contact', dash(c.contact_id)],
      ['Created', timeEl(c.created_at)],
      ['Answered', timeEl(c.answered_at)],
      ['Ended', timeEl(c.ended_at)],
      ['Duration', c.duration === null || c.duration === undefined ? '—' : `${secs(c.duration)} (${c.duration} s)`],
      ['Termination cause', cause || '—'],
      ['Ended by', dash(c.ended_by)],
      ['Answered by', c.answered_by ? `${c.answered_by}${c.answered_by_ms !== null && c.answered_by_ms !== undefined ? ` (after ${c.answered_by_ms} ms)` : ''}` : '—'],
      ['Recording', rec],
      c.referred_by ? ['Referred by', h('a', { href: `#/calls/${encodeURIComponent(c.referred_by)}` }, c.referred_by)] : null,
      c.asserted_identity ? ['Asserted identity', c.asserted_identity] : null,
    ].filter(Boolean)));
  }

  function showTimeline(c) {
    const evs = c.events || [];
    if (!evs.length) { fill(timeline, h('p', {}, 'No events for this call.')); return; }
    const t0 = Date.parse(c.created_at);
    fill(timeline, h('ol', { class: 'timeline' }, evs.map((e) => {
      const dt = Date.parse(e.at) - t0;
      return h('li', {},
        timeEl(e.at),
        Number.isNaN(dt) ? null : h('span', { class: 'muted offset' }, ` +${(dt / 1000).toFixed(3)} s`),
        ' ', h('strong', {}, e.kind), ' ', h('span', {}, e.detail));
    })));
  }

  async function showSip() {
    let data;
    try {
      data = await optional(path('/sip'));
    } catch (x) {
      if (alive) { fill(sip, h('p', {}, 'No SIP messages kept for this call.')); err.show(x); }
      return;
    }
    if (!alive) return;
    const msgs = (data && data.messages) || [];
    if (!msgs.length) { fill(sip, h('p', {}, 'No SIP messages kept for this call.')); return; }
    fill(sip,
      h('div', { class: 'ladder-wrap', tabindex: 0, role: 'region', 'aria-label': 'SIP ladder (scrolls)' }, ladder(msgs)),
      data.truncated ? h('p', { class: 'muted' }, 'Only the first messages of a long dialog are kept.') : null,
      h('div', { class: 'messages' }, msgs.map((m) => h('details', {},
        h('summary', {}, `+${m.offset_ms} ms ${m.direction === 'sent' ? '→' : '←'} ${m.label} `,
          h('span', { class: 'muted' }, `(${m.direction} ${m.direction === 'sent' ? 'to' : 'from'} ${m.peer} over ${m.transport}, CSeq ${m.cseq})`)),
        h('pre', {}, m.text)))));
  }

  async function showQuality() {
    let q;
    try {
      q = await optional(path('/quality'));
    } catch (x) {
      if (alive) { fill(quality, h('p', {}, 'No quality figures for this call.')); err.show(x); }
      return;
    }
    if (!alive) return;
    if (!q || !q.samples || !q.samples.length) { fill(quality, h('p', {}, 'No quality figures for this call.')); return; }
    const s = q.summary || {};
    const i = s.inbound || {};
    const o = s.outbound || {};
    const u = (v, unit) => (v === null || v === undefined ? '—' : `${fmt(v)}${unit}`);
    fill(quality,
      h('p', {}, `Codec ${dash(q.codec)}, a sample every ${q.interval_ms} ms, ${q.samples.length} samples.`),
      h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Quality summary' },
        h('table', { class: 'summary' },
          h('caption', {}, 'Summary'),
          h('thead', {}, h('tr', {}, ['Direction', 'Loss', 'Jitter max', 'Round trip max', 'MOS min', 'MOS average'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {},
            h('tr', {}, h('th', { scope: 'row' }, 'inbound'), h('td', { class: 'num' }, u(i.loss_pct, ' %')), h('td', { class: 'num' }, u(i.jitter_ms_max, ' ms')),
              h('td', { class: 'num' }, u(i.rtt_ms_max, ' ms')), h('td', { class: 'num' }, u(i.mos_min, '')), h('td', { class: 'num' }, u(i.mos_avg, ''))),
            h('tr', {}, h('th', { scope: 'row' }, 'outbound'), h('td', { class: 'num' }, u(o.loss_pct, ' %')), h('td', { class: 'num' }, u(o.jitter_ms_max, ' ms')),
              h('td', { class: 'num' }, u(o.rtt_ms_max, ' ms')), h('td', { class: 'num' }, u(o.mos_min, '')), h('td', { class: 'num' }, u(o.mos_avg, '')))))),
      h('p', { class: 'muted' }, 'Inbound: what dialtone received. Outbound: what the peer received of dialtone’s audio, from its RTCP reports',
        o.mos_avg === null || o.mos_avg === undefined ? ' (it sent none).' : '.'),
      qualityCharts(q));
  }

  async function showRecording(c) {
    const r = c.recording;
    if (!r) { fill(recording, h('p', {}, c.record ? 'No recording kept for this call yet.' : 'No recording for this call.')); return; }
    if (r.state === 'recording') { fill(recording, h('p', {}, 'Recording now; it can be played once it is finished.')); return; }
    if (r.state === 'failed') { fill(recording, h('p', {}, 'The recording failed.')); return; }
    if (!can('calls:recording')) { fill(recording, h('p', {}, 'You may not play recordings (calls:recording).')); return; }
    fill(recording, h('p', { class: 'muted' }, 'Fetching the recording…'));
    let buf;
    let type;
    try {
      const res = await raw(path('/recording'));
      if (!res.ok) {
        let msg = `The server answered ${res.status}`;
        try { const b = await res.json(); msg = (b.error && b.error.message) || msg; } catch { /* not JSON */ }
        throw new Error(msg);
      }
      type = res.headers.get('Content-Type') || 'audio/wav';
      buf = await res.arrayBuffer();
    } catch (x) {
      if (alive) { fill(recording, h('p', {}, 'The recording could not be fetched.')); err.show(x); }
      return;
    }
    if (!alive) return;
    const url = URL.createObjectURL(new Blob([buf], { type }));
    stops.push(() => URL.revokeObjectURL(url));
    const audio = h('audio', { controls: true, preload: 'metadata', src: url, 'aria-label': 'Recording' });
    const canvas = h('canvas', { 'aria-label': 'Waveform', role: 'img', tabindex: 0, class: 'wave', 'aria-describedby': 'wave-help' });
    const help = h('p', { id: 'wave-help', class: 'help' }, 'Top: the caller (left channel); bottom: dialtone (right channel). Click the waveform (or use ← →) to seek.');
    const download = h('a', { href: url, download: `${id}.wav`, class: 'button' }, 'Download recording');
    fill(recording, audio, canvas, help, h('p', {}, download, h('span', { class: 'muted' }, ` ${(buf.byteLength / 1024).toFixed(0)} KiB`)));
    try {
      const wav = decodeWav(buf);
      help.textContent = `${help.textContent} ${secs(wav.frames / wav.rate)}, ${wav.rate} Hz, ${wav.channels} channel${wav.channels === 1 ? '' : 's'}.`;
      stops.push(waveform(canvas, audio, wav));
    } catch (x) {
      canvas.remove();
      help.textContent = `The waveform cannot be drawn: ${x.message}.`;
    }
  }

  function showAgent(c) {
    const t = c.turns;
    if (!t || typeof t !== 'object') { fill(agent, h('p', {}, 'No agent on this call.')); return; }
    const s = t.summary || {};
    const lat = s.response_latency_ms || {};
    const ms = (v) => (v === null || v === undefined ? '—' : `${v} ms`);
    const parts = [dl([
      ['Turns', dash(s.turns)],
      ['Answered', dash(s.answered)],
      ['Response latency p50', ms(lat.p50)],
      ['Response latency p95', ms(lat.p95)],
      ['Response latency max', ms(lat.max)],
      ['Barge-ins', dash(s.barge_ins)],
      ['Barge-ins stopped', dash(s.barge_ins_stopped)],
      ['Barge-ins cleared', dash(s.barge_ins_cleared)],
      ['Talk-over', ms(s.talk_over_ms)],
    ], 'facts figures')];
    const po = t.playout && t.playout.summary;
    if (po) {
      parts.push(h('h3', {}, 'Playout'), dl([
        ['Segments', dash(po.segments)], ['Gaps', dash(po.gaps)], ['Gap time', ms(po.gap_ms)], ['Longest gap', ms(po.max_gap_ms)],
        ['Agent gaps', dash(po.agent_gaps)], ['dialtone gaps', dash(po.dialtone_gaps)], ['Bursts', dash(po.bursts)],
        ['Most queued', ms(po.max_queued_ms)], ['Late starts', dash(po.late_starts)], ['Longest start delay', ms(po.max_start_delay_ms)],
      ], 'facts figures'));
    }
    const turns = t.turns || [];
    if (turns.length) {
      parts.push(h('h3', {}, 'Turns'), h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Turns' },
        h('table', {}, h('thead', {}, h('tr', {}, ['#', 'Caller start', 'Caller end', 'Agent start', 'Latency'].map((x) => h('th', { scope: 'col', class: 'num' }, x)))),
          h('tbody', {}, turns.map((r, n) => h('tr', {},
            h('td', { class: 'num' }, n + 1), h('td', { class: 'num' }, ms(r.caller_start_ms)), h('td', { class: 'num' }, ms(r.caller_end_ms)),
            h('td', { class: 'num' }, ms(r.agent_start_ms)), h('td', { class: 'num' }, ms(r.latency_ms))))))));
    }
    const barge = t.barge_ins || [];
    if (barge.length) {
      parts.push(h('h3', {}, 'Barge-ins'), h('ul', {}, barge.map((b) =>
        h('li', {}, `at ${ms(b.at_ms)}: agent stopped after ${ms(b.time_to_stop_ms)}${b.cleared ? ', queue cleared' : ''}`))));
    }
    fill(agent, parts);
  }

  return () => {
    alive = false;
    for (const s of stops) { try { s(); } catch { /* already gone */ } }
  };
}
