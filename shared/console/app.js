// The console's shell: sign-in, navigation, what the key's scopes allow, and a hash router
// (`#/datasets`, `#/models/titanic/v1.0`, …) so that every page has a URL and the server
// serves one page only.

import { ApiError, get, session } from './api.js';
import { append, clear, h, id } from './dom.js';
import * as datasets from './datasets.js';
import * as models from './models.js';
import * as model from './model.js';
import * as predict from './predict.js';
import * as settings from './settings.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

const SCOPE_WORDS = {
  read: 'see datasets and models',
  write: 'upload, build, deploy and delete',
  predict: 'call models for predictions',
  admin: 'manage API keys',
};

let me = null;
let leaving = [];
let navigated = false;
let renders = 0;

// [path, page, title, nav section, scope the page needs to show anything]
const routes = [
  [/^\/datasets$/, datasets.list, 'Datasets', 'datasets', 'read'],
  [/^\/datasets\/([^/]+)$/, datasets.detail, 'Dataset', 'datasets', 'read'],
  [/^\/models$/, models.list, 'Models', 'models', 'read'],
  [/^\/models\/new$/, models.create, 'New model', 'new', 'read'],
  [/^\/models\/([^/]+)$/, model.page, 'Model', 'models', 'read'],
  [/^\/models\/([^/]+)\/([^/]+)$/, model.page, 'Model', 'models', 'read'],
  [/^\/predict$/, predict.pick, 'Predict', 'predict', 'read'],
  [/^\/predict\/([^/]+)\/([^/]+)$/, predict.page, 'Predict', 'predict', 'read'],
  [/^\/settings$/, settings.page, 'Settings', 'settings', null],
];

const NAV = [
  ['datasets', '#/datasets', 'Datasets'],
  ['models', '#/models', 'Models'],
  ['new', '#/models/new', 'New model'],
  ['predict', '#/predict', 'Predict'],
  ['settings', '#/settings', 'Settings'],
];

function can(scope) {
  return !!me && (me.scopes.includes(scope) || me.scopes.includes('admin'));
}

function reason(scope) {
  return `Needs a key with the “${scope}” scope (to ${SCOPE_WORDS[scope]}); this key has: ${me.scopes.join(', ')}.`;
}

/** `control` as is when the key may use it, else disabled with the reason beside it. */
function gate(control, scope) {
  if (can(scope)) return control;
  if (control.tagName === 'A') control = h('button', { type: 'button', class: control.getAttribute('class') }, control.textContent);
  control.disabled = true;
  const why = id('why');
  control.setAttribute('aria-describedby', why);
  for (const input of control.querySelectorAll('input, select, textarea, button')) input.disabled = true;
  const note = h('p', { class: 'reason', id: why }, reason(scope));
  // A single control has its reason after it; a whole form or section, before it.
  const single = ['BUTTON', 'INPUT', 'SELECT', 'TEXTAREA'].includes(control.tagName);
  return h('div', { class: 'gated' }, single ? [control, note] : [note, control]);
}

/** An error answer, shown as its message (and its code and request id, for a bug report). */
function error(err) {
  if (!(err instanceof ApiError)) {
    err = new ApiError(0, null, err && err.message ? err.message : String(err));
  }
  return h('div', { class: 'error', role: 'alert' },
    h('p', null, err.message),
    err.requestId ? h('p', { class: 'small' }, `${err.code} · HTTP ${err.status} · request ${err.requestId}`) : null);
}

function leave() {
  for (const fn of leaving) fn();
  leaving = [];
}

function context(query) {
  const controller = new AbortController();
  leaving.push(() => controller.abort());
  return {
    main,
    me,
    query,
    can,
    gate,
    error,
    signal: controller.signal,
    /** Runs `fn` every `ms` until the page is left (or `fn` returns false). */
    every(fn, ms) {
      let timer = null;
      let stopped = false;
      const tick = async () => {
        if (stopped) return;
        let again = true;
        try {
          again = (await fn()) !== false;
        } catch (e) {
          if (e.name === 'AbortError') return;
          again = true;
        }
        if (again && !stopped) timer = setTimeout(tick, ms);
      };
      leaving.push(() => {
        stopped = true;
        clearTimeout(timer);
      });
      tick();
    },
    onLeave(fn) {
      leaving.push(fn);
    },
    /** Re-reads `/me` (scopes, rate limit). */
    async refreshMe() {
      me = await get('/me');
      this.me = me;
      return me;
    },
  };
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/datasets';
  const [path, search] = raw.split('?');
  return { path, query: new URLSearchParams(search || '') };
}

async function route() {
  if (location.hash === '#main') return;
  leave();
  if (!session.key()) {
    signIn();
    return;
  }
  if (!me) {
    try {
      me = await get('/me');
    } catch (e) {
      if (e.status === 401) return; // the unauthorized handler shows the sign-in form
      clear(main).append(h('h1', { tabindex: -1 }, 'Plexe Console'), error(e));
      return;
    }
    shell();
  }
  const { path, query } = parseHash();
  const found = routes.find(([re]) => re.test(path));
  clear(main);
  delete main.dataset.rendered;
  if (!found) {
    document.title = 'Not found · Plexe Console';
    append(main, [h('h1', { tabindex: -1 }, 'Nothing here'), h('p', null, 'This console has no such page. ', h('a', { href: '#/datasets' }, 'Go to the datasets'), '.')]);
    markNav(null);
    done();
    return;
  }
  const [re, render, title, section, needs] = found;
  const params = path.match(re).slice(1).map(decodeURIComponent);
  document.title = `${title} · Plexe Console`;
  markNav(section);
  if (needs && !can(needs)) {
    append(main, [h('h1', { tabindex: -1 }, title), h('p', { class: 'reason' }, `This page ${reason(needs).replace(/^Needs/, 'needs')}`)]);
    done();
    return;
  }
  main.setAttribute('aria-busy', 'true');
  renders += 1;
  const current = renders;
  try {
    await render(context(query), ...params);
  } catch (e) {
    if (e.name !== 'AbortError' && current === renders) {
      if (!main.querySelector('h1')) main.prepend(h('h1', null, title));
      main.append(error(e));
    }
  } finally {
    if (current === renders) main.removeAttribute('aria-busy');
  }
  if (current !== renders) return;
  const heading = main.querySelector('h1');
  if (heading && heading.textContent) document.title = `${heading.textContent} · Plexe Console`;
  done();
}

/** A page is drawn: focus its heading after a navigation, and say which page it is. */
function done() {
  focusHeading();
  main.dataset.rendered = location.hash || '#/datasets';
}

/** After a navigation, keyboard and screen-reader users start at the new page's heading. */
function focusHeading() {
  if (!navigated) return;
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
}

function markNav(section) {
  for (const link of nav.querySelectorAll('a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function shell() {
  clear(nav).append(h('ul', null, NAV.map(([section, href, label]) => h('li', null, h('a', { href, 'data-section': section }, label)))));
  nav.hidden = false;
  clear(who).append(
    h('span', { class: 'key' }, h('span', { class: 'visually-hidden' }, 'Signed in with key '), me.key_name, ' ', h('span', { class: 'scopes' }, `(${me.scopes.join(', ')})`)),
    h('button', { type: 'button', class: 'quiet', on: { click: () => signOut() } }, 'Sign out'));
}

function signOut(message) {
  session.signOut();
  me = null;
  renders += 1; // whatever page was rendering is stale now
  leave();
  nav.hidden = true;
  clear(nav);
  clear(who);
  signIn(message);
}

function signIn(message) {
  document.title = 'Sign in · Plexe Console';
  main.removeAttribute('aria-busy');
  main.dataset.rendered = 'signin';
  const input = h('input', { id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'key-help' });
  const status = h('div', { 'aria-live': 'polite' }, message ? error(new ApiError(401, null, message)) : null);
  const form = h('form', { class: 'signin', novalidate: true, on: { submit } },
    h('label', { for: 'api-key' }, 'API key'),
    input,
    h('p', { id: 'key-help', class: 'help' },
      'The key stays in this browser tab only (session storage, gone when the tab closes) and is sent only to this server’s API. ',
      'Locally, ', h('code', null, 'plexe serve'), ' writes its admin key to ', h('code', null, '<data-dir>/admin.key'), '.'),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    status);
  async function submit(ev) {
    ev.preventDefault();
    const key = input.value.trim();
    clear(status);
    if (!key) {
      status.append(error(new ApiError(0, null, 'Enter an API key.')));
      input.focus();
      return;
    }
    try {
      me = await get('/me', { key });
    } catch (e) {
      status.append(error(e));
      input.focus();
      return;
    }
    session.signIn(key);
    main.setAttribute('aria-busy', 'true');
    shell();
    navigated = true;
    if (!location.hash || location.hash === '#/signin') location.hash = '#/datasets';
    else route();
  }
  clear(main).append(h('h1', { tabindex: -1 }, 'Sign in to the Plexe Console'), form);
  input.focus();
}

window.addEventListener('plexe:unauthorized', (ev) => {
  if (!session.key()) return;
  signOut(`${ev.detail.message} Sign in again with a valid key.`);
});

window.addEventListener('hashchange', () => {
  navigated = true;
  route();
});

document.querySelector('.skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  const heading = main.querySelector('h1');
  (heading || main).focus();
});

route();
