// Building the page from data without ever parsing a string as HTML: every text goes in as a
// text node, so nothing a dataset or an error message contains can become markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'on') {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (name === 'class') {
      el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (name === 'value' || name === 'checked' || name === 'selected' || name === 'disabled') {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends strings (as text), nodes and (nested) arrays; skips null, undefined and false. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: `h('a', {href: '#/x', on: {click}}, 'text', child)`. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let uid = 0;
/** A fresh id for label/aria references. */
export function id(prefix = 'id') {
  uid += 1;
  return `${prefix}-${uid}`;
}

const nf = new Intl.NumberFormat('en');
export function num(n, digits) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  if (typeof n !== 'number') return String(n);
  if (digits !== undefined) return n.toLocaleString('en', { maximumFractionDigits: digits });
  if (Number.isInteger(n)) return nf.format(n);
  const abs = Math.abs(n);
  return n.toLocaleString('en', { maximumSignificantDigits: abs >= 1000 ? 7 : 4 });
}

export function pct(share, digits = 1) {
  return `${(share * 100).toFixed(digits)}%`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString('en', { dateStyle: 'medium', timeStyle: 'short' });
}

/** A table inside a focusable, labelled scroll region (so it scrolls sideways by keyboard too). */
export function table(label, head, rows, { rowHeaders = false, cls = null } = {}) {
  const cell = (c, i) => (i === 0 && rowHeaders ? h('th', { scope: 'row' }, c) : h('td', null, c));
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': `${label} (table)`, tabindex: 0 },
    h('table', { class: cls },
      h('thead', null, h('tr', null, head.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, rows.map((r) => h('tr', null, r.map(cell))))));
}

/** A definition list from [term, description] pairs. */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

/** A button that asks once more before it acts (no modal dialog to trap anyone). */
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  const wrap = h('span', { class: 'confirm' });
  const first = h('button', { type: 'button', class: 'danger', ...attrs, on: { click: ask } }, label);
  function ask() {
    clear(wrap);
    const yes = h('button', { type: 'button', class: 'danger', on: { click: go } }, confirmLabel);
    const no = h('button', { type: 'button', on: { click: back } }, 'Cancel');
    append(wrap, [yes, ' ', no]);
    yes.focus();
  }
  function back() {
    clear(wrap).append(first);
    first.focus();
  }
  async function go(ev) {
    ev.target.disabled = true;
    try {
      await action();
    } finally {
      if (wrap.isConnected) back();
    }
  }
  wrap.append(first);
  return wrap;
}

/** Saves `blob` under `filename` through a temporary object URL. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename, class: 'visually-hidden' }, filename);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
