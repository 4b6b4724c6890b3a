// The Plexe Console in a real browser (Debian's Chromium, driven by playwright-core): a whole
// flow against a fresh `plexe serve` — sign in by keyboard, upload (drag and drop, and an
// upload session for a file over 6 MB), see the plan, build, see the charts, deploy, download
// the ONNX file, predict one row (with a field error first) and a CSV, create a read-only key,
// see what it may not do, revoke it — with axe-core on every page, a 375 px viewport check
// (no sideways scrolling) and a keyboard check (every control reached by Tab, focus visible).
// Screenshots go to $SCREENSHOT_DIR. Run by run.sh, which sets the environment.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const BIN = process.env.PLEXE_BIN;
const DATASETS = process.env.PLEXE_DATASETS_DIR;
const SHOTS = process.env.SCREENSHOT_DIR;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TITANIC = path.join(DATASETS, 'titanic.csv');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'plexe-console-'));
const dataDir = path.join(tmp, 'data');
let server;
let base;
let adminKey;
let context;
let page;
const report = { axe: {}, viewport: {}, keyboard: {}, todo: [] };
const cspViolations = [];
const pageErrors = [];

function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(BIN, ['serve', '--port', '0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
    const timer = setTimeout(() => reject(new Error('plexe serve did not say where it listens within 30 s')), 30_000);
    server.on('exit', (code) => reject(new Error(`plexe serve exited with ${code}`)));
    server.stderr.on('data', (d) => process.stderr.write(`[plexe] ${d}`));
    createInterface({ input: server.stdout }).on('line', (line) => {
      const m = line.match(/plexe listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        adminKey = fs.readFileSync(path.join(dataDir, 'admin.key'), 'utf8').trim();
        resolve(m[1]);
      }
    });
  });
}

before(async () => {
  assert.ok(BIN && fs.existsSync(BIN), `no plexe binary at ${BIN}`);
  assert.ok(fs.existsSync(TITANIC), `no ${TITANIC}`);
  fs.mkdirSync(SHOTS, { recursive: true });
  base = await startServer();
  context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(20_000);
  page.on('console', (msg) => {
    if (/Content.Security.Policy|Refused to/i.test(msg.text())) cspViolations.push(msg.text());
  });
  page.on('pageerror', (err) => pageErrors.push(String(err)));
});

after(async () => {
  if (context) await context.close();
  if (server) server.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`console report: ${JSON.stringify(report)}`);
});

/** Waits for the shell of a signed-in console and its first page. */
async function signedIn() {
  await page.waitForSelector('#nav:not([hidden])');
  await page.waitForSelector('main#main[data-rendered^="#/"]:not([aria-busy]) h1');
}

/**
 * Waits until the page at `hash` (default: the current one) is drawn: the router marks the
 * main column busy while a page loads and names the page it drew in `data-rendered`.
 */
async function settled(hash) {
  const want = hash || (await page.evaluate(() => location.hash || '#/datasets'));
  await page.waitForFunction((h) => {
    const main = document.getElementById('main');
    return main.dataset.rendered === h && !main.hasAttribute('aria-busy') && main.querySelector('h1');
  }, want);
}

async function go(hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
  await settled(hash);
}

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** axe-core on the page as it is: no serious or critical violation. */
async function axe(name) {
  const loaded = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!loaded) await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, target: v.nodes[0] && v.nodes[0].target.join(' '), summary: v.nodes[0] && v.nodes[0].failureSummary }));
  });
  report.axe[name] = result.map((v) => `${v.impact}:${v.id}`);
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `axe on ${name}: ${JSON.stringify(bad, null, 1)}`);
}

/** At 375 px wide nothing scrolls sideways (tables scroll inside their own regions). */
async function narrow(name, hash) {
  await page.setViewportSize({ width: 375, height: 800 });
  if (hash) await go(hash);
  // Drawn afresh at this width (charts are sized when drawn).
  await page.reload();
  await (hash ? settled() : page.waitForSelector('#api-key'));
  const widths = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, view: window.innerWidth }));
  report.viewport[name] = widths.doc;
  await shot(`${name}-375`);
  await page.setViewportSize({ width: 1280, height: 900 });
  assert.ok(widths.doc <= widths.view && widths.body <= widths.view, `${name} scrolls sideways at 375 px: ${JSON.stringify(widths)}`);
}

/** Tab from the top reaches every visible, enabled control, each with a visible focus ring. */
async function keyboard(name) {
  const count = await page.evaluate(() => {
    const sel = 'a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex="-1"])';
    let n = 0;
    for (const el of document.querySelectorAll(sel)) {
      el.removeAttribute('data-kb');
      const hidden = !el.checkVisibility({ visibilityProperty: true }) && !el.classList.contains('skip');
      if (el.disabled || el.closest('[inert]') || el.getAttribute('tabindex') === '-1' || hidden) continue;
      if (el.type === 'radio') continue;
      el.setAttribute('data-kb', String(n));
      n += 1;
    }
    document.activeElement && document.activeElement.blur();
    window.scrollTo(0, 0);
    return n;
  });
  await page.evaluate(() => document.body.focus());
  const reached = new Set();
  const invisible = [];
  for (let i = 0; i < count + 5 && reached.size < count; i += 1) {
    await page.keyboard.press('Tab');
    const info = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const style = getComputedStyle(el);
      const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== 'none';
      return { kb: el.getAttribute('data-kb'), ring, what: `${el.tagName.toLowerCase()}#${el.id || ''} ${(el.textContent || el.getAttribute('aria-label') || '').trim().slice(0, 30)}` };
    });
    if (!info) continue;
    if (info.kb !== null) reached.add(info.kb);
    if (!info.ring) invisible.push(info.what);
  }
  report.keyboard[name] = `${reached.size}/${count}`;
  assert.equal(reached.size, count, `${name}: Tab reached ${reached.size} of ${count} controls`);
  assert.deepEqual(invisible, [], `${name}: focus not visible on ${invisible.join(', ')}`);
}

async function page_checks(name, hash) {
  await go(hash);
  await shot(name);
  await axe(name);
  await keyboard(name);
  await narrow(name, hash);
}

function csvRows(file, rows) {
  return fs.readFileSync(file, 'utf8').split('\n').slice(0, rows + 1).join('\n') + '\n';
}

test('the console', { timeout: 240_000 }, async (t) => {
  const started = Date.now();
  let datasetId;

  await t.test('is served with strict headers, cached by build, small', async () => {
    const res = await fetch(`${base}/console`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy');
    for (const part of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"]) {
      assert.ok(csp.includes(part), `CSP lacks ${part}: ${csp}`);
    }
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    const html = await res.text();
    const assets = [...html.matchAll(/(?:href|src)="(\/console\/[0-9a-f]+\/[^"]+)"/g)].map((m) => m[1]);
    assert.equal(assets.length, 2, `the page names ${assets}`);
    // Everything the first load fetches: the page, the style sheet and every module it imports.
    const seen = new Map([['/console', html]]);
    const queue = [...assets];
    while (queue.length) {
      const url = queue.shift();
      if (seen.has(url)) continue;
      const r = await fetch(base + url);
      assert.equal(r.status, 200, url);
      assert.match(r.headers.get('cache-control'), /immutable/);
      const text = await r.text();
      seen.set(url, text);
      for (const m of text.matchAll(/^import .*?'\.\/([^']+)';$/gm)) queue.push(url.replace(/[^/]+$/, m[1]));
    }
    const raw = [...seen.values()].reduce((n, s) => n + Buffer.byteLength(s), 0);
    const gz = [...seen.values()].reduce((n, s) => n + zlib.gzipSync(s, { level: 9 }).length, 0);
    report.firstLoad = { files: seen.size, bytes: raw, gzipBytes: gz };
    assert.ok(raw <= 200 * 1024, `first load is ${raw} bytes`);
    const missing = await fetch(`${base}${assets[0].replace(/[^/]+$/, 'nope.js')}`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.code, 'not_found');
  });

  await t.test('signs in by keyboard and navigates by keyboard', async () => {
    await page.goto(`${base}/console`);
    await page.waitForSelector('#api-key');
    await shot('signin');
    await axe('signin');
    await keyboard('signin');
    await narrow('signin', '');
    await page.goto(`${base}/console`);
    await page.waitForSelector('#api-key:focus');
    await page.keyboard.type('plx_not_a_key');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.signin .error');
    await page.fill('#api-key', '');
    await page.focus('#api-key');
    await page.keyboard.type(adminKey);
    await page.keyboard.press('Enter');
    await signedIn();
    assert.equal(await page.textContent('h1'), 'Datasets');
    assert.ok(await page.isVisible('#nav'));
    // Tab to the "Models" link and follow it with Enter.
    let onModels = false;
    for (let i = 0; i < 15 && !onModels; i += 1) {
      await page.keyboard.press('Tab');
      onModels = await page.evaluate(() => document.activeElement && document.activeElement.textContent === 'Models');
    }
    assert.ok(onModels, 'Tab never reached the Models link');
    await page.keyboard.press('Enter');
    await settled('#/models');
    assert.equal(await page.textContent('h1'), 'Models');
    assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1', 'focus moves to the new page’s heading');
  });

  await t.test('uploads a dataset by drag and drop and shows its profile', async () => {
    await go('#/datasets');
    const csv = fs.readFileSync(TITANIC, 'utf8');
    await page.evaluate(() => {
      window.progressSeen = [];
      new MutationObserver(() => {
        const bar = document.getElementById('upload-progress');
        if (bar) window.progressSeen.push(Number(bar.value));
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['value', 'hidden'] });
    });
    const transfer = await page.evaluateHandle((text) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], 'titanic.csv', { type: 'text/csv' }));
      return dt;
    }, csv);
    await page.dispatchEvent('#drop-zone', 'dragenter', { dataTransfer: transfer });
    await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: transfer });
    await page.waitForFunction(() => location.hash.startsWith('#/datasets/ds_'));
    await settled();
    datasetId = decodeURIComponent(await page.evaluate(() => location.hash.slice('#/datasets/'.length)));
    const seen = await page.evaluate(() => window.progressSeen);
    assert.ok(seen.includes(100), `progress bar never reached 100: ${seen}`);
    assert.equal(await page.textContent('h1'), 'titanic.csv');
    assert.equal(await page.locator('article.column').count(), 6);
    assert.ok(await page.locator('article.column figure.chart svg[role="img"]').count() >= 5, 'a chart per column');
    const age = page.locator('article.column').filter({ has: page.locator('h3', { hasText: /^age/ }) });
    assert.match(await age.textContent(), /263 of 1,309 \(20\.1%\)/);
    assert.equal(await age.locator('figure.chart .axis-title').count(), 2, 'the histogram has two axis titles');
    assert.equal(await page.locator('table.preview tbody tr').count(), 20);
  });

  await t.test('uploads a file over 6 MB through an upload session, with progress', async () => {
    const header = fs.readFileSync(TITANIC, 'utf8').split('\n')[0];
    const body = fs.readFileSync(TITANIC, 'utf8').split('\n').slice(1).filter(Boolean).join('\n');
    const big = path.join(tmp, 'titanic-big.csv');
    const copies = Math.ceil((6.3 * 1024 * 1024) / body.length);
    fs.writeFileSync(big, `${header}\n${Array(copies).fill(body).join('\n')}\n`);
    await go('#/datasets');
    await page.evaluate(() => {
      window.progressSeen = [];
      new MutationObserver(() => {
        const bar = document.getElementById('upload-progress');
        if (bar) window.progressSeen.push(Number(bar.value));
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['value'] });
    });
    const sessions = [];
    page.on('request', (r) => {
      if (r.url().includes('/datasets/uploads') || r.url().includes('/uploads/')) sessions.push(`${r.method()} ${new URL(r.url()).pathname.replace(/\/uploads\/[^/]+$/, '/uploads/…')}`);
    });
    await page.fill('#upload-name', 'titanic-big');
    await page.setInputFiles('#upload-file', big);
    await page.waitForFunction(() => location.hash.startsWith('#/datasets/ds_'), null, { timeout: 60_000 });
    await settled();
    assert.equal(await page.textContent('h1'), 'titanic-big');
    assert.ok(sessions.some((s) => s.startsWith('POST') && s.endsWith('/datasets/uploads')), `no session: ${sessions}`);
    assert.ok(sessions.some((s) => s.startsWith('PUT')), `no PUT: ${sessions}`);
    assert.ok(sessions.some((s) => s.endsWith('/complete')), `no complete: ${sessions}`);
    const seen = await page.evaluate(() => window.progressSeen);
    assert.ok(seen.includes(100), `progress never reached 100: ${seen}`);
  });

  await t.test('shows the plan before the build, and builds', async () => {
    await go(`#/models/new?dataset=${encodeURIComponent(datasetId)}`);
    await page.fill('#m-name', 'titanic');
    await page.fill('#m-intent', 'predict something');
    await page.click('summary');
    await page.fill('#m-budget', '10');
    await page.click('button:text("Show the plan")');
    const outcome = await page.waitForSelector('.candidates, .notice, #plan-target, .error');
    const kind = await outcome.evaluate((el) => el.className || el.id);
    if (kind === 'notice') {
      report.todo.push('TODO(plan route): POST /models/{name}/plan is not on this server yet; the plan assertions (target, task, candidates) were skipped');
      console.log(`# ${report.todo.at(-1)}`);
      await page.fill('#m-intent', 'predict whether a passenger survived');
      await page.click('button:text("Show the plan")');
      await page.waitForSelector('.notice');
    } else {
      // An unclear intent: the 422's message, and the columns to pick from.
      await page.waitForSelector('.candidates button');
      assert.ok(await page.isVisible('.error[role="alert"]'));
      assert.ok(await page.locator('.candidates button:text-is("survived")').count() === 1);
      await shot('new-model-candidates');
      await page.fill('#m-intent', 'predict whether a passenger survived');
      await page.click('button:text("Show the plan")');
      await page.waitForSelector('#plan-target');
      assert.equal(await page.textContent('#plan-target'), 'survived');
      assert.equal(await page.textContent('#plan-task'), 'binary classification');
    }
    await shot('new-model');
    await axe('new-model');
    await keyboard('new-model');
    assert.ok(await page.isEnabled('#m-build'));
    await page.evaluate(() => {
      window.liveBuild = { bar: false, logLines: 0 };
      new MutationObserver(() => {
        if (document.getElementById('build-progress')) window.liveBuild.bar = true;
        const log = document.querySelectorAll('#build-log li').length;
        if (document.getElementById('build-progress')) window.liveBuild.logLines = Math.max(window.liveBuild.logLines, log);
      }).observe(document.body, { subtree: true, childList: true });
    });
    await page.click('#m-build');
    await page.waitForFunction(() => location.hash === '#/models/titanic/v1.0');
    await settled();
  });

  await t.test('follows the build live and shows the charts', async () => {
    await page.waitForSelector('#build-log li, #build-progress, table.side', { timeout: 30_000 });
    await page.waitForSelector('#deploy-version', { timeout: 120_000 });
    const live = await page.evaluate(() => window.liveBuild);
    assert.ok(live.bar, 'the build was followed live, with a progress bar');
    report.liveLogLines = live.logLines;
    assert.ok(await page.locator('#build-log li').count() > 3, 'log lines shown');
    const captions = await page.locator('figure.chart figcaption').allTextContents();
    assert.ok(captions.includes('Feature importance'), `charts: ${captions}`);
    assert.ok(captions.some((c) => c.startsWith('Leaderboard')), `charts: ${captions}`);
    for (const fig of await page.locator('figure.chart svg').all()) {
      assert.ok(await fig.locator('.axis-title').count() >= 1, 'every chart has an axis title');
    }
    if (await page.locator('.notice:text("no holdout evaluation")').count()) {
      report.todo.push('TODO(evaluation): describe has no `evaluation` field on this server yet; the confusion-matrix assertion was skipped');
      console.log(`# ${report.todo.at(-1)}`);
    } else {
      assert.equal(await page.locator('table.confusion tbody tr').count(), 2);
      assert.ok(captions.some((c) => c.startsWith('Confusion matrix')));
    }
    assert.ok(await page.locator('table.side').count() === 1, 'versions side by side');
    await shot('model');
    await axe('model');
    await keyboard('model');
  });

  await t.test('deploys and downloads the ONNX file', async () => {
    await page.click('#deploy-version');
    await page.waitForSelector('text=Deployed v1.0 to production');
    await page.waitForSelector('table:has(th:text("Endpoint")) .status-active');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-artifact')]);
    const file = path.join(tmp, 'model.onnx');
    await download.saveAs(file);
    assert.equal(download.suggestedFilename(), 'titanic-v1.0.onnx');
    assert.ok(fs.statSync(file).size > 1000);
  });

  await t.test('predicts one row, with a field error shown at its field first', async () => {
    await page.click('main a.button:text-is("Predict")');
    await settled('#/predict/titanic/v1.0');
    await page.click('#fill-example');
    const age = page.locator('input[name="age"]');
    await age.fill('not a number');
    await page.click('#predict-form button[type="submit"]');
    await page.waitForSelector('input[name="age"][aria-invalid="true"]');
    const errId = await age.getAttribute('aria-describedby');
    assert.ok((await page.textContent(`#${errId}`)).length > 3, 'the field’s error is shown beside it');
    assert.equal(await page.evaluate(() => document.activeElement.name), 'age', 'focus goes to the field in error');
    await shot('predict-error');
    await axe('predict-error');
    await age.fill('29');
    await page.click('#predict-form button[type="submit"]');
    await page.waitForSelector('#prediction-result .result');
    assert.match(await page.textContent('#prediction-result'), /survived_probability/);
    assert.equal(await age.getAttribute('aria-invalid'), null);
    // Why: the base value, the fields' bars, and what they add up to.
    const why = await page.textContent('#prediction-why');
    assert.match(why, /Starting from -?[\d.]+, the average over the training rows/);
    assert.match(why, /log-odds of “/);
    const bars = await page.locator('#prediction-why svg rect.bar').count();
    assert.ok(bars >= 3, `a bar per field (got ${bars})`);
    await shot('predict-why');
    await axe('predict-why');
  });

  await t.test('predicts a CSV file and offers the answer as a file', async () => {
    const input = path.join(tmp, 'rows.csv');
    fs.writeFileSync(input, csvRows(TITANIC, 25));
    await page.setInputFiles('#batch-file', input);
    await page.click('button:text("Predict the file")');
    await page.waitForSelector('#batch-download');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#batch-download')]);
    const out = path.join(tmp, 'predicted.csv');
    await download.saveAs(out);
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(lines.length, 26);
    assert.match(lines[0], /survived_probability/);
    await shot('predict');
    await axe('predict');
    await keyboard('predict');
  });

  await t.test('undeploys, and follows a second version live beside the first', async () => {
    await go('#/models/titanic/v1.0');
    await page.click('button:text-is("Undeploy")');
    await page.click('button:text-is("Undeploy production")');
    await page.waitForSelector('text=Undeployed v1.0 from production.');
    assert.equal(await page.locator('table:has(th:text("Endpoint")) .status-undeployed').count(), 1);
    const retrain = await fetch(`${base}/v1/models/titanic/retrain`, { method: 'POST', headers: { Authorization: `Bearer ${adminKey}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ time_budget_s: 5 }) });
    assert.equal(retrain.status, 202, await retrain.text());
    await go('#/models/titanic');
    await page.waitForSelector('#download-artifact', { timeout: 120_000 });
    assert.match(await page.textContent('#version-h'), /Version v2\.0/);
    assert.equal(await page.locator('table.side thead th').count(), 3, 'a column per version');
    await shot('model-versions');
  });

  await t.test('creates a key with scopes, shows what it may not do, revokes it', async () => {
    await go('#/settings');
    assert.match(await page.textContent('#usage-text'), /unlimited/);
    await page.fill('#key-name', 'viewer');
    await page.check('#scope-read');
    await page.click('button:text("Create the key")');
    await page.waitForSelector('#new-key-secret');
    const secret = (await page.textContent('#new-key-secret')).trim();
    assert.ok(secret.length > 20);
    await page.click('#copy-key');
    await shot('settings-new-key');
    await axe('settings');
    await keyboard('settings');
    await page.click('button:text("Done, hide it")');
    assert.equal(await page.locator('#new-key-secret').count(), 0, 'the secret is gone once dismissed');

    // Signed in with the read-only key, writing is shown disabled with the reason.
    await page.click('button:text("Sign out")');
    await page.waitForSelector('#api-key');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'signing out forgets the key');
    await page.fill('#api-key', secret);
    await page.press('#api-key', 'Enter');
    await signedIn();
    await go('#/datasets');
    assert.ok(await page.isDisabled('#upload-file'));
    assert.match(await page.textContent('.reason'), /Needs a key with the “write” scope.*this key has: read/);
    await shot('datasets-read-only');
    await axe('datasets-read-only');
    await go('#/models/titanic/v1.0');
    assert.ok(await page.isDisabled('#deploy-version'));
    await go('#/settings');
    assert.match(await page.textContent('.reason'), /“admin” scope/);

    // A key without `read` is told so on the pages that only show things; once revoked
    // (here through the API), the next call signs the tab out with the server's message.
    const caller = await (await fetch(`${base}/v1/api-keys`, { method: 'POST', headers: { Authorization: `Bearer ${adminKey}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'caller', scopes: ['predict'] }) })).json();
    await page.click('button:text("Sign out")');
    await page.fill('#api-key', caller.api_key);
    await page.press('#api-key', 'Enter');
    await signedIn();
    await go('#/datasets');
    assert.match(await page.textContent('main .reason'), /This page needs a key with the “read” scope.*this key has: predict/);
    await fetch(`${base}/v1/api-keys/${caller.key_id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${adminKey}` } });
    await page.evaluate(() => {
      location.hash = '#/settings';
    });
    await page.waitForSelector('#api-key');
    assert.match(await page.textContent('.signin .error'), /Sign in again/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);

    await page.fill('#api-key', adminKey);
    await page.press('#api-key', 'Enter');
    await signedIn();
    await go('#/settings');
    await page.click('button:text("Revoke viewer")');
    await page.click('button:text("Revoke viewer for good")');
    await page.waitForSelector('text=it is refused from now on');
    const me = await fetch(`${base}/me`, { headers: { Authorization: `Bearer ${secret}` } });
    assert.equal(me.status, 401);
  });

  await t.test('draws predicted against actual and residuals for a regression model', async () => {
    const auth = { Authorization: `Bearer ${adminKey}` };
    const up = await fetch(`${base}/v1/datasets?name=diabetes`, { method: 'POST', headers: { ...auth, 'Content-Type': 'text/csv' }, body: fs.readFileSync(path.join(DATASETS, 'diabetes.csv')) });
    assert.equal(up.status, 201);
    const { dataset_id: id } = await up.json();
    const build = await fetch(`${base}/v1/models/diabetes`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ intent: 'predict the disease progression', dataset_id: id, time_budget_s: 5 }) });
    assert.equal(build.status, 202, await build.text());
    await go('#/models/diabetes/v1.0');
    await page.waitForSelector('#download-artifact', { timeout: 120_000 });
    const captions = await page.locator('figure.chart figcaption').allTextContents();
    assert.ok(captions.some((c) => c.startsWith('Leaderboard')), `charts: ${captions}`);
    assert.match(await page.textContent('main'), /lower is better/);
    if (await page.locator('.notice:text("no holdout evaluation")').count()) {
      report.todo.push('TODO(evaluation): no `evaluation` in describe; the scatter and residual-histogram assertions were skipped');
      console.log(`# ${report.todo.at(-1)}`);
    } else {
      assert.ok(captions.some((c) => c.startsWith('Predicted against actual progression')), `charts: ${captions}`);
      assert.ok(captions.some((c) => c.startsWith('Residuals of progression')), `charts: ${captions}`);
      assert.ok(await page.locator('svg .points circle').count() > 10);
    }
    await shot('model-regression');
    await axe('model-regression');
    await narrow('model-regression', '#/models/diabetes/v1.0');
  });

  await t.test('shows a basic account its requests this minute against its limit', async () => {
    const made = JSON.parse(execFileSync(BIN, ['admin', 'create-account', '--name', 'small-co', '--tier', 'basic', '--json', '--data-dir', dataDir], { encoding: 'utf8' }));
    await page.click('button:text("Sign out")');
    await page.fill('#api-key', made.api_key);
    await page.press('#api-key', 'Enter');
    await signedIn();
    await go('#/settings');
    assert.match(await page.textContent('#usage-text'), /^\d+ of 100 requests used in this 60 s window \(tier basic\)/);
    assert.ok(await page.locator('meter').count() === 1);
    await shot('settings-basic');
    await axe('settings-basic');
    await page.click('button:text("Sign out")');
    await page.fill('#api-key', adminKey);
    await page.press('#api-key', 'Enter');
    await signedIn();
  });

  await t.test('every page: axe, keyboard, 375 px', async () => {
    await page_checks('datasets', '#/datasets');
    await page_checks('dataset', `#/datasets/${encodeURIComponent(datasetId)}`);
    await page_checks('models', '#/models');
    await narrow('new-model', `#/models/new?dataset=${encodeURIComponent(datasetId)}`);
    await narrow('model', '#/models/titanic/v1.0');
    await page_checks('predict-pick', '#/predict');
    await narrow('predict', '#/predict/titanic/v1.0');
    await narrow('settings', '#/settings');
  });

  await t.test('broke no Content-Security-Policy rule and threw nothing', () => {
    assert.deepEqual(cspViolations, []);
    assert.deepEqual(pageErrors, []);
    report.seconds = Math.round((Date.now() - started) / 1000);
  });
});
