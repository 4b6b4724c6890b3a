// Predictions: a form generated from a version's input schema (errors shown at their fields),
// and a CSV file in, a CSV file with the predictions appended out.

import { get, post, request, seg } from './api.js';
import { bars } from './charts.js';
import { append, clear, facts, h, id, num, table } from './dom.js';

const SCORE_NAMES = { value: 'the prediction', log_odds: 'the log-odds', class_score: 'the class score' };
const SHOWN_FIELDS = 12;

/**
 * Why: the fields that moved the score most, as bars from the base value (the average over the
 * training rows). Multiclass models explain the predicted class's score.
 */
function why(explanation, predicted) {
  if (!explanation || !explanation.scores || !explanation.scores.length) return null;
  const score = explanation.scores.find((sc) => sc.label !== undefined && String(sc.label) === String(predicted)) || explanation.scores[0];
  const entries = Object.entries(score.contributions).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const shown = entries.slice(0, SHOWN_FIELDS);
  const rest = entries.slice(SHOWN_FIELDS).reduce((sum, [, v]) => sum + v, 0);
  const items = shown.map(([label, value]) => ({ label, value, best: value > 0 }));
  if (entries.length > SHOWN_FIELDS) items.push({ label: `${entries.length - SHOWN_FIELDS} other fields`, value: rest });
  const of = SCORE_NAMES[explanation.score] || 'the score';
  const subject = score.label !== undefined ? `${of} of “${score.label}”` : of;
  return h('section', { class: 'card', id: 'prediction-why', 'aria-labelledby': 'why-h' },
    h('h3', { id: 'why-h' }, 'Why'),
    h('p', null, `Starting from ${num(score.base_value, 4)}, the average over the training rows, each field moved ${subject} by its bar, to ${num(score.raw_score, 4)}.`),
    bars({ title: `What each field added to ${subject}`, items, axis: `contribution to ${subject}`, note: 'Dark bars raise it, light bars lower it.', format: (v) => num(v, 4) }));
}

export async function pick(ctx) {
  const { main } = ctx;
  main.append(h('h1', null, 'Predict'));
  const { models } = await get('/models?limit=100&sort_by=name&sort_dir=asc', { signal: ctx.signal });
  const ready = models.filter((m) => m.ready_version);
  if (!ready.length) {
    main.append(h('p', null, 'No model is ready yet. ', h('a', { href: '#/models/new' }, 'Build one'), '.'));
    return;
  }
  main.append(h('p', null, 'Choose a model to call:'), table('Models ready for predictions', ['Model', 'Version', 'Deployed', h('span', { class: 'visually-hidden' }, 'Action')], ready.map((m) => [
    m.model_name,
    m.ready_version,
    m.deployment_status ? 'yes' : 'no',
    h('a', { href: `#/predict/${encodeURIComponent(m.model_name)}/${encodeURIComponent(m.ready_version)}` }, `Predict with ${m.model_name} ${m.ready_version}`),
  ]), { rowHeaders: true }));
}

/** The value a field sends: empty is missing (null); numbers typed as numbers become numbers. */
function valueOf(field, raw) {
  const text = raw.trim();
  if (text === '') return null;
  if (field.type === 'boolean') return text === 'true';
  if ((field.type === 'integer' || field.type === 'float') && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return Number(text);
  return text;
}

/** The rows of a CSV text (quoted fields, doubled quotes), for a preview only. */
function parseCsv(text, maxRows) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length && rows.length < maxRows; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if ((cell || row.length) && rows.length < maxRows) rows.push([...row, cell]);
  return rows;
}

function problemsOf(err) {
  const list = err.details && Array.isArray(err.details.errors) ? err.details.errors : [];
  if (list.length) return list;
  return err.details && err.details.field ? [{ field: err.details.field, message: err.message }] : [];
}

function singleForm(ctx, d, sample) {
  const fields = Array.isArray(d.input_schema) ? d.input_schema : Object.entries(d.input_schema || {}).map(([name, type]) => ({ name, type: typeof type === 'string' ? type : 'string' }));
  const controls = new Map();
  const status = h('div', { 'aria-live': 'polite' });
  const result = h('div', { id: 'prediction-result', 'aria-live': 'polite' });
  const rows = fields.map((f, i) => {
    const inputId = `in-${i}`;
    const errId = `in-${i}-err`;
    let control;
    if (f.type === 'boolean') {
      control = h('select', { id: inputId, name: f.name }, h('option', { value: '' }, '(missing)'), h('option', { value: 'true' }, 'true'), h('option', { value: 'false' }, 'false'));
    } else {
      const numeric = f.type === 'integer' || f.type === 'float';
      const options = sample && sample.options[f.name];
      const listId = options ? id('values') : null;
      control = h('input', { id: inputId, name: f.name, type: 'text', autocomplete: 'off', inputmode: numeric ? (f.type === 'integer' ? 'numeric' : 'decimal') : null, list: listId });
      if (options) control = [control, h('datalist', { id: listId }, options.map((o) => h('option', { value: o })))];
    }
    const input = Array.isArray(control) ? control[0] : control;
    const err = h('p', { class: 'field-error', id: errId, hidden: true });
    controls.set(f.name, { input, err, field: f });
    return h('div', { class: 'field' }, h('label', { for: inputId }, f.name, ' ', h('span', { class: 'type' }, `(${f.type})`)), control, err);
  });

  function clearErrors() {
    for (const { input, err } of controls.values()) {
      input.removeAttribute('aria-invalid');
      input.removeAttribute('aria-describedby');
      err.hidden = true;
      err.textContent = '';
    }
  }

  function fill(row) {
    for (const [name, { input }] of controls) {
      const v = row[name];
      input.value = v === null || v === undefined ? '' : String(v);
    }
  }

  async function submit(ev) {
    ev.preventDefault();
    clearErrors();
    clear(status);
    clear(result);
    const body = {};
    for (const [name, { input, field }] of controls) body[name] = valueOf(field, input.value);
    try {
      const path = `/models/${seg(d.model_name)}/${seg(d.model_version)}/infer`;
      let answer;
      try {
        answer = await post(`${path}?explain=true`, body);
      } catch (e) {
        // The prediction matters more than its explanation: when only the explanation fails
        // (a version built before they were recorded, a model too large to explain, storage
        // unavailable), predict without it; the row's own errors are shown as they are.
        if ([400, 401, 403, 404, 413, 429].includes(e.status) || (e.status === 422 && !(e.details && e.details.field === 'explain'))) throw e;
        answer = await post(path, body);
      }
      const pairs = Object.entries(answer.result).map(([k, v]) => [k, typeof v === 'object' && v !== null
        ? h('ul', null, Object.entries(v).map(([label, p]) => h('li', null, `${label}: ${num(p, 4)}`)))
        : (typeof v === 'number' ? num(v, 4) : String(v))]);
      result.append(h('section', { class: 'card result', 'aria-labelledby': 'result-h' }, h('h3', { id: 'result-h' }, 'Prediction'), facts(pairs), h('p', { class: 'small' }, `request ${answer.request_id}`)));
      const predicted = Object.values(answer.result)[0];
      append(result, [why(answer.explanation, predicted)]);
    } catch (e) {
      status.append(ctx.error(e));
      let first = null;
      const general = [];
      for (const p of problemsOf(e)) {
        const c = controls.get(p.field);
        if (!c) {
          general.push(p);
          continue;
        }
        c.err.hidden = false;
        c.err.textContent = c.err.textContent ? `${c.err.textContent} ${p.message}` : p.message;
        c.input.setAttribute('aria-invalid', 'true');
        c.input.setAttribute('aria-describedby', c.err.id);
        first = first || c.input;
      }
      if (general.length) status.append(h('ul', null, general.map((p) => h('li', null, `${p.field}: ${p.message}`))));
      if (first) first.focus();
    }
  }

  const form = h('form', { class: 'card', novalidate: true, id: 'predict-form', on: { submit } },
    h('p', { class: 'help' }, 'Leave a field empty to send it as missing.'),
    sample && sample.first ? h('p', null, h('button', { type: 'button', id: 'fill-example', on: { click: () => fill(sample.first) } }, 'Fill in the first row of the training data')) : null,
    h('div', { class: 'fields' }, rows),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Predict')));
  return h('section', { 'aria-labelledby': 'single-h' }, h('h2', { id: 'single-h' }, 'One row'), ctx.gate(form, 'predict'), status, result);
}

function batchForm(ctx, d) {
  const file = h('input', { type: 'file', id: 'batch-file', accept: '.csv,text/csv', 'aria-describedby': 'batch-help' });
  const status = h('div', { 'aria-live': 'polite' });
  const out = h('div', { id: 'batch-result' });
  async function submit(ev) {
    ev.preventDefault();
    clear(status);
    clear(out);
    const chosen = file.files[0];
    if (!chosen) {
      status.append(ctx.error(new Error('Choose a CSV file first.')));
      file.focus();
      return;
    }
    status.append(h('p', null, 'Predicting…'));
    try {
      const res = await request('POST', `/models/${seg(d.model_name)}/${seg(d.model_version)}/predictions`, { body: chosen, type: 'text/csv' });
      const text = await res.text();
      const blob = new Blob([text], { type: 'text/csv' });
      const filename = `${chosen.name.replace(/\.csv$/i, '')}-${d.model_name}-${d.model_version}-predictions.csv`;
      const link = h('a', { href: URL.createObjectURL(blob), download: filename, id: 'batch-download', class: 'button primary' }, `Download ${filename}`);
      ctx.onLeave(() => URL.revokeObjectURL(link.href));
      const rows = parseCsv(text, 11);
      clear(status).append(h('p', { role: 'status' }, `Predicted ${num(Math.max(0, text.split('\n').filter(Boolean).length - 1))} rows.`));
      append(out, [h('p', null, link), rows.length > 1 ? table('First rows of the predictions', rows[0], rows.slice(1)) : null]);
    } catch (e) {
      clear(status).append(ctx.error(e));
      const problems = problemsOf(e);
      if (problems.length) status.append(h('ul', null, problems.slice(0, 20).map((p) => h('li', null, `${p.row !== undefined ? `row ${p.row + 1}, ` : ''}${p.field}: ${p.message}`))));
    }
  }
  const form = h('form', { class: 'card', novalidate: true, on: { submit } },
    h('div', { class: 'field' }, h('label', { for: 'batch-file' }, 'CSV file with the input columns'), file,
      h('p', { class: 'help', id: 'batch-help' }, 'Up to 10,000 rows and 6 MB. The answer keeps every column and appends the prediction columns.')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Predict the file')));
  return h('section', { 'aria-labelledby': 'batch-h' }, h('h2', { id: 'batch-h' }, 'A CSV file'), ctx.gate(form, 'predict'), status, out);
}

/** What the training data offers the form: its first row and each text column's top values. */
async function sampleOf(ctx, d) {
  try {
    const datasetId = d.training_info.dataset_id;
    const [dataset, preview] = await Promise.all([
      get(`/datasets/${seg(datasetId)}`, { signal: ctx.signal }),
      get(`/datasets/${seg(datasetId)}/preview?limit=1`, { signal: ctx.signal }),
    ]);
    const options = {};
    for (const c of dataset.columns) if (c.top_values) options[c.name] = c.top_values.map((v) => String(v.value));
    return { first: preview.rows[0], options };
  } catch {
    return null; // deleted dataset: the form works without hints
  }
}

export async function page(ctx, name, label) {
  const { main } = ctx;
  const d = await get(`/models/${seg(name)}/${seg(label)}/describe`, { signal: ctx.signal });
  const [{ deployments }, sample] = await Promise.all([
    get(`/models/${seg(name)}/deployments?limit=100`, { signal: ctx.signal }),
    sampleOf(ctx, d),
  ]);
  const live = deployments.find((x) => x.status === 'ACTIVE' && x.model_version === d.model_version);
  append(main, [
    h('h1', null, `Predict with ${d.model_name} ${d.model_version}`),
    h('p', { class: 'lead' }, d.description),
  ]);
  const notice = h('div', { 'aria-live': 'polite' });
  if (live) {
    notice.append(h('p', null, 'Deployed to ', live.environment, ': ', h('code', null, `POST ${live.endpoint}`)));
  } else {
    const deploy = h('button', {
      type: 'button',
      class: 'primary',
      on: {
        click: async () => {
          try {
            const dep = await post(`/models/${seg(name)}/deploy`, { model_version: d.model_version });
            clear(notice).append(h('p', { role: 'status' }, `Deployed to ${dep.environment}: `, h('code', null, `POST ${dep.endpoint}`)));
          } catch (e) {
            notice.append(ctx.error(e));
          }
        },
      },
    }, 'Deploy it now');
    notice.append(h('div', { class: 'notice' }, h('p', null, `${d.model_version} is not deployed; predictions need a deployment.`), ctx.gate(deploy, 'write')));
  }
  append(main, [notice, singleForm(ctx, d, sample), batchForm(ctx, d)]);
}
