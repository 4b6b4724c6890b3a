// Models: the list, and a new model — dataset, intent in words, and the plan the intent
// resolves to (target, task, metric, features) shown before the build starts.

import { get, post, seg } from './api.js';
import { append, clear, facts, h, num, table, when } from './dom.js';

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const METRICS = {
  classification: ['accuracy', 'f1', 'precision', 'recall', 'roc_auc', 'log_loss'],
  regression: ['rmse', 'mae', 'r2'],
};

export function statusBadge(status) {
  return h('span', { class: `badge status-${String(status || 'none').toLowerCase()}` }, status || 'no version');
}

export function headline(metrics) {
  if (!metrics || typeof metrics !== 'object') return '—';
  const [name, value] = Object.entries(metrics)[0] || [];
  return name ? `${name} ${num(value, 4)}` : '—';
}

export async function list(ctx) {
  const { main } = ctx;
  append(main, [
    h('h1', null, 'Models'),
    h('div', { class: 'actions' }, ctx.gate(h('a', { class: 'button primary', href: '#/models/new' }, 'New model'), 'write')),
  ]);
  const { models, pagination } = await get('/models?limit=100&sort_by=created_at&sort_dir=desc', { signal: ctx.signal });
  if (!models.length) {
    main.append(h('p', null, 'No model yet. Upload a dataset, then describe in words what to predict.'));
    return;
  }
  main.append(table('Models', ['Model', 'Status', 'Latest', 'Ready', 'Deployed', 'Holdout metric', 'Created'],
    models.map((m) => [
      h('a', { href: `#/models/${encodeURIComponent(m.model_name)}` }, m.model_name),
      statusBadge(m.status),
      m.latest_version || '—',
      m.ready_version || '—',
      m.deployment_status ? 'yes' : 'no',
      headline(m.metrics),
      when(m.created_at),
    ]), { rowHeaders: true }));
  if (pagination.has_more) main.append(h('p', { class: 'help' }, `Showing the newest ${models.length} of ${num(pagination.total)}.`));
}

function slug(text) {
  return text.toLowerCase().replace(/\.[a-z]+$/, '').replace(/[^a-z0-9_-]+/g, '-').replace(/^[-_]+|-+$/g, '').slice(0, 63) || 'model';
}

/** A labelled form field with its help text. */
function field(label, control, help) {
  const helpId = `${control.id}-help`;
  if (help) control.setAttribute('aria-describedby', helpId);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, help ? h('p', { class: 'help', id: helpId }, help) : null);
}

function planView(plan) {
  // A task or metric of null: the dataset is too large to read before the build, which decides.
  const task = plan.task
    ? { binary: 'binary classification', multiclass: 'multiclass classification', regression: 'regression' }[plan.task] || plan.task
    : 'decided by the build';
  const used = plan.features.filter((f) => f.used);
  return h('section', { class: 'card plan', 'aria-labelledby': 'plan-h' },
    h('h2', { id: 'plan-h' }, 'The plan'),
    h('p', { class: 'lead' }, 'Predict ', h('strong', { id: 'plan-target' }, plan.target), ' — ', h('strong', { id: 'plan-task' }, task), '.'),
    facts([
      ['Target column', plan.target],
      ['Task', task],
      plan.labels ? ['Labels', plan.labels.join(', ')] : null,
      ['Chosen by', plan.metric || 'the default for the task (accuracy or rmse)'],
      typeof plan.labelled_rows === 'number' ? ['Rows to learn from', num(plan.labelled_rows)] : null,
      ['Time budget', `${num(plan.time_budget_s)} s`],
      ['Features', `${used.length} of ${plan.features.length} columns used`],
    ]),
    table('Features of the plan', ['Column', 'Type', 'Used', 'Why not'], plan.features.map((f) => [f.name, f.type, f.used ? 'yes' : 'no', f.reason || '']), { rowHeaders: true }));
}

export async function create(ctx) {
  const { main } = ctx;
  main.append(h('h1', null, 'New model'));
  const { datasets } = await get('/datasets?limit=100', { signal: ctx.signal });
  if (!datasets.length) {
    main.append(h('p', null, 'Upload a dataset first: ', h('a', { href: '#/datasets' }, 'Datasets'), '.'));
    return;
  }
  const wanted = ctx.query.get('dataset');
  const dataset = h('select', { id: 'm-dataset', required: true },
    datasets.map((d) => h('option', { value: d.dataset_id, selected: d.dataset_id === wanted }, `${d.name} (${num(d.row_count)} rows)`)));
  const name = h('input', { id: 'm-name', type: 'text', required: true, autocomplete: 'off', pattern: NAME.source, maxlength: 63 });
  const intent = h('textarea', { id: 'm-intent', required: true, rows: 2, maxlength: 2000 });
  const target = h('select', { id: 'm-target' });
  const metric = h('select', { id: 'm-metric' },
    h('option', { value: '' }, 'the default (accuracy or rmse)'),
    Object.entries(METRICS).map(([group, names]) => h('optgroup', { label: group }, names.map((m) => h('option', { value: m }, m)))));
  const budget = h('input', { id: 'm-budget', type: 'number', min: 1, max: 600, step: 1, value: '60', inputmode: 'numeric' });
  const status = h('div', { 'aria-live': 'polite' });
  const planBox = h('div');
  const planButton = h('button', { type: 'submit', class: 'primary' }, 'Show the plan');
  const buildButton = h('button', { type: 'button', class: 'primary', id: 'm-build', disabled: true, on: { click: build } }, 'Start the build');
  let planned = null;

  function fillTargets() {
    const d = datasets.find((x) => x.dataset_id === dataset.value);
    clear(target).append(h('option', { value: '' }, 'decided from the intent'), ...(d ? d.columns.map((c) => h('option', { value: c.name }, `${c.name} (${c.type})`)) : []));
    if (!name.dataset.touched && d) name.value = slug(d.name);
  }
  fillTargets();
  dataset.addEventListener('change', fillTargets);
  name.addEventListener('input', () => {
    name.dataset.touched = '1';
  });

  function body() {
    const b = { intent: intent.value.trim(), dataset_id: dataset.value };
    if (target.value) b.target = target.value;
    if (metric.value) b.metric = metric.value;
    if (budget.value) b.time_budget_s = Number(budget.value);
    return b;
  }

  function stale() {
    if (!planned) return;
    planned = null;
    buildButton.disabled = true;
    clear(planBox).append(h('p', { class: 'help' }, 'The form changed: show the plan again before building.'));
  }
  for (const el of [dataset, name, intent, target, metric, budget]) el.addEventListener('input', stale);

  function check() {
    clear(status);
    const problems = [];
    if (!NAME.test(name.value)) problems.push([name, 'A model name is 1–63 lowercase letters, digits, - or _, starting with a letter or digit.']);
    if (!intent.value.trim()) problems.push([intent, 'Say in words what to predict, e.g. “predict whether a passenger survived”.']);
    if (problems.length) {
      status.append(h('div', { class: 'error', role: 'alert' }, problems.map(([, m]) => h('p', null, m))));
      problems[0][0].focus();
      return false;
    }
    return true;
  }

  function candidates(err) {
    const list = err.details && err.details.candidates;
    if (!Array.isArray(list) || !list.length) return null;
    return h('div', { class: 'candidates' },
      h('p', null, 'Pick the column to predict:'),
      h('ul', { class: 'chips' }, list.map((c) => h('li', null, h('button', {
        type: 'button',
        on: {
          click: () => {
            target.value = c;
            showPlan();
          },
        },
      }, c)))));
  }

  async function showPlan(ev) {
    if (ev) ev.preventDefault();
    if (!check()) return;
    clear(planBox);
    planned = null;
    buildButton.disabled = true;
    status.append(h('p', null, 'Working out the plan…'));
    try {
      const plan = await post(`/models/${seg(name.value)}/plan`, body());
      clear(status);
      planned = plan;
      planBox.append(planView(plan));
      buildButton.disabled = false;
    } catch (e) {
      clear(status);
      if (e.status === 404 || e.status === 405) {
        // A server without the plan route: the build decides the same things, later.
        planned = {};
        status.append(h('p', { class: 'notice', role: 'status' }, `This server cannot show a plan before the build (POST /models/{name}/plan answered ${e.status}); the build will decide the target and the task, and the model page shows them.`));
        buildButton.disabled = false;
        return;
      }
      status.append(ctx.error(e));
      const pick = candidates(e);
      if (pick) status.append(pick);
    }
  }

  async function build() {
    if (!planned || !check()) return;
    buildButton.disabled = true;
    try {
      const accepted = await post(`/models/${seg(name.value)}`, body());
      location.hash = `#/models/${encodeURIComponent(accepted.model_name)}/${encodeURIComponent(accepted.model_version)}`;
    } catch (e) {
      buildButton.disabled = false;
      status.append(ctx.error(e));
      const pick = candidates(e);
      if (pick) status.append(pick);
    }
  }

  const form = h('form', { class: 'card', novalidate: true, on: { submit: showPlan } },
    field('Dataset', dataset),
    field('Model name', name, 'Lowercase letters, digits, - and _; the model’s address in the API.'),
    field('What to predict, in plain words', intent, 'For example “predict whether a passenger survived” or “predict the price”.'),
    h('details', null, h('summary', null, 'Options: target column, metric, time budget'),
      field('Target column', target, 'Leave it to the intent, or name the column.'),
      field('Metric to choose the model by', metric),
      field('Time budget (seconds)', budget, '1 to 600 seconds of model search.')),
    h('div', { class: 'actions' }, planButton));
  main.append(ctx.gate(form, 'write'), status, planBox, h('div', { class: 'actions' }, ctx.gate(buildButton, 'write')));
}
