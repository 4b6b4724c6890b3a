// Small SVG charts drawn from data: every chart has a title, axes with tick values and an axis
// title with its unit, and a text alternative (the SVG's title and description) for screen
// readers. Sizes are in CSS pixels of the space the chart is given, so text stays readable on
// a phone.

import { h, id, num, s } from './dom.js';

const FONT = 12;
const charWidth = FONT * 0.6;

/** The width of `el`'s content box. */
function inner(el) {
  const style = getComputedStyle(el);
  return el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
}

/**
 * The width a chart gets: `el`'s content width once it is in the page, else that of a card
 * in the main column (the main column less a card's padding and border).
 */
export function widthOf(el) {
  const main = document.getElementById('main');
  const w = el ? inner(el) : main ? inner(main) - 34 : 600;
  return Math.max(240, Math.min(760, Math.floor(w)));
}

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) {
    hi = lo + 1;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const err = raw / mag;
  const step = (err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1) * mag;
  const first = Math.floor(lo / step + 1e-9) * step;
  const out = [];
  for (let v = first; v <= hi + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function label(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(1);
  return num(v);
}

function truncate(text, chars) {
  const t = String(text);
  return t.length > chars ? `${t.slice(0, Math.max(1, chars - 1))}…` : t;
}

/** The SVG inside a figure whose caption is the chart's title. */
function figure(title, description, width, height, children, note) {
  const titleId = id('chart-title');
  const descId = id('chart-desc');
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-labelledby': `${titleId} ${descId}` },
    s('title', { id: titleId }, title),
    s('desc', { id: descId }, description),
    children);
  return h('figure', { class: 'chart' }, h('figcaption', null, title, note ? h('span', { class: 'note' }, note) : null), svg);
}

/** An axis title, squeezed to `room` pixels if it would not fit. */
function axisTitle(x, y, text, rotate, room) {
  const squeeze = room && text.length * charWidth * 1.05 > room;
  return s('text', { x, y, class: 'axis-title', 'text-anchor': 'middle', transform: rotate ? `rotate(-90 ${x} ${y})` : null, textLength: squeeze ? room : null, lengthAdjust: squeeze ? 'spacingAndGlyphs' : null }, text);
}

/**
 * Horizontal bars: `items` [{label, value, best?}], `axis` the value axis title (with its unit),
 * `format` how a value is printed, `fromZero` false to start the axis near the smallest value
 * (for scores that differ in their third digit).
 */
export function bars({ title, items, axis, note, format = label, tickFormat = label, fromZero = true, width = widthOf() }) {
  const rowH = 24;
  const top = 6;
  const bottom = 42;
  const labelChars = Math.max(...items.map((i) => String(i.label).length), 4);
  const left = Math.min(Math.round(width * 0.42), Math.round(labelChars * charWidth) + 12);
  const right = 56;
  const pw = Math.max(40, width - left - right);
  const height = top + items.length * rowH + bottom;
  const values = items.map((i) => i.value);
  let lo = Math.min(0, ...values);
  const hi = Math.max(0, ...values);
  if (!fromZero && values.length) {
    const min = Math.min(...values);
    const max = Math.max(...values);
    const pad = (max - min || Math.abs(max) || 1) * 0.5;
    lo = ticks(min - pad, max, 5)[0];
  }
  const tv = ticks(lo, hi, Math.max(2, Math.floor(pw / 70)));
  const d0 = tv[0];
  const d1 = tv[tv.length - 1];
  const x = (v) => left + ((v - d0) / (d1 - d0)) * pw;
  const base = x(Math.max(d0, Math.min(0, d1)));
  const maxChars = Math.max(4, Math.floor((left - 10) / charWidth));
  const parts = [];
  for (const t of tv) {
    parts.push(s('line', { x1: x(t), x2: x(t), y1: top, y2: top + items.length * rowH, class: 'grid' }));
    parts.push(s('text', { x: x(t), y: top + items.length * rowH + 16, 'text-anchor': 'middle', class: 'tick' }, tickFormat(t)));
  }
  items.forEach((item, i) => {
    const y = top + i * rowH;
    const xv = x(item.value);
    parts.push(s('text', { x: left - 8, y: y + rowH / 2 + 4, 'text-anchor': 'end', class: 'tick' },
      s('title', null, String(item.label)), truncate(item.label, maxChars)));
    parts.push(s('rect', { x: Math.min(base, xv), y: y + 4, width: Math.max(1, Math.abs(xv - base)), height: rowH - 8, class: item.best ? 'bar best' : 'bar' }));
    parts.push(s('text', { x: Math.max(base, xv) + 4, y: y + rowH / 2 + 4, class: 'value' }, format(item.value)));
  });
  parts.push(s('line', { x1: left, x2: left, y1: top, y2: top + items.length * rowH, class: 'axis' }));
  parts.push(axisTitle(width / 2, height - 6, axis, false, width - 8));
  const description = `${axis}: ${items.map((i) => `${i.label} ${format(i.value)}`).join('; ')}.`;
  return figure(title, description, width, height, parts, note);
}

/** Vertical bars over numeric ranges: `bins` [{from, to, count}]. */
export function histogram({ title, bins, xAxis, yAxis = 'rows', width = widthOf(), height = 220 }) {
  const left = 52;
  const right = 14;
  const top = 10;
  const bottom = 46;
  const pw = width - left - right;
  const ph = height - top - bottom;
  const lo = bins[0].from;
  const hi = bins[bins.length - 1].to;
  const maxCount = Math.max(1, ...bins.map((b) => b.count));
  const yt = ticks(0, maxCount, 4);
  const ymax = yt[yt.length - 1];
  const span = hi - lo || 1;
  const x = (v) => left + ((v - lo) / span) * pw;
  const y = (v) => top + ph - (v / ymax) * ph;
  const parts = [];
  for (const t of yt) {
    parts.push(s('line', { x1: left, x2: left + pw, y1: y(t), y2: y(t), class: 'grid' }));
    parts.push(s('text', { x: left - 6, y: y(t) + 4, 'text-anchor': 'end', class: 'tick' }, label(t)));
  }
  for (const b of bins) {
    const x0 = x(b.from);
    const w = Math.max(1, x(b.to) - x0 - 1);
    parts.push(s('rect', { x: x0 + 0.5, y: y(b.count), width: w, height: Math.max(0, top + ph - y(b.count)), class: 'bar' },
      s('title', null, `${label(b.from)} to ${label(b.to)}: ${b.count}`)));
  }
  const xt = ticks(lo, hi, Math.max(2, Math.floor(pw / 80))).filter((t) => t >= lo - span * 1e-9 && t <= hi + span * 1e-9);
  for (const t of xt) {
    parts.push(s('line', { x1: x(t), x2: x(t), y1: top + ph, y2: top + ph + 4, class: 'axis' }));
    parts.push(s('text', { x: x(t), y: top + ph + 17, 'text-anchor': 'middle', class: 'tick' }, label(t)));
  }
  parts.push(s('line', { x1: left, x2: left + pw, y1: top + ph, y2: top + ph, class: 'axis' }));
  parts.push(s('line', { x1: left, x2: left, y1: top, y2: top + ph, class: 'axis' }));
  parts.push(axisTitle(left + pw / 2, height - 6, xAxis, false, pw));
  parts.push(axisTitle(13, top + ph / 2, yAxis, true, ph));
  const description = `${yAxis} per range of ${xAxis}: ${bins.map((b) => `${label(b.from)} to ${label(b.to)}: ${b.count}`).join('; ')}.`;
  return figure(title, description, width, height, parts);
}

/** Equal-width bins over numbers (missing values left out). */
export function binned(values, count) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (!xs.length) return [];
  let lo = Math.min(...xs);
  let hi = Math.max(...xs);
  if (hi === lo) {
    lo -= 0.5;
    hi += 0.5;
  }
  const n = count || Math.min(20, Math.max(4, Math.ceil(Math.sqrt(xs.length))));
  const step = (hi - lo) / n;
  const bins = Array.from({ length: n }, (_, i) => ({ from: lo + i * step, to: lo + (i + 1) * step, count: 0 }));
  for (const v of xs) bins[Math.min(n - 1, Math.floor((v - lo) / step))].count += 1;
  return bins;
}

/** Points against the line of perfect prediction: `points` [{actual, predicted}]. */
export function scatter({ title, points, xAxis, yAxis, width = widthOf() }) {
  const height = Math.min(width, 380);
  const left = 58;
  const right = 14;
  const top = 10;
  const bottom = 46;
  const pw = width - left - right;
  const ph = height - top - bottom;
  const all = points.flatMap((p) => [p.actual, p.predicted]);
  const t = ticks(Math.min(...all), Math.max(...all), Math.max(2, Math.floor(Math.min(pw, ph) / 70)));
  const lo = t[0];
  const hi = t[t.length - 1];
  const x = (v) => left + ((v - lo) / (hi - lo)) * pw;
  const y = (v) => top + ph - ((v - lo) / (hi - lo)) * ph;
  const parts = [];
  for (const v of t) {
    parts.push(s('line', { x1: x(v), x2: x(v), y1: top, y2: top + ph, class: 'grid' }));
    parts.push(s('line', { x1: left, x2: left + pw, y1: y(v), y2: y(v), class: 'grid' }));
    parts.push(s('text', { x: x(v), y: top + ph + 17, 'text-anchor': 'middle', class: 'tick' }, label(v)));
    parts.push(s('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, label(v)));
  }
  parts.push(s('line', { x1: x(lo), y1: y(lo), x2: x(hi), y2: y(hi), class: 'diagonal' }));
  parts.push(s('g', { class: 'points' }, points.map((p) => s('circle', { cx: x(p.actual), cy: y(p.predicted), r: 3 }))));
  parts.push(s('line', { x1: left, x2: left + pw, y1: top + ph, y2: top + ph, class: 'axis' }));
  parts.push(s('line', { x1: left, x2: left, y1: top, y2: top + ph, class: 'axis' }));
  parts.push(axisTitle(left + pw / 2, height - 6, xAxis, false, pw));
  parts.push(axisTitle(13, top + ph / 2, yAxis, true, ph));
  const errors = points.map((p) => Math.abs(p.predicted - p.actual));
  const mae = errors.reduce((a, b) => a + b, 0) / Math.max(1, errors.length);
  const description = `${points.length} holdout rows; the dashed line is a perfect prediction. Mean absolute distance from it: ${label(mae)}.`;
  return figure(title, description, width, height, parts);
}

/**
 * A confusion matrix as a table whose cells are shaded by their share of the row (rows: the
 * actual label, columns: the predicted one).
 */
export function confusion({ title, labels, matrix }) {
  const shade = (share) => `heat-${Math.min(5, Math.floor(share * 6))}`;
  const head1 = h('tr', null, h('td', { class: 'corner' }), h('th', { scope: 'colgroup', colspan: labels.length }, 'predicted'));
  const head2 = h('tr', null, h('th', { scope: 'col' }, 'actual'), labels.map((l) => h('th', { scope: 'col' }, l)));
  const body = matrix.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    return h('tr', null, h('th', { scope: 'row' }, labels[i]), row.map((count, j) => h('td', { class: [shade(count / total), i === j ? 'diag' : null] },
      h('span', { class: 'count' }, num(count)), h('span', { class: 'share' }, ` ${Math.round((count / total) * 100)}%`))));
  });
  const correct = matrix.reduce((a, row, i) => a + (row[i] || 0), 0);
  const all = matrix.flat().reduce((a, b) => a + b, 0);
  const noteId = id('confusion-note');
  return h('figure', { class: 'chart' },
    h('figcaption', null, title),
    h('div', { class: 'table-wrap fit', role: 'region', 'aria-label': title, 'aria-describedby': noteId, tabindex: 0 },
      h('table', { class: 'confusion' },
        h('thead', null, head1, head2),
        h('tbody', null, body))),
    h('p', { class: 'help', id: noteId }, `Holdout rows by actual label (rows) and predicted label (columns), with each row’s share; ${num(correct)} of ${num(all)} are on the diagonal, predicted right.`));
}
