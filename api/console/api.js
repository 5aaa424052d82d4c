// The console's plumbing: the session (JWT in sessionStorage, never in a URL), API requests
// with the Authorization header, a small DOM builder, dialogs and formatting helpers.

const KEY = 'dialtone.jwt';
const ENDED = 'Your session has ended. Sign in again.';

let expiryTimer = null;
let onSignOut = () => {};

/** Registers what to do when the session ends (the app shows the sign-in page). */
export function setSignOutHandler(fn) { onSignOut = fn; }

/** The JWT's claims (the middle part, base64url JSON), or null. */
function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const text = atob(part + '='.repeat((4 - (part.length % 4)) % 4));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

/** The stored session `{token, exp, claims, email}`, or null when none or expired. */
export function session() {
  const stored = sessionStorage.getItem(KEY);
  let s;
  try { s = JSON.parse(stored || 'null'); } catch { s = null; }
  // A bare JWT (three dot-separated parts) is taken too, its expiry read from its claims.
  if (!s && stored && /^[\w-]+\.[\w-]+\.[\w-]*$/.test(stored)) s = { token: stored, exp: (claimsOf(stored) || {}).exp || null };
  if (!s || typeof s.token !== 'string') return null;
  if (s.exp && s.exp * 1000 <= Date.now()) return null;
  return { ...s, claims: claimsOf(s.token) || {} };
}

/** Whether a stored token has expired (it is then forgotten). */
export function storedExpired() {
  if (sessionStorage.getItem(KEY) && !session()) {
    sessionStorage.removeItem(KEY);
    return true;
  }
  return false;
}

/** Keeps a new token (with its expiry) and arms the expiry timer. */
export function signIn(token, email) {
  const claims = claimsOf(token) || {};
  sessionStorage.setItem(KEY, JSON.stringify({ token, exp: claims.exp || null, email }));
  armExpiry();
}

/** Forgets the token; `expired` shows the "session has ended" message on the sign-in page. */
export function signOut(expired) {
  sessionStorage.removeItem(KEY);
  if (expiryTimer) clearTimeout(expiryTimer);
  expiryTimer = null;
  onSignOut(expired ? ENDED : '');
}

/** Signs out when the stored token's expiry passes. */
export function armExpiry() {
  if (expiryTimer) clearTimeout(expiryTimer);
  const s = session();
  if (!s || !s.exp) return;
  // setTimeout takes at most ~24.8 days; JWTs here last a day.
  const ms = Math.min(s.exp * 1000 - Date.now(), 2 ** 31 - 1);
  expiryTimer = setTimeout(() => signOut(true), Math.max(ms, 0));
}

/** Whether the signed-in user holds a permission (`calls:read` or `calls.read`). */
export function can(perm) {
  const s = session();
  const perms = (s && s.claims.perms) || (s && s.claims.permissions) || [];
  const want = perm.replace('.', ':');
  return perms.some((p) => String(p).replace('.', ':') === want);
}

/** An API error: the envelope's message, the HTTP status. */
export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A fetch with the JWT; a 401 ends the session. Returns the Response. */
export async function raw(path, opts = {}) {
  const s = session();
  if (!s) {
    signOut(true);
    throw new ApiError(ENDED, 401, 'unauthorized');
  }
  const headers = new Headers(opts.headers || {});
  headers.set('Authorization', `Bearer ${s.token}`);
  if (opts.body !== undefined && typeof opts.body === 'string') headers.set('Content-Type', 'application/json');
  const res = await fetch(path, { ...opts, headers, cache: 'no-store' });
  if (res.status === 401) {
    signOut(true);
    throw new ApiError(ENDED, 401, 'unauthorized');
  }
  return res;
}

/** Reads the envelope of an answer: its `data`, or throws ApiError with `error.message`. */
export async function envelope(res) {
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  if (!res.ok || !body || body.success === false) {
    const err = body && body.error;
    const msg = (err && err.message) || `The server answered ${res.status} ${res.statusText}`.trim();
    throw new ApiError(msg, res.status, err && err.code);
  }
  return body.data;
}

/** A JSON API call: `api('GET', '/api/calls/list?…')`, `api('POST', path, body)`. */
export async function api(method, path, body) {
  const opts = { method };
  if (body !== undefined) opts.body = JSON.stringify(body);
  return envelope(await raw(path, opts));
}

/** The login (no token yet): `{token, user}` or throws ApiError. */
export async function login(email, password) {
  const res = await fetch('/api/v1/auth/user-login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
    cache: 'no-store',
  });
  return envelope(res);
}

// ---- DOM ----

/**
 * Builds an element: `h('button', {type: 'button', onclick: fn}, 'Text')`. Attributes named
 * `on…` become listeners, `class` the class, `for` the label's target, booleans toggle.
 */
export function h(tag, attrs, ...children) {
  const svg = SVG_TAGS.has(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (!svg && (k === 'value' || k === 'checked' || k === 'textContent')) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

const SVG_TAGS = new Set(['svg', 'g', 'line', 'path', 'polyline', 'text', 'rect', 'circle', 'title', 'defs', 'marker', 'polygon']);

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An alert box (role=alert) that shows an error's message, or hides when empty. */
export function alertBox() {
  const box = h('div', { role: 'alert', class: 'alert', hidden: true });
  box.show = (err) => {
    const msg = err ? (err.message || String(err)) : '';
    box.textContent = msg;
    box.hidden = !msg;
  };
  return box;
}

/** A status line (role=status) for quiet notes ("Sent.", "Reconnecting…"). */
export function statusLine() {
  return h('p', { role: 'status', class: 'status' });
}

/** A table with a header row, inside its own horizontally scrolling container. */
export function table(caption, columns, rows) {
  return h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption },
    h('table', {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows)));
}

// ---- Dialogs ----

/**
 * Opens the page's own `<dialog>`: a title, optional text, optional fields
 * (`[{label, name, type, required, placeholder}]`), "Cancel" and a confirming button.
 * Resolves to the fields' values (an object; `{}` without fields) or null when cancelled.
 * `onConfirm(values)` may be given: it runs before closing; a thrown error shows in the
 * dialog and keeps it open.
 */
export function ask({ title, text, fields = [], confirm, danger = false, onConfirm }) {
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const err = alertBox();
    const inputs = fields.map((f, i) => {
      const id = `dlg-${f.name}-${i}`;
      return { f, id, input: h('input', { id, name: f.name, type: f.type || 'text', required: f.required !== false, placeholder: f.placeholder, autocomplete: 'off', inputmode: f.inputmode, pattern: f.pattern }) };
    });
    const ok = h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, confirm);
    const cancel = h('button', { type: 'button' }, 'Cancel');
    const form = h('form', { method: 'dialog', novalidate: false },
      h('h2', { id: 'dlg-title' }, title),
      text ? h('p', {}, text) : null,
      inputs.map(({ f, id, input }) => h('div', { class: 'field' }, h('label', { for: id }, f.label), input)),
      err,
      h('div', { class: 'actions' }, cancel, ok));
    const dlg = h('dialog', { 'aria-labelledby': 'dlg-title' }, form);
    let settled = false;
    const finish = (value) => {
      if (settled) return;
      settled = true;
      dlg.close();
      dlg.remove();
      // Focus goes back where it was (if that is still on the page).
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(value);
    };
    cancel.addEventListener('click', () => finish(null));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); finish(null); });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      const values = Object.fromEntries(inputs.map(({ f, input }) => [f.name, input.value.trim()]));
      if (onConfirm) {
        ok.disabled = true;
        try {
          await onConfirm(values);
        } catch (x) {
          ok.disabled = false;
          err.show(x);
          return;
        }
      }
      finish(values);
    });
    document.body.append(dlg);
    dlg.showModal();
    (inputs[0] ? inputs[0].input : cancel).focus();
  });
}

// ---- Formatting ----

/** A date-time as local "2026-12-04 19:00:05", or "—". */
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A `<time>` element for an ISO date-time. */
export function timeEl(iso) {
  return iso ? h('time', { datetime: iso }, when(iso)) : '—';
}

/** Seconds as "m:ss" or "h:mm:ss"; null as "—". */
export function secs(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '—';
  const t = Math.max(0, Math.floor(s));
  const hh = Math.floor(t / 3600);
  const mm = Math.floor((t % 3600) / 60);
  const ss = String(t % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** A value or "—". */
export function dash(v) {
  return v === null || v === undefined || v === '' ? '—' : String(v);
}
