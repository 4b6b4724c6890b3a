// Settings: this key and the account's usage this minute, and the account's API keys (list,
// create with scopes — the secret shown once — and revoke).

import { del, get, post, seg } from './api.js';
import { append, clear, confirmButton, facts, h, num, table, when } from './dom.js';

const SCOPES = [
  ['read', 'read: see datasets, models, logs'],
  ['write', 'write: upload, build, deploy, delete'],
  ['predict', 'predict: call models'],
  ['admin', 'admin: manage keys (implies all)'],
];

function usage(me) {
  const r = me.rate_limit;
  const section = h('section', { class: 'card', 'aria-labelledby': 'usage-h' }, h('h2', { id: 'usage-h' }, 'Usage this minute'));
  if (!r) {
    section.append(h('p', null, 'This server reports no request rate for this key.'));
    return section;
  }
  const reset = Math.max(0, Math.round(r.reset - Date.now() / 1000));
  if (r.limit === null || r.limit === undefined) {
    section.append(h('p', { id: 'usage-text' }, `Tier ${me.tier}: unlimited requests per ${r.window_seconds} s window.`));
    return section;
  }
  const used = r.limit - (r.remaining ?? 0);
  append(section, [
    h('p', { id: 'usage-text' }, `${num(used)} of ${num(r.limit)} requests used in this ${r.window_seconds} s window (tier ${me.tier}); the window resets in ${reset} s.`),
    h('meter', { min: 0, max: r.limit, value: used, high: r.limit * 0.8, optimum: 0, 'aria-labelledby': 'usage-text' }),
  ]);
  return section;
}

function created(key, done) {
  const secret = h('code', { id: 'new-key-secret', class: 'secret' }, key.api_key);
  const copied = h('span', { role: 'status' });
  const copy = h('button', {
    type: 'button',
    id: 'copy-key',
    on: {
      click: async () => {
        try {
          await navigator.clipboard.writeText(key.api_key);
          copied.textContent = 'Copied.';
        } catch {
          const range = document.createRange();
          range.selectNodeContents(secret);
          const sel = getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
          copied.textContent = 'Copying is not allowed here: the key is selected, copy it with the keyboard.';
        }
      },
    },
  }, 'Copy the key');
  const box = h('div', { class: 'card secret-box', role: 'region', 'aria-labelledby': 'new-key-h', tabindex: -1 },
    h('h3', { id: 'new-key-h' }, `Key “${key.name}” created`),
    h('p', null, 'Copy it now: it is shown this once and never again.'),
    h('p', null, secret),
    h('p', null, copy, ' ', copied),
    h('button', { type: 'button', on: { click: done } }, 'Done, hide it'));
  return box;
}

async function keys(ctx) {
  const section = h('section', { 'aria-labelledby': 'keys-h' }, h('h2', { id: 'keys-h' }, 'API keys'));
  if (!ctx.can('admin')) {
    section.append(ctx.gate(h('button', { type: 'button' }, 'Manage API keys'), 'admin'));
    return section;
  }
  const listBox = h('div');
  const status = h('div', { 'aria-live': 'polite' });
  const reveal = h('div');
  async function load() {
    const { api_keys: list, pagination } = await get('/api-keys?limit=100', { signal: ctx.signal });
    clear(listBox).append(table('API keys', ['Name', 'Id', 'Scopes', 'Created', 'State', h('span', { class: 'visually-hidden' }, 'Action')], list.map((k) => [
      k.name,
      h('code', null, k.key_id),
      k.scopes.join(', '),
      when(k.created_at),
      k.revoked ? `revoked ${when(k.revoked_at)}` : 'active',
      k.revoked || k.key_id === ctx.me.key_id ? (k.key_id === ctx.me.key_id ? 'this key' : '') : confirmButton(`Revoke ${k.name}`, `Revoke ${k.name} for good`, async () => {
        clear(status);
        try {
          await del(`/api-keys/${seg(k.key_id)}`);
          status.append(h('p', { role: 'status' }, `Revoked ${k.name} (${k.key_id}); it is refused from now on.`));
          await load();
        } catch (e) {
          status.append(ctx.error(e));
        }
      }),
    ]), { rowHeaders: true }));
    if (pagination.has_more) listBox.append(h('p', { class: 'help' }, `Showing ${list.length} of ${num(pagination.total)}.`));
  }
  const name = h('input', { id: 'key-name', type: 'text', required: true, maxlength: 100, autocomplete: 'off' });
  const boxes = SCOPES.map(([scope, words]) => h('li', null, h('input', { type: 'checkbox', id: `scope-${scope}`, value: scope, checked: scope === 'read' }), ' ', h('label', { for: `scope-${scope}` }, words)));
  const form = h('form', {
    class: 'card',
    novalidate: true,
    on: {
      async submit(ev) {
        ev.preventDefault();
        clear(status);
        const scopes = SCOPES.map(([s]) => s).filter((s) => document.getElementById(`scope-${s}`).checked);
        try {
          const key = await post('/api-keys', { name: name.value.trim(), scopes });
          name.value = '';
          const box = created(key, () => {
            clear(reveal);
            name.focus();
          });
          clear(reveal).append(box);
          box.focus();
          await load();
        } catch (e) {
          status.append(ctx.error(e));
        }
      },
    },
  },
  h('h3', null, 'Create a key'),
  h('div', { class: 'field' }, h('label', { for: 'key-name' }, 'Name'), name),
  h('fieldset', null, h('legend', null, 'Scopes'), h('ul', { class: 'plain' }, boxes)),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create the key')));
  append(section, [status, reveal, listBox, form]);
  await load();
  return section;
}

export async function page(ctx) {
  const { main } = ctx;
  main.append(h('h1', null, 'Settings'));
  const me = await ctx.refreshMe();
  append(main, [
    h('section', { class: 'card', 'aria-labelledby': 'me-h' }, h('h2', { id: 'me-h' }, 'This key'), facts([
      ['Name', me.key_name],
      ['Id', h('code', null, me.key_id)],
      ['Scopes', me.scopes.join(', ')],
      ['Account', `${me.account_name} (${me.account_id})`],
      ['Tier', me.tier],
    ])),
    usage(me),
  ]);
  main.append(await keys(ctx));
}
