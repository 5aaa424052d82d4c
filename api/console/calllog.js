// "Call log": GET /api/calls/list with filters, paging, the total and a CSV export.

import { api, raw, can, h, fill, alertBox, statusLine, table, timeEl, secs } from './api.js';
import { parties } from './live.js';

const STATUSES = ['initiating', 'ringing', 'early-media', 'in-progress', 'completed', 'busy', 'no-answer', 'failed', 'canceled'];
const PAGE = 50;

// The filters and page survive a visit to a call's detail and back (in memory only).
let remembered = { number: '', status: '', direction: '', from: '', to: '', offset: 0 };

/** The day after a `YYYY-MM-DD` date (the API's `to` is exclusive; the form's is inclusive). */
function dayAfter(date) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

function query(f, extra) {
  const q = new URLSearchParams();
  if (f.number) q.set('number', f.number);
  if (f.status) q.set('status', f.status);
  if (f.direction) q.set('direction', f.direction);
  if (f.from) q.set('from', f.from);
  if (f.to) q.set('to', dayAfter(f.to));
  for (const [k, v] of Object.entries(extra)) q.set(k, String(v));
  return q.toString();
}

export function callLogPage(main) {
  const err = alertBox();
  const note = statusLine();
  let alive = true;
  let f = { ...remembered };

  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const number = h('input', { id: 'log-number', type: 'search', name: 'number', value: f.number, maxlength: 64, autocomplete: 'off' });
  const status = h('select', { id: 'log-status', name: 'status' },
    h('option', { value: '' }, 'any'), STATUSES.map((s) => h('option', { value: s }, s)));
  status.value = f.status;
  const direction = h('select', { id: 'log-direction', name: 'direction' },
    h('option', { value: '' }, 'any'), h('option', { value: 'inbound' }, 'inbound'), h('option', { value: 'outbound' }, 'outbound'));
  direction.value = f.direction;
  const from = h('input', { id: 'log-from', type: 'date', name: 'from', value: f.from });
  const to = h('input', { id: 'log-to', type: 'date', name: 'to', value: f.to });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter calls' },
    field('log-number', 'Number', number),
    field('log-status', 'Status', status),
    field('log-direction', 'Direction', direction),
    field('log-from', 'From date', from),
    field('log-to', 'To date', to),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Apply')));

  const total = h('p', { class: 'total', 'aria-live': 'polite' });
  const list = h('div', {});
  const prev = h('button', { type: 'button', onclick: () => page(-1) }, 'Previous');
  const next = h('button', { type: 'button', onclick: () => page(1) }, 'Next');
  const pos = h('span', { class: 'muted' });
  const exportBtn = h('button', { type: 'button', onclick: exportCsv }, 'Export CSV');

  main.append(h('h1', { tabindex: -1 }, 'Call log'), err, form,
    h('div', { class: 'toolbar' }, total, exportBtn), note, list,
    h('div', { class: 'pager' }, prev, pos, next));

  if (!can('calls:read')) {
    fill(list, h('p', {}, 'You may not read calls (calls:read).'));
    return () => {};
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    f = { number: number.value.trim(), status: status.value, direction: direction.value, from: from.value, to: to.value, offset: 0 };
    load();
  });

  function page(step) {
    f.offset = Math.max(0, f.offset + step * PAGE);
    load();
  }

  async function load() {
    remembered = { ...f };
    err.show(null);
    note.textContent = '';
    list.setAttribute('aria-busy', 'true');
    try {
      const data = await api('GET', `/api/calls/list?${query(f, { limit: PAGE, offset: f.offset })}`);
      if (!alive) return;
      const calls = data.calls || [];
      const n = data.total ?? calls.length;
      total.textContent = `${n} calls`;
      prev.disabled = f.offset === 0;
      next.disabled = f.offset + calls.length >= n;
      pos.textContent = calls.length ? `${f.offset + 1}–${f.offset + calls.length} of ${n}` : '';
      if (!calls.length) {
        fill(list, h('p', { class: 'empty' }, 'No calls match.'));
      } else {
        fill(list, table('Calls', ['ID', 'Created', 'From', 'To', 'Direction', 'Status', 'Duration'], calls.map((c) => {
          const p = parties(c);
          return h('tr', { 'data-call-id': c.id },
            h('td', { class: 'id' }, h('a', { href: `#/calls/${encodeURIComponent(c.id)}` }, c.id)),
            h('td', {}, timeEl(c.created_at)),
            h('td', {}, p.from),
            h('td', {}, p.to),
            h('td', {}, c.direction),
            h('td', {}, h('span', { class: `badge s-${c.status}` }, c.status)),
            h('td', { class: 'num' }, c.duration === null || c.duration === undefined ? '—' : secs(c.duration)));
        })));
      }
    } catch (x) {
      if (alive) err.show(x);
    } finally {
      list.removeAttribute('aria-busy');
    }
  }

  async function exportCsv() {
    err.show(null);
    exportBtn.disabled = true;
    try {
      // Every matching call (up to the API's 5000), not only this page.
      const res = await raw(`/api/calls/list?${query(f, { format: 'csv', limit: 5000, offset: 0 })}`);
      if (!res.ok) {
        let msg = `The server answered ${res.status}`;
        try { const b = await res.json(); msg = (b.error && b.error.message) || msg; } catch { /* not JSON */ }
        throw new Error(msg);
      }
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
      const a = h('a', { href: url, download: `dialtone-calls-${stamp}.csv`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      const count = res.headers.get('X-Total-Count');
      note.textContent = `CSV saved${count ? ` (${count} calls match)` : ''}.`;
    } catch (x) {
      if (alive) err.show(x);
    } finally {
      exportBtn.disabled = false;
    }
  }

  load();
  return () => { alive = false; };
}
