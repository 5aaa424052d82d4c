// "Live calls": the calls not ended, kept up to date from GET /api/calls/events (server-sent
// events read with fetch and a stream reader, because EventSource cannot send the
// Authorization header), with the row actions behind the page's own dialogs.

import { raw, api, envelope, can, h, fill, alertBox, statusLine, ask, secs } from './api.js';

const ENDED = new Set(['completed', 'busy', 'no-answer', 'failed', 'canceled']);
const COLUMNS = ['ID', 'From', 'To', 'Direction', 'State', 'Duration'];

/** The caller and the callee as a person reads them, whichever way the call went. */
export function parties(c) {
  return c.direction === 'inbound'
    ? { from: c.phone_number || c.contact_id || '—', to: c.from_number || '—' }
    : { from: c.from_number || 'dialtone', to: c.phone_number || '—' };
}

/** Seconds the live call has run: talk time once answered, else since it was created. */
function elapsed(c) {
  const start = Date.parse(c.answered_at || c.created_at);
  return Number.isNaN(start) ? null : (Date.now() - start) / 1000;
}

export function livePage(main) {
  const err = alertBox();
  const note = statusLine();
  const conn = h('p', { class: 'conn muted', 'aria-live': 'polite' }, 'Connecting…');
  const writeActions = can('calls:hangup') || can('calls:hold') || can('calls:write') || can('calls:transfer');
  const tbody = h('tbody', {});
  const empty = h('p', { class: 'empty', hidden: true }, 'No calls right now.');
  main.append(
    h('h1', { tabindex: -1 }, 'Live calls'), err, conn, note,
    h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Live calls' },
      h('table', { class: 'live' },
        h('caption', { class: 'visually-hidden' }, 'Calls not ended'),
        h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col' }, c)), writeActions ? h('th', { scope: 'col' }, 'Actions') : null)),
        tbody)),
    empty);

  const calls = new Map(); // id → call JSON
  const rows = new Map(); // id → {tr, cells, actionsKey}
  const held = new Map(); // id → on hold (as far as this page asked)
  let alive = true;
  let ctrl = null;
  let retryMs = 1000;
  let retryTimer = null;
  let seen = false;

  if (!can('calls:live')) {
    conn.textContent = 'You may not watch live calls (calls:live).';
    return () => {};
  }

  function isHeld(c) {
    if (typeof c.held === 'boolean') return c.held;
    if (typeof c.on_hold === 'boolean') return c.on_hold;
    return held.get(c.id) === true;
  }

  function render() {
    for (const [id, row] of rows) {
      if (!calls.has(id)) { row.tr.remove(); rows.delete(id); held.delete(id); }
    }
    const sorted = [...calls.values()].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    sorted.forEach((c, i) => {
      let row = rows.get(c.id);
      if (!row) {
        const cells = COLUMNS.map(() => h('td', {}));
        cells[0].className = 'id';
        cells[5].className = 'num';
        const act = writeActions ? h('td', { class: 'row-actions' }) : null;
        row = { tr: h('tr', { 'data-call-id': c.id }, cells, act), cells, act, actionsKey: '' };
        rows.set(c.id, row);
      }
      if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
      const p = parties(c);
      const texts = [null, p.from, p.to, c.direction, c.status, secs(elapsed(c))];
      if (!row.cells[0].firstChild) fill(row.cells[0], h('a', { href: `#/calls/${encodeURIComponent(c.id)}` }, c.id));
      for (let k = 1; k < texts.length; k++) {
        if (row.cells[k].textContent !== texts[k]) row.cells[k].textContent = texts[k];
      }
      if (row.act) {
        const key = `${c.status}|${isHeld(c)}`;
        if (key !== row.actionsKey) {
          row.actionsKey = key;
          fill(row.act, actions(c));
        }
      }
    });
    empty.hidden = calls.size > 0 || !seen;
  }

  function actions(c) {
    const talking = c.status === 'in-progress';
    const out = [];
    if (can('calls:hangup')) out.push(h('button', { type: 'button', class: 'danger', onclick: () => hangup(c.id) }, 'Hang up'));
    if (talking && can('calls:hold')) {
      out.push(isHeld(c)
        ? h('button', { type: 'button', onclick: () => hold(c.id, false) }, 'Unhold')
        : h('button', { type: 'button', onclick: () => hold(c.id, true) }, 'Hold'));
    }
    if (talking && can('calls:write')) out.push(h('button', { type: 'button', onclick: () => dtmf(c.id) }, 'DTMF'));
    if (talking && can('calls:transfer')) out.push(h('button', { type: 'button', onclick: () => transfer(c.id) }, 'Transfer'));
    return out;
  }

  const path = (id, what) => `/api/calls/${encodeURIComponent(id)}/${what}`;

  async function hangup(id) {
    const ok = await ask({
      title: 'Hang up this call?', text: `Call ${id} ends for everyone on it.`, confirm: 'Hang up call', danger: true,
      onConfirm: () => api('POST', path(id, 'hangup')),
    });
    if (ok && alive) note.textContent = `Hang-up sent for ${id}.`;
  }

  async function hold(id, on) {
    err.show(null);
    try {
      await api('POST', path(id, on ? 'hold' : 'unhold'));
      held.set(id, on);
      if (alive) { note.textContent = on ? `Call ${id} put on hold.` : `Call ${id} taken off hold.`; render(); }
      const row = rows.get(id);
      const next = row && row.act && [...row.act.querySelectorAll('button')].find((b) => b.textContent === (on ? 'Unhold' : 'Hold'));
      if (next) next.focus();
    } catch (x) {
      if (alive) err.show(x);
    }
  }

  async function dtmf(id) {
    const ok = await ask({
      title: 'Send DTMF', text: 'Digits 0–9, *, # and A–D, up to 32.', confirm: 'Send digits',
      fields: [{ label: 'Digits', name: 'digits', pattern: '[0-9*#A-Da-d]{1,32}', inputmode: 'tel' }],
      onConfirm: (v) => api('POST', path(id, 'dtmf'), { digits: v.digits.toUpperCase() }),
    });
    if (ok && alive) note.textContent = `Digits ${ok.digits.toUpperCase()} sent to ${id}.`;
  }

  async function transfer(id) {
    const ok = await ask({
      title: 'Transfer this call', text: 'A SIP URI (sip:desk@pbx.example) or an E.164 number (+14155550199).', confirm: 'Transfer call',
      fields: [{ label: 'Transfer to', name: 'destination' }],
      onConfirm: (v) => api('POST', path(id, 'transfer'), { destination: v.destination }),
    });
    if (ok && alive) note.textContent = `Transfer of ${id} to ${ok.destination} asked.`;
  }

  function replaceAll(list) {
    calls.clear();
    for (const c of list || []) if (!ENDED.has(c.status)) calls.set(c.id, c);
    seen = true;
    render();
  }

  async function resync() {
    try {
      const data = await api('GET', '/api/calls/live');
      if (alive) replaceAll(data.calls);
    } catch (x) {
      if (alive) err.show(x);
    }
  }

  function onEvent(name, data) {
    let v;
    try { v = JSON.parse(data); } catch { return; }
    if (name === 'snapshot') {
      retryMs = 1000;
      replaceAll(v.calls);
    } else if (name === 'call') {
      if (!v || !v.id) return;
      if (ENDED.has(v.status)) calls.delete(v.id);
      else calls.set(v.id, { ...(calls.get(v.id) || {}), ...v });
      render();
    } else if (name === 'resync') {
      resync();
    }
  }

  async function connect() {
    if (!alive) return;
    ctrl = new AbortController();
    conn.textContent = 'Connecting…';
    try {
      const res = await raw('/api/calls/events', { signal: ctrl.signal, headers: { Accept: 'text/event-stream' } });
      if (!res.ok) await envelope(res); // throws with the API's message
      conn.textContent = 'Live: updates as calls change.';
      err.show(null);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let name = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (!line || line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') name = val;
            else if (field === 'data') data.push(val);
          }
          if (data.length) onEvent(name, data.join('\n'));
        }
      }
      throw new Error('The live feed closed.');
    } catch (x) {
      if (!alive || (x && x.name === 'AbortError') || (x && x.status === 401)) return;
      if (x && x.status && x.status !== 429 && x.status < 500) { err.show(x); conn.textContent = 'Not connected.'; return; }
      const wait = retryMs;
      retryMs = Math.min(retryMs * 2, 30000);
      conn.textContent = `Connection lost; reconnecting in ${Math.round(wait / 1000)} s…`;
      retryTimer = setTimeout(connect, wait);
    }
  }

  const tick = setInterval(() => {
    for (const [id, row] of rows) {
      const c = calls.get(id);
      if (c) row.cells[5].textContent = secs(elapsed(c));
    }
  }, 1000);

  connect();
  return () => {
    alive = false;
    clearInterval(tick);
    if (retryTimer) clearTimeout(retryTimer);
    if (ctrl) ctrl.abort();
  };
}
