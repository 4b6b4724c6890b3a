// Datasets: upload (drag and drop or a file picker, with progress), the list, and one
// dataset's column profiles and first rows.

import { ApiError, BASE, del, get, post, send, seg } from './api.js';
import { bars, binned, histogram } from './charts.js';
import { append, bytes, clear, confirmButton, facts, h, num, pct, s, table, when } from './dom.js';

/** Direct uploads up to this size (the API's body limit); larger files go through a session. */
const DIRECT_LIMIT = 6 * 1024 * 1024;

function formatOf(file) {
  const name = file.name.toLowerCase();
  if (name.endsWith('.parquet') || name.endsWith('.pq')) return 'parquet';
  return 'csv';
}

const TYPES = { csv: 'text/csv', parquet: 'application/vnd.apache.parquet' };

/**
 * Uploads `file` and resolves to the dataset: one `POST /datasets` when it fits the body
 * limit, else an upload session (create, `PUT` to its URL, complete).
 */
export async function upload(file, name, progress) {
  const format = formatOf(file);
  if (file.size <= DIRECT_LIMIT) {
    progress(0, 'Uploading');
    const url = `${BASE}/datasets?name=${encodeURIComponent(name)}`;
    const dataset = await send({ method: 'POST', url, file, type: TYPES[format], auth: true, onProgress: (p) => progress(p, p < 1 ? 'Uploading' : 'Reading and profiling') });
    return dataset;
  }
  progress(0, 'Starting an upload session');
  const session = await post('/datasets/uploads', { name, format, size_bytes: file.size });
  if (new URL(session.upload_url, location.href).origin !== location.origin) {
    throw new ApiError(0, null, `This server hands out upload URLs on another origin (${new URL(session.upload_url).origin}), which this console may not send files to. Upload files over 6 MB with the API (POST /datasets/uploads, then PUT the file to upload_url).`);
  }
  await send({ method: session.method || 'PUT', url: session.upload_url, file, onProgress: (p) => progress(p, 'Uploading') });
  progress(1, 'Reading and profiling');
  return post(`/datasets/uploads/${seg(session.upload_id)}/complete`, {});
}

function uploader(ctx) {
  const fileInput = h('input', { type: 'file', id: 'upload-file', accept: '.csv,.parquet,text/csv,application/vnd.apache.parquet' });
  const nameInput = h('input', { type: 'text', id: 'upload-name', autocomplete: 'off', 'aria-describedby': 'upload-name-help' });
  const bar = h('progress', { max: 100, value: 0, id: 'upload-progress', 'aria-label': 'Upload progress' });
  const state = h('p', { class: 'progress-text', 'aria-live': 'polite' });
  const progressBox = h('div', { class: 'progress', hidden: true }, bar, state);
  const status = h('div');
  const zone = h('div', { class: 'drop', id: 'drop-zone' },
    h('p', { class: 'drop-title' }, 'Drop a CSV or Parquet file here'),
    h('p', null, h('label', { for: 'upload-file' }, 'or choose a file: '), fileInput),
    h('p', { class: 'help' }, 'Up to 6 MB in one request; larger files (up to 500 MB) go through an upload session.'));
  const box = h('section', { class: 'card', 'aria-labelledby': 'upload-h' },
    h('h2', { id: 'upload-h' }, 'Upload a dataset'),
    h('div', { class: 'field' }, h('label', { for: 'upload-name' }, 'Name (optional)'), nameInput,
      h('p', { class: 'help', id: 'upload-name-help' }, 'Defaults to the file’s name.')),
    zone, progressBox, status);

  async function start(file) {
    if (!file) return;
    clear(status);
    progressBox.hidden = false;
    fileInput.disabled = true;
    const show = (share, words) => {
      bar.value = Math.round(share * 100);
      state.textContent = `${words}… ${Math.round(share * 100)}% of ${bytes(file.size)}`;
    };
    try {
      const dataset = await upload(file, nameInput.value.trim() || file.name, show);
      bar.value = 100;
      state.textContent = `Uploaded: ${dataset.name}, ${num(dataset.row_count)} rows.`;
      location.hash = `#/datasets/${encodeURIComponent(dataset.dataset_id)}`;
    } catch (e) {
      progressBox.hidden = true;
      status.append(ctx.error(e));
    } finally {
      fileInput.disabled = false;
      fileInput.value = '';
    }
  }
  fileInput.addEventListener('change', () => start(fileInput.files[0]));
  if (ctx.can('write')) {
    for (const type of ['dragenter', 'dragover']) {
      zone.addEventListener(type, (ev) => {
        ev.preventDefault();
        zone.classList.add('over');
      });
    }
    for (const type of ['dragleave', 'drop']) zone.addEventListener(type, () => zone.classList.remove('over'));
    zone.addEventListener('drop', (ev) => {
      ev.preventDefault();
      start(ev.dataTransfer && ev.dataTransfer.files[0]);
    });
  }
  return ctx.gate(box, 'write');
}

export async function list(ctx) {
  const { main } = ctx;
  append(main, [h('h1', null, 'Datasets'), uploader(ctx)]);
  const section = h('section', { 'aria-labelledby': 'ds-h' }, h('h2', { id: 'ds-h' }, 'Your datasets'), h('p', null, 'Loading…'));
  main.append(section);
  const { datasets, pagination } = await get('/datasets?limit=100', { signal: ctx.signal });
  section.lastChild.remove();
  if (!datasets.length) {
    section.append(h('p', null, 'No dataset yet: upload a CSV or Parquet file above.'));
    return;
  }
  section.append(table('Datasets', ['Name', 'Rows', 'Columns', 'Size', 'Uploaded'],
    datasets.map((d) => [h('a', { href: `#/datasets/${encodeURIComponent(d.dataset_id)}` }, d.name), num(d.row_count), num(d.columns.length), bytes(d.size_bytes), when(d.created_at)]),
    { rowHeaders: true }));
  if (pagination.has_more) section.append(h('p', { class: 'help' }, `Showing the newest ${datasets.length} of ${num(pagination.total)}.`));
}

/** One column's profile: type, missing share, and its values (top values or a histogram). */
function columnCard(col, rowCount, sample) {
  const missing = rowCount ? col.missing / rowCount : 0;
  const numeric = col.type === 'integer' || col.type === 'float';
  const pairs = [
    ['Type', col.type],
    ['Missing', `${num(col.missing)} of ${num(rowCount)} (${pct(missing)})`],
    ['Distinct', num(col.unique)],
  ];
  if (col.min !== undefined) pairs.push(['Min', num(col.min)]);
  if (col.max !== undefined) pairs.push(['Max', num(col.max)]);
  if (col.mean !== undefined && col.mean !== null) pairs.push(['Mean', num(col.mean)]);
  const missingBar = s('svg', { class: 'share-bar', viewBox: '0 0 100 6', preserveAspectRatio: 'none', 'aria-hidden': 'true', focusable: 'false' },
    s('rect', { x: 0, y: 0, width: 100, height: 6, class: 'track' }),
    s('rect', { x: 0, y: 0, width: missing * 100, height: 6, class: 'fill' }));
  let chart = () => null;
  if (col.top_values && col.top_values.length) {
    chart = (width) => bars({
      title: `Most frequent values of ${col.name}`,
      items: col.top_values.map((v) => ({ label: v.value === null ? '(missing)' : String(v.value), value: v.count })),
      axis: 'rows (count)',
      width,
    });
  } else if (numeric && sample.length) {
    const values = sample.map((r) => r[col.name]);
    const bins = binned(values, Math.min(10, Math.max(4, Math.ceil(Math.sqrt(values.length)))));
    if (bins.length) {
      chart = (width) => histogram({ title: `Distribution of ${col.name} in the first ${sample.length} rows`, bins, xAxis: `${col.name} (value)`, yAxis: 'rows (count)', width, height: 180 });
    }
  }
  const card = h('article', { class: 'card column' },
    h('h3', null, col.name, ' ', h('span', { class: `badge type-${col.type}` }, col.type)),
    missingBar,
    facts(pairs));
  // The chart is drawn once the card is in the page, at the card's own width.
  return {
    card,
    drawChart() {
      const drawn = chart(Math.max(200, card.clientWidth - 34));
      if (drawn) card.append(drawn);
    },
  };
}

export async function detail(ctx, datasetId) {
  const { main } = ctx;
  const heading = h('h1', null, 'Dataset');
  append(main, [heading, h('p', null, 'Loading…')]);
  const [dataset, preview] = await Promise.all([
    get(`/datasets/${seg(datasetId)}`, { signal: ctx.signal }),
    get(`/datasets/${seg(datasetId)}/preview?limit=100`, { signal: ctx.signal }),
  ]);
  main.lastChild.remove();
  heading.textContent = dataset.name;
  const actions = h('div', { class: 'actions' },
    ctx.gate(h('a', { class: 'button primary', href: `#/models/new?dataset=${encodeURIComponent(dataset.dataset_id)}` }, 'New model from this dataset'), 'write'),
    ctx.gate(confirmButton('Delete dataset', 'Delete it for good', async () => {
      try {
        await del(`/datasets/${seg(dataset.dataset_id)}`);
        location.hash = '#/datasets';
      } catch (e) {
        actions.after(ctx.error(e));
      }
    }), 'write'));
  append(main, [
    facts([
      ['Id', h('code', null, dataset.dataset_id)],
      ['Rows', num(dataset.row_count)],
      ['Columns', num(dataset.columns.length)],
      ['Format', dataset.format],
      ['Size', bytes(dataset.size_bytes)],
      ['SHA-256', h('code', { class: 'hash' }, dataset.sha256)],
      ['Uploaded', when(dataset.created_at)],
    ]),
    actions,
  ]);
  const grid = h('div', { class: 'cards' });
  main.append(h('section', { 'aria-labelledby': 'cols-h' }, h('h2', { id: 'cols-h' }, 'Columns'), grid));
  const cards = dataset.columns.map((col) => columnCard(col, dataset.row_count, preview.rows));
  for (const { card } of cards) grid.append(card);
  for (const { drawChart } of cards) drawChart();
  const shown = preview.rows.slice(0, 20);
  main.append(h('section', { 'aria-labelledby': 'preview-h' },
    h('h2', { id: 'preview-h' }, 'First rows'),
    h('p', { class: 'help' }, `The first ${shown.length} of ${num(dataset.row_count)} rows; empty cells are missing values.`),
    table(`First rows of ${dataset.name}`, preview.columns, shown.map((r) => preview.columns.map((c) => (r[c] === null || r[c] === undefined ? '' : String(r[c])))), { cls: 'preview' })));
}

