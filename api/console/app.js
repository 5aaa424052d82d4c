// The dialtone console: hash routes, the shell (nav, sign out) and the smaller pages
// (sign in, API keys, webhooks, trunks). Live calls, the call log and the call detail are
// in their own modules.

import { session, storedExpired, signIn, signOut, setSignOutHandler, armExpiry, can, api, login, h, fill, alertBox, statusLine, table, ask, timeEl, dash } from './api.js';
import { livePage } from './live.js';
import { callLogPage } from './calllog.js';
import { callPage } from './detail.js';

const root = document.getElementById('app');
let cleanup = null;
let signInMessage = '';

const NAV = [
  ['#/live', 'Live calls'],
  ['#/calls', 'Call log'],
  ['#/keys', 'API keys'],
  ['#/webhooks', 'Webhooks'],
  ['#/trunks', 'Trunks'],
];

setSignOutHandler((message) => {
  signInMessage = message;
  if (location.hash !== '#/signin') location.hash = '#/signin';
  else route();
});

/** Renders the page the hash names. */
function route() {
  if (cleanup) {
    try { cleanup(); } catch { /* the old page is gone either way */ }
    cleanup = null;
  }
  const hash = location.hash || '';
  if (storedExpired()) signInMessage = 'Your session has ended. Sign in again.';
  if (!session()) {
    if (hash !== '#/signin') {
      history.replaceState(null, '', '#/signin');
    }
    signInPage();
    return;
  }
  if (hash === '#/signin' || hash === '' || hash === '#' || hash === '#/') {
    location.replace('#/live');
    return;
  }
  const main = shell(hash);
  let m;
  if (hash === '#/live') cleanup = livePage(main);
  else if (hash === '#/calls' || hash.startsWith('#/calls?')) cleanup = callLogPage(main);
  else if ((m = hash.match(/^#\/calls\/([^/?#]+)$/))) cleanup = callPage(main, decodeURIComponent(m[1]));
  else if (hash === '#/keys') cleanup = keysPage(main);
  else if (hash === '#/webhooks') cleanup = webhooksPage(main);
  else if (hash === '#/trunks') cleanup = trunksPage(main);
  else {
    main.append(h('h1', { tabindex: -1 }, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/live' }, 'Live calls')));
  }
  const h1 = main.querySelector('h1');
  if (h1 && document.activeElement === document.body) h1.focus({ preventScroll: true });
}

/** The signed-in frame: a skip link, the nav with "Sign out", and the page's <main>. */
function shell(hash) {
  const s = session();
  const current = hash.startsWith('#/calls/') ? '#/calls' : hash.split('?')[0];
  const nav = h('nav', { 'aria-label': 'Console' },
    h('a', { class: 'brand', href: '#/live' }, 'dialtone'),
    h('ul', {}, NAV.map(([href, text]) =>
      h('li', {}, h('a', { href, 'aria-current': href === current ? 'page' : null }, text)))),
    h('div', { class: 'who' },
      s && s.email ? h('span', { class: 'email' }, s.email) : null,
      h('button', { type: 'button', onclick: () => signOut(false) }, 'Sign out')));
  const main = h('main', { id: 'main' });
  fill(root, h('header', { class: 'top' }, nav), main);
  return main;
}

// ---- Sign in ----

function signInPage() {
  const err = alertBox();
  const email = h('input', { id: 'signin-email', name: 'email', type: 'email', autocomplete: 'username', required: true });
  const password = h('input', { id: 'signin-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'card signin', novalidate: true },
    h('p', { class: 'brand-line' }, 'dialtone console'),
    h('h1', {}, 'Sign in'),
    err,
    h('div', { class: 'field' }, h('label', { for: 'signin-email' }, 'Email'), email),
    h('div', { class: 'field' }, h('label', { for: 'signin-password' }, 'Password'), password),
    h('div', { class: 'actions' }, button));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!email.value.trim() || !password.value) {
      err.show(new Error('Enter your email and password.'));
      return;
    }
    button.disabled = true;
    try {
      const data = await login(email.value.trim(), password.value);
      signInMessage = '';
      signIn(data.token, (data.user && data.user.email) || email.value.trim());
      location.hash = '#/live';
    } catch (x) {
      err.show(x);
      password.value = '';
      password.focus();
    } finally {
      button.disabled = false;
    }
  });
  fill(root, h('main', { id: 'main', class: 'signin-main' }, form));
  if (signInMessage) err.show(new Error(signInMessage));
  email.focus();
}

// ---- API keys ----

const PERMISSIONS = ['calls:read', 'calls:write', 'calls:hangup', 'calls:hold', 'calls:transfer', 'calls:recording',
  'calls:live', 'calls:originate_ai', 'calls:click_to_call', 'keys:read', 'keys:write', 'webhooks:read', 'webhooks:write',
  'users:read', 'users:write', 'orgs:read', 'orgs:write', 'sip_users:read', 'sip_users:write', 'trunks:read',
  'trunks:write', 'numbers:read', 'numbers:write', 'conferences:read', 'conferences:write'];

function keysPage(main) {
  const err = alertBox();
  const list = h('div', { class: 'list' });
  const fresh = h('div', {});
  let alive = true;
  main.append(h('h1', { tabindex: -1 }, 'API keys'), err);

  if (can('keys:write')) {
    const name = h('input', { id: 'key-name', name: 'name', type: 'text', required: true, maxlength: 128, autocomplete: 'off' });
    const boxes = PERMISSIONS.map((p) => {
      const id = `perm-${p.replace(/[^a-z_]/g, '-')}`;
      const held = can(p);
      return h('div', { class: 'check' },
        h('input', { id, type: 'checkbox', name: 'permissions', value: p, disabled: !held }),
        h('label', { for: id }, p));
    });
    const button = h('button', { type: 'submit', class: 'primary' }, 'Create key');
    const form = h('form', { class: 'card' },
      h('h2', {}, 'Create a key'),
      h('div', { class: 'field' }, h('label', { for: 'key-name' }, 'Name'), name),
      h('fieldset', {}, h('legend', {}, 'Permissions'), h('div', { class: 'checks' }, boxes)),
      h('div', { class: 'actions' }, button));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      err.show(null);
      if (!name.value.trim()) { err.show(new Error('Give the key a name.')); name.focus(); return; }
      const permissions = [...form.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.value);
      button.disabled = true;
      try {
        const key = await api('POST', '/api/api-keys', { name: name.value.trim(), permissions });
        if (!alive) return;
        showSecret(key);
        form.reset();
        load();
      } catch (x) {
        err.show(x);
      } finally {
        button.disabled = false;
      }
    });
    main.append(form);
  }
  main.append(fresh, h('h2', {}, 'Keys'), list);

  // The secret exists only in this closure and the panel: gone on reload or on leaving.
  function showSecret(key) {
    const out = h('output', { 'aria-label': 'Secret', class: 'secret' }, key.key);
    const note = statusLine();
    const copy = h('button', { type: 'button', onclick: async () => {
      try {
        await navigator.clipboard.writeText(key.key);
        note.textContent = 'Copied.';
      } catch {
        const r = document.createRange();
        r.selectNodeContents(out);
        const sel = getSelection();
        sel.removeAllRanges();
        sel.addRange(r);
        note.textContent = 'Select and copy the secret by hand (the clipboard is not available here).';
      }
    } }, 'Copy');
    const heading = h('h2', { tabindex: -1 }, 'New key');
    fill(fresh, h('section', { class: 'card new-secret', 'aria-labelledby': 'new-key-h' },
      Object.assign(heading, { id: 'new-key-h' }),
      h('p', {}, `Key “${key.name}” (${key.id}).`),
      h('div', { class: 'secret-row' }, out, copy),
      h('p', { class: 'warn' }, 'This secret is shown once.'),
      note));
    heading.focus();
  }

  async function load() {
    if (!can('keys:read')) {
      fill(list, h('p', {}, 'You may not list keys (keys:read).'));
      return;
    }
    try {
      const data = await api('GET', '/api/api-keys');
      if (!alive) return;
      const keys = data.keys || [];
      if (!keys.length) { fill(list, h('p', {}, 'No keys yet.')); return; }
      fill(list, table('API keys', ['Name', 'Prefix', 'Permissions', 'Created', 'Last used', 'Actions'], keys.map((k) =>
        h('tr', { dataset: { keyId: k.id } },
          h('td', {}, k.name),
          h('td', {}, h('code', {}, k.prefix || k.id)),
          h('td', { class: 'perms' }, (k.permissions || []).join(', ') || '—'),
          h('td', {}, timeEl(k.created_at)),
          h('td', {}, timeEl(k.last_used_at)),
          h('td', {}, k.revoked_at ? h('span', { class: 'muted' }, 'Revoked ', timeEl(k.revoked_at))
            : can('keys:write') ? h('button', { type: 'button', class: 'danger', onclick: () => revoke(k) }, 'Revoke') : '')))));
    } catch (x) {
      if (alive) err.show(x);
    }
  }

  async function revoke(k) {
    const ok = await ask({
      title: 'Revoke this key?', text: `“${k.name}” (${k.id}) stops working at once. This cannot be undone.`,
      confirm: 'Revoke key', danger: true,
      onConfirm: () => api('DELETE', `/api/api-keys/${encodeURIComponent(k.id)}`),
    });
    if (ok && alive) load();
  }

  load();
  return () => { alive = false; fill(fresh); };
}

// ---- Webhooks ----

function webhooksPage(main) {
  const err = alertBox();
  const list = h('div', {});
  const deliveries = h('section', { 'aria-live': 'polite' });
  const fresh = h('div', {});
  let alive = true;
  main.append(h('h1', { tabindex: -1 }, 'Webhooks'), err);

  if (can('webhooks:write')) {
    const url = h('input', { id: 'wh-url', name: 'url', type: 'url', required: true, placeholder: 'https://example.com/hooks/dialtone', autocomplete: 'off' });
    const events = h('input', { id: 'wh-events', name: 'events', type: 'text', placeholder: 'call.completed, recording.ready', 'aria-describedby': 'wh-events-help', autocomplete: 'off' });
    const button = h('button', { type: 'submit', class: 'primary' }, 'Add webhook');
    const form = h('form', { class: 'card' },
      h('h2', {}, 'Add a webhook'),
      h('div', { class: 'field' }, h('label', { for: 'wh-url' }, 'URL'), url),
      h('div', { class: 'field' }, h('label', { for: 'wh-events' }, 'Events'), events,
        h('p', { id: 'wh-events-help', class: 'help' }, 'Comma separated; empty: every event.')),
      h('div', { class: 'actions' }, button));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      err.show(null);
      const body = { url: url.value.trim() };
      const evs = events.value.split(',').map((s) => s.trim()).filter(Boolean);
      if (evs.length) body.events = evs;
      button.disabled = true;
      try {
        const wh = await api('POST', '/api/webhooks', body);
        if (!alive) return;
        fill(fresh, h('section', { class: 'card new-secret' },
          h('h2', {}, 'New webhook'),
          h('p', {}, `Signing secret for ${wh.url}:`),
          h('div', { class: 'secret-row' }, h('output', { 'aria-label': 'Webhook secret', class: 'secret' }, wh.secret)),
          h('p', { class: 'warn' }, 'This secret is shown once.')));
        form.reset();
        load();
      } catch (x) {
        err.show(x);
      } finally {
        button.disabled = false;
      }
    });
    main.append(form, fresh);
  }
  main.append(h('h2', {}, 'Endpoints'), list, deliveries);

  async function load() {
    try {
      const data = await api('GET', '/api/webhooks');
      if (!alive) return;
      const hooks = data.webhooks || [];
      if (!hooks.length) { fill(list, h('p', {}, 'No webhooks yet.')); return; }
      fill(list, table('Webhooks', ['URL', 'Events', 'Created', 'Actions'], hooks.map((w) =>
        h('tr', { dataset: { webhookId: w.id } },
          h('td', { class: 'url' }, w.url),
          h('td', {}, (w.events || []).length ? w.events.join(', ') : 'all events'),
          h('td', {}, timeEl(w.created_at)),
          h('td', { class: 'row-actions' },
            h('button', { type: 'button', onclick: () => showDeliveries(w) }, 'Deliveries'),
            can('webhooks:write') ? h('button', { type: 'button', class: 'danger', onclick: () => remove(w) }, 'Delete') : null)))));
    } catch (x) {
      if (alive) err.show(x);
    }
  }

  async function showDeliveries(w) {
    const heading = h('h2', { tabindex: -1 }, 'Deliveries');
    fill(deliveries, heading, h('p', { class: 'muted' }, `To ${w.url}`), h('p', {}, 'Loading…'));
    heading.focus();
    let rows;
    try {
      const data = await api('GET', `/api/webhooks/${encodeURIComponent(w.id)}/deliveries?limit=50`);
      rows = data.deliveries || [];
    } catch (x) {
      if (x.status === 404) rows = [];
      else { fill(deliveries, heading, h('p', { class: 'muted' }, `To ${w.url}`)); err.show(x); return; }
    }
    if (!alive) return;
    if (!rows.length) {
      fill(deliveries, heading, h('p', { class: 'muted' }, `To ${w.url}`), h('p', {}, 'No deliveries kept for this webhook.'));
      return;
    }
    fill(deliveries, heading, h('p', { class: 'muted' }, `To ${w.url}`),
      table('Deliveries', ['At', 'Event', 'Call', 'Attempt', 'Outcome', 'Status', 'Response/Error', 'Next retry'], rows.map((d) =>
        h('tr', {},
          h('td', {}, timeEl(d.at)),
          h('td', {}, d.event),
          h('td', {}, d.call_id ? h('a', { href: `#/calls/${encodeURIComponent(d.call_id)}` }, d.call_id) : '—'),
          h('td', { class: 'num' }, d.attempt),
          h('td', {}, h('span', { class: `badge ${d.outcome === 'delivered' ? 'ok' : d.outcome === 'failed' ? 'warn' : 'bad'}` }, d.outcome)),
          h('td', { class: 'num' }, dash(d.status_code)),
          h('td', { class: 'response' }, d.error ? h('span', { class: 'error-text' }, d.error) : d.response ? h('code', {}, d.response) : '—'),
          h('td', {}, timeEl(d.next_retry_at))))));
  }

  async function remove(w) {
    const ok = await ask({
      title: 'Delete this webhook?', text: `${w.url} gets no more events.`, confirm: 'Delete webhook', danger: true,
      onConfirm: () => api('DELETE', `/api/webhooks/${encodeURIComponent(w.id)}`),
    });
    if (ok && alive) { fill(deliveries); load(); }
  }

  if (can('webhooks:read')) load();
  else fill(list, h('p', {}, 'You may not list webhooks (webhooks:read).'));
  return () => { alive = false; };
}

// ---- Trunks and numbers ----

function yesNo(v) { return v === null || v === undefined ? '—' : v ? 'yes' : 'no'; }

function actionText(a) {
  if (!a) return '—';
  switch (a.type) {
    case 'agent': return `agent ${a.url}${a.format ? ` (${a.format})` : ''}`;
    case 'webhook': return `webhook ${a.url}`;
    case 'play': return `play ${a.prompt}`;
    case 'reject': return `reject ${a.status || 603}`;
    case 'forward': return `forward to ${a.to}`;
    default: return a.type || JSON.stringify(a);
  }
}

function trunksPage(main) {
  const err = alertBox();
  const trunks = h('div', {});
  const numbers = h('div', {});
  let alive = true;
  main.append(h('h1', { tabindex: -1 }, 'Trunks'), err, trunks, h('h2', {}, 'Numbers'), numbers);

  (async () => {
    if (!can('trunks:read')) { fill(trunks, h('p', {}, 'You may not list trunks (trunks:read).')); return; }
    try {
      const data = await api('GET', '/api/trunks');
      if (!alive) return;
      const list = data.trunks || [];
      if (!list.length) { fill(trunks, h('p', {}, 'No trunks.')); return; }
      fill(trunks, table('Trunks', ['Name', 'URI', 'Source', 'Up', 'Registered', 'Last OPTIONS', 'OPTIONS status', 'Round trip', 'Calls now'], list.map((t) => {
        const st = t.status || {};
        return h('tr', { dataset: { trunkId: t.id } },
          h('td', {}, t.name),
          h('td', { class: 'url' }, t.uri),
          h('td', {}, t.source === 'settings' ? 'settings (platform)' : dash(t.source)),
          h('td', {}, t.status ? h('span', { class: `badge ${st.up ? 'ok' : 'bad'}` }, st.up ? 'up' : 'down') : '—'),
          h('td', {}, st.registered === null || st.registered === undefined ? 'not registering' : yesNo(st.registered)),
          h('td', {}, st.last_options_at ? timeEl(st.last_options_at) : 'not probed'),
          h('td', { class: 'num' }, dash(st.last_options_status)),
          h('td', { class: 'num' }, st.options_rtt_ms === null || st.options_rtt_ms === undefined ? '—' : `${st.options_rtt_ms} ms`),
          h('td', { class: 'num' }, dash(st.calls)));
      })));
    } catch (x) {
      if (alive) err.show(x);
    }
  })();

  (async () => {
    if (!can('numbers:read')) { fill(numbers, h('p', {}, 'You may not list numbers (numbers:read).')); return; }
    try {
      const data = await api('GET', '/api/numbers');
      if (!alive) return;
      const list = data.numbers || [];
      if (!list.length) { fill(numbers, h('p', {}, 'No numbers.')); return; }
      fill(numbers, table('Numbers', ['Number', 'Action', 'Fallback', 'Record', 'Max duration', 'Created'], list.map((n) =>
        h('tr', { dataset: { numberId: n.id } },
          h('td', {}, h('code', {}, n.number)),
          h('td', { class: 'url' }, actionText(n.action)),
          h('td', { class: 'url' }, actionText(n.fallback)),
          h('td', {}, yesNo(n.record)),
          h('td', { class: 'num' }, n.max_duration ? `${n.max_duration} s` : '—'),
          h('td', {}, timeEl(n.created_at))))));
    } catch (x) {
      if (alive) err.show(x);
    }
  })();

  return () => { alive = false; };
}

// ---- Start ----

// The skip link moves the focus without touching the hash (the hash is the route).
document.addEventListener('click', (e) => {
  const skip = e.target instanceof Element && e.target.closest('a.skip');
  if (!skip) return;
  e.preventDefault();
  const main = document.getElementById('main');
  if (main) { main.setAttribute('tabindex', '-1'); main.focus(); }
});

window.addEventListener('hashchange', route);
armExpiry();
route();
