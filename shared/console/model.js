// One model: a version's live build (progress and log lines), its results (metrics,
// leaderboard, feature importance, and how it does on the holdout), the versions side by side,
// deployments, and the ONNX file.

import { get, post, del, request, seg } from './api.js';
import { bars, confusion, histogram, scatter } from './charts.js';
import { append, clear, confirmButton, facts, h, num, pct, saveBlob, table, when } from './dom.js';
import { statusBadge } from './models.js';

const LOWER_IS_BETTER = new Set(['rmse', 'mae', 'log_loss']);
const POLL_MS = 1000;

/** A build's log lines, fetched page by page from where the last call stopped. */
function logView(jobId, signal) {
  const list = h('ol', { class: 'log', id: 'build-log' });
  const box = h('div', { class: 'log-wrap', role: 'log', 'aria-label': 'Build log', tabindex: 0 }, list);
  let offset = 0;
  async function more() {
    for (;;) {
      const page = await get(`/models/build-logs?job_id=${encodeURIComponent(jobId)}&limit=100&offset=${offset}`, { signal });
      for (const line of page.logs) {
        list.append(h('li', { class: `level-${line.level}` }, h('time', { datetime: line.timestamp }, line.timestamp.slice(11, 19)), ' ', line.message));
      }
      offset += page.logs.length;
      if (!page.pagination.has_more || !page.logs.length) break;
    }
    box.scrollTop = box.scrollHeight;
  }
  return { box, more };
}

function importanceItems(fi) {
  const items = Array.isArray(fi)
    ? fi.map((f) => ({ label: f.feature ?? f.name, value: Number(f.importance) }))
    : Object.entries(fi || {}).map(([label, value]) => ({ label, value: Number(value) }));
  return items.filter((i) => Number.isFinite(i.value)).sort((a, b) => b.value - a.value);
}

function leaderboardItems(board, metric) {
  const lower = LOWER_IS_BETTER.has(metric);
  const items = (Array.isArray(board) ? board : []).map((c, i) => {
    const setting = String(c.parameters || '').split(':')[0];
    return { label: `${i + 1}. ${c.family}${setting ? ` · ${setting}` : ''}`, value: Number(c.validation_score) };
  }).filter((i) => Number.isFinite(i.value));
  const best = items.reduce((b, i) => (b === null || (lower ? i.value < b.value : i.value > b.value) ? i : b), null);
  if (best) best.best = true;
  return items;
}

function evaluation(d) {
  const ev = d.evaluation;
  const target = d.target;
  if (!ev) {
    return [h('p', { class: 'notice' }, 'This version has no holdout evaluation (a server older than this console, or a version built before it recorded one), so there is no confusion matrix or predicted-against-actual chart to draw.')];
  }
  if (ev.kind === 'classification') {
    return [confusion({ title: `Confusion matrix of ${target} on the holdout`, labels: ev.labels, matrix: ev.confusion_matrix })];
  }
  const out = [];
  if (ev.points && ev.points.length) {
    out.push(scatter({ title: `Predicted against actual ${target} (holdout, ${ev.points.length} rows)`, points: ev.points, xAxis: `actual ${target} (${target} units)`, yAxis: `predicted ${target} (${target} units)` }));
  }
  if (ev.residual_histogram && ev.residual_histogram.length) {
    out.push(histogram({ title: `Residuals of ${target} on the holdout`, bins: ev.residual_histogram, xAxis: `residual: actual − predicted (${target} units)`, yAxis: 'holdout rows (count)' }));
  }
  return out;
}

async function download(name, label, status) {
  clear(status).append(h('p', null, 'Downloading…'));
  const res = await request('GET', `/models/${seg(name)}/${seg(label)}/artifact`);
  const blob = await res.blob();
  saveBlob(blob, `${name}-${label}.onnx`);
  clear(status).append(h('p', { role: 'status' }, `Saved ${name}-${label}.onnx (${num(blob.size)} bytes).`));
}

/** A READY version's results. */
function results(ctx, d, version, refresh) {
  const metric = d.training_info.metric;
  const status = h('div', { 'aria-live': 'polite' });
  const deploy = h('button', {
    type: 'button',
    class: 'primary',
    id: 'deploy-version',
    on: {
      click: async () => {
        clear(status);
        try {
          const dep = await post(`/models/${seg(d.model_name)}/deploy`, { model_version: d.model_version });
          status.append(h('p', { role: 'status' }, `Deployed ${dep.model_version} to ${dep.environment}: POST ${dep.endpoint}`));
          await refresh();
        } catch (e) {
          status.append(ctx.error(e));
        }
      },
    },
  }, version.deployment_status ? 'Deploy again' : 'Deploy this version');
  const save = h('button', {
    type: 'button',
    id: 'download-artifact',
    on: {
      click: () => download(d.model_name, d.model_version, status).catch((e) => clear(status).append(ctx.error(e))),
    },
  }, `Download the ONNX file (${num(d.artifact.size_bytes)} bytes)`);
  const metrics = Object.entries(d.performance_metrics || {}).map(([k, v]) => [k, num(v, 4)]);
  const ti = d.training_info;
  const importance = importanceItems(ti.feature_importance);
  const board = leaderboardItems(ti.leaderboard, metric);
  const dropped = Array.isArray(ti.dropped_columns) ? ti.dropped_columns : [];
  return [
    h('p', { class: 'lead' }, d.description),
    h('div', { class: 'actions' },
      ctx.gate(deploy, 'write'),
      ctx.gate(h('a', { class: 'button', href: `#/predict/${encodeURIComponent(d.model_name)}/${encodeURIComponent(d.model_version)}` }, 'Predict'), 'predict'),
      save),
    status,
    h('div', { class: 'two' },
      h('section', { 'aria-labelledby': 'metrics-h' }, h('h3', { id: 'metrics-h' }, `Holdout metrics (${num(ti.holdout_rows)} rows)`), facts(metrics)),
      h('section', { 'aria-labelledby': 'training-h' }, h('h3', { id: 'training-h' }, 'Training'), facts([
        ['Target', `${d.target} (${d.task})`],
        d.labels && d.labels.length ? ['Labels', d.labels.join(', ')] : null,
        ['Algorithm', ti.algorithm],
        ['Chosen by', `validation ${metric} ${num(ti.validation_score, 4)}`],
        ['Rows', `${num(ti.train_rows)} to train, ${num(ti.holdout_rows)} held out`],
        ['Training time', `${num(ti.training_time_minutes * 60, 3)} s`],
      ]))),
    importance.length ? bars({ title: 'Feature importance', items: importance, axis: 'share of the model’s use (%)', format: (v) => pct(v), tickFormat: (v) => pct(v, 0) }) : null,
    board.length ? bars({ title: `Leaderboard: candidates by validation ${metric}`, items: board, axis: `validation ${metric} (${LOWER_IS_BETTER.has(metric) ? 'lower' : 'higher'} is better)`, note: 'The dark bar is the best single candidate; the model may blend several.', format: (v) => num(v, 4), fromZero: false }) : null,
    h('section', { 'aria-labelledby': 'eval-h' }, h('h3', { id: 'eval-h' }, 'On the holdout'), evaluation(d)),
    dropped.length ? h('section', { 'aria-labelledby': 'dropped-h' }, h('h3', { id: 'dropped-h' }, 'Columns left out'),
      h('ul', null, dropped.map((c) => h('li', null, typeof c === 'string' ? c : `${c.name || c.column}: ${c.reason || ''}`)))) : null,
  ];
}

/** The selected version: a live build, its failure, or its results. */
async function versionView(ctx, name, label, box, refresh) {
  const version = await get(`/models/${seg(name)}/${seg(label)}`, { signal: ctx.signal });
  const head = h('h2', { id: 'version-h' }, `Version ${version.model_version} `, statusBadge(version.status));
  clear(box).append(head);
  const logs = logView(version.job_id, ctx.signal);
  if (version.status === 'PENDING' || version.status === 'BUILDING') {
    const bar = h('progress', { id: 'build-progress', max: 100, value: version.build_progress, 'aria-labelledby': 'build-progress-label' });
    const words = h('span', { id: 'build-progress-label' }, `Build progress: ${version.build_progress}%`);
    append(box, [h('div', { class: 'progress' }, words, bar), h('h3', null, 'Build log'), logs.box]);
    ctx.every(async () => {
      const st = await get(`/models/${seg(name)}/${seg(label)}/status`, { signal: ctx.signal });
      bar.value = st.build_progress;
      words.textContent = `Build progress: ${st.build_progress}% (${st.status.toLowerCase()})`;
      await logs.more();
      if (st.status === 'READY' || st.status === 'ERROR') {
        await versionView(ctx, name, label, box, refresh);
        await refresh();
        return false;
      }
      return true;
    }, POLL_MS);
    return;
  }
  if (version.status === 'ERROR') {
    const err = version.error || { message: 'The build failed.' };
    append(box, [h('div', { class: 'error', role: 'alert' }, h('p', null, err.message), h('p', { class: 'small' }, err.code || '')), h('h3', null, 'Build log'), logs.box]);
    await logs.more();
    return;
  }
  const d = await get(`/models/${seg(name)}/${seg(label)}/describe`, { signal: ctx.signal });
  append(box, results(ctx, d, version, refresh));
  box.append(h('details', { class: 'card' }, h('summary', null, 'Build log'), logs.box));
  await logs.more();
}

function versionsTable(name, versions, selected) {
  const metricNames = [...new Set(versions.flatMap((v) => (v.metrics && typeof v.metrics === 'object' ? Object.keys(v.metrics) : [])))];
  const rows = [
    ['Status', ...versions.map((v) => statusBadge(v.status))],
    ['Chosen by', ...versions.map((v) => (v.result ? `${v.result.metric_name} ${num(v.result.metric_value, 4)}` : '—'))],
    ...metricNames.map((m) => [m, ...versions.map((v) => (v.metrics && v.metrics[m] !== undefined ? num(v.metrics[m], 4) : '—'))]),
    ['Algorithm', ...versions.map((v) => v.algorithm || '—')],
    ['Target', ...versions.map((v) => (v.target ? `${v.target}${v.task ? ` (${v.task})` : ''}` : '—'))],
    ['Dataset', ...versions.map((v) => h('a', { href: `#/datasets/${encodeURIComponent(v.dataset_id)}` }, v.dataset_id))],
    ['Time budget', ...versions.map((v) => `${num(v.time_budget_s)} s`)],
    ['Deployed', ...versions.map((v) => (v.deployment_status ? 'yes' : 'no'))],
    ['Created', ...versions.map((v) => when(v.created_at))],
  ];
  const head = [h('span', { class: 'visually-hidden' }, 'Measure'), ...versions.map((v) => (v.model_version === selected ? h('span', null, v.model_version, ' (shown)') : h('a', { href: `#/models/${encodeURIComponent(name)}/${encodeURIComponent(v.model_version)}` }, v.model_version)))];
  return table('Versions side by side', head, rows, { rowHeaders: true, cls: 'side' });
}

function deploymentsTable(ctx, name, deployments, after) {
  if (!deployments.length) return h('p', null, 'Not deployed. Deploy a READY version to call it for predictions.');
  return table('Deployments', ['Environment', 'Version', 'Status', 'Endpoint', 'Since', h('span', { class: 'visually-hidden' }, 'Action')], deployments.map((d) => [
    d.environment,
    d.model_version,
    h('span', { class: `badge status-${d.status.toLowerCase()}` }, d.status),
    h('code', null, d.endpoint),
    when(d.created_at),
    d.status === 'ACTIVE' ? ctx.gate(confirmButton('Undeploy', `Undeploy ${d.environment}`, async () => {
      try {
        await del(`/models/${seg(name)}/deployments/${seg(d.deployment_id)}`);
        await after(`Undeployed ${d.model_version} from ${d.environment}.`);
      } catch (e) {
        await after(null, e);
      }
    }), 'write') : '',
  ]), { rowHeaders: true });
}

export async function page(ctx, name, label) {
  const { main } = ctx;
  const model = await get(`/models/${seg(name)}`, { signal: ctx.signal });
  const selected = label || model.latest_version;
  append(main, [
    h('h1', null, model.model_name),
    model.name !== model.model_name ? h('p', null, model.name) : null,
    h('p', { class: 'lead' }, '“', model.intent, '”'),
  ]);
  const versionBox = h('section', { class: 'card', 'aria-labelledby': 'version-h' });
  const versionsBox = h('div');
  const deploymentsBox = h('div');
  const deployStatus = h('div', { 'aria-live': 'polite', tabindex: -1 });
  async function refresh(message, err) {
    const [{ versions }, { deployments }] = await Promise.all([
      get(`/models/${seg(name)}/versions?limit=10`, { signal: ctx.signal }),
      get(`/models/${seg(name)}/deployments?limit=100`, { signal: ctx.signal }),
    ]);
    clear(versionsBox).append(versionsTable(name, versions, selected));
    clear(deploymentsBox).append(deploymentsTable(ctx, name, deployments, async (m, e) => {
      clear(deployStatus);
      if (e) deployStatus.append(ctx.error(e));
      else await refresh(m);
    }));
    clear(deployStatus);
    if (message) deployStatus.append(h('p', { role: 'status' }, message));
    if (err) deployStatus.append(ctx.error(err));
  }
  main.append(
    versionBox,
    h('section', { 'aria-labelledby': 'versions-h' }, h('h2', { id: 'versions-h' }, 'Versions side by side'), versionsBox),
    h('section', { 'aria-labelledby': 'deployments-h' }, h('h2', { id: 'deployments-h' }, 'Deployments'), deployStatus, deploymentsBox),
  );
  await refresh();
  if (!selected) {
    versionBox.append(h('h2', { id: 'version-h' }, 'No version yet'));
    return;
  }
  await versionView(ctx, name, selected, versionBox, () => refresh());
}
