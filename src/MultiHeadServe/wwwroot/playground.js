// The playground: one page over the service's own API (no libraries, no network beyond this service).
// Predict: an image (upload, drop or drawing) or entity keys / named features, every head shown, the box drawn.
// Evaluate: move α of L = α·L_a + (1 − α)·L_b and watch the combined loss and each head's loss.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { models: [], details: {}, examples: null, model: null, image: null, evaluateTimer: 0, evaluateSeq: 0 };

function headers(extra) {
  const h = Object.assign({}, extra);
  const key = $('api-key').value.trim();
  if (key) h['X-Api-Key'] = key;
  return h;
}

async function call(method, path, body, contentType) {
  const started = performance.now();
  const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': contentType || 'application/json' }) };
  if (body !== undefined) init.body = typeof body === 'string' || body instanceof Blob ? body : JSON.stringify(body);
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  const roundTrip = performance.now() - started;
  if (!response.ok) {
    const problem = json || {};
    const message = (problem.title ? problem.title + ': ' : '') + (problem.detail || problem.error || text || response.statusText) +
      (problem.field ? ` (field: ${problem.field})` : '');
    const error = new Error(`${response.status} ${message}`);
    error.json = json;
    throw error;
  }
  return { json, roundTrip };
}

function showError(id, error) {
  const element = $(id);
  element.textContent = error ? String(error.message || error) : '';
  element.hidden = !error;
}

function format(value, digits = 4) {
  if (typeof value !== 'number') return String(value);
  if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e5)) return value.toExponential(3);
  return value.toFixed(digits);
}

function timingsText(timings, roundTrip) {
  if (!timings) return `round trip ${roundTrip.toFixed(1)} ms`;
  return `fetch ${timings.fetchMs} ms · queue ${timings.queueMs} ms · inference ${timings.inferenceMs} ms · ` +
    `batch of ${timings.batchRows} row(s) · round trip ${roundTrip.toFixed(1)} ms`;
}

// ---- models and examples ----

async function loadModels() {
  const { json } = await call('GET', 'v1/models');
  state.models = json.models;
  const select = $('model');
  select.replaceChildren(...state.models.map((m) => new Option(`${m.name} (${m.featureSource})`, m.name)));
  const wanted = new URLSearchParams(location.hash.slice(1)).get('model');
  const initial = state.models.find((m) => m.name === wanted) || state.models.find((m) => m.featureSource === 'image') || state.models[0];
  if (initial) {
    select.value = initial.name;
    await selectModel(initial.name);
  }
}

// The OpenAPI document's examples are the service's own valid bodies: entity keys that exist, labelled rows.
async function loadExamples() {
  try {
    const response = await fetch('swagger/v1/swagger.json');
    const document = await response.json();
    // Each body is written once, under components/examples, and referenced by the operations that show it.
    const prefix = '#/components/examples/';
    const shared = (e) => (e && typeof e.$ref === 'string' && e.$ref.startsWith(prefix)
      ? document.components.examples[e.$ref.slice(prefix.length)] : e);
    const examples = (path) => {
      const operation = document.paths[path] && document.paths[path].post;
      const content = operation && operation.requestBody && operation.requestBody.content['application/json'];
      return Object.entries((content && content.examples) || {}).map(([name, e]) => {
        const example = shared(e);
        return { name, model: example['x-model'], value: example.value };
      });
    };
    state.examples = { predict: examples('/v1/models/{model}/predict'), evaluate: examples('/v1/models/{model}/evaluate') };
  } catch {
    state.examples = { predict: [], evaluate: [] };
  }
}

async function modelDetail(name) {
  if (!state.details[name]) state.details[name] = (await call('GET', `v1/models/${encodeURIComponent(name)}`)).json;
  return state.details[name];
}

async function selectModel(name) {
  state.model = state.models.find((m) => m.name === name);
  history.replaceState(null, '', `#model=${encodeURIComponent(name)}`);
  $('model-description').textContent = state.model.description || '';
  $('prediction').hidden = true;
  showError('predict-error', null);
  showError('evaluate-error', null);
  const image = state.model.featureSource === 'image';
  $('image-input').hidden = !image;
  $('tabular-input').hidden = image;
  if (!image) await buildTabularForm();
  await prepareEvaluate();
}

// ---- tabular input ----

function rowsOf(value) {
  return Array.isArray(value.instances) ? value.instances : [value];
}

async function buildTabularForm() {
  const detail = await modelDetail(state.model.name);
  const features = detail.manifest.features;
  const form = $('tabular-form');
  const store = features.source === 'store';
  const names = store ? features.entities.map((e) => e.key) : features.columns;
  $('tabular-title').textContent = store ? 'Entity keys (features come from the feature store)' : 'Features';
  form.replaceChildren(...names.map((name) => {
    const label = document.createElement('label');
    label.textContent = name;
    const input = document.createElement('input');
    input.name = name;
    input.dataset.field = name;
    input.inputMode = store ? 'text' : 'decimal';
    label.append(input);
    return label;
  }));

  const rows = [];
  for (const example of (state.examples ? state.examples.predict : []).filter((e) => e.model === state.model.name)) {
    for (const row of rowsOf(example.value)) {
      const values = store ? row : row.features;
      if (!values || Array.isArray(values) || names.some((n) => !(n in values))) continue;
      const key = names.map((n) => values[n]).join('|');
      if (!rows.some((r) => r.key === key)) rows.push({ key, values });
    }
  }

  const chips = $('entity-examples');
  chips.replaceChildren(...rows.slice(0, 6).map((row, i) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'example';
    button.textContent = store ? names.map((n) => `${n}=${row.values[n]}`).join(', ') : `example ${i + 1}`;
    button.addEventListener('click', () => { fillForm(row.values); predictTabular(); });
    return button;
  }));
  if (rows.length) fillForm(rows[0].values);
}

function fillForm(values) {
  for (const input of $('tabular-form').querySelectorAll('input')) {
    input.value = values[input.name] ?? '';
  }
}

async function predictTabular() {
  const store = state.model.featureSource === 'store';
  const body = {};
  const named = {};
  for (const input of $('tabular-form').querySelectorAll('input')) {
    if (store) body[input.name] = input.value.trim();
    else named[input.name] = Number(input.value);
  }
  if (!store) body.features = named;
  await predict(JSON.stringify(body), 'application/json', null);
}

// ---- image input ----

async function predictImage(blob) {
  state.image = blob;
  await predict(blob, blob.type || 'image/png', URL.createObjectURL(blob));
}

function setUpImageInput() {
  $('image-file').addEventListener('change', (e) => { if (e.target.files[0]) predictImage(e.target.files[0]); });
  const zone = $('drop-zone');
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const file = [...e.dataTransfer.files].find((f) => f.type.startsWith('image/'));
    if (file) predictImage(file);
  });

  const canvas = $('draw-canvas');
  const context = canvas.getContext('2d');
  const clear = () => { context.fillStyle = $('draw-background').value; context.fillRect(0, 0, canvas.width, canvas.height); };
  clear();
  let last = null;
  const point = (e) => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height]; };
  canvas.addEventListener('pointerdown', (e) => { last = point(e); canvas.setPointerCapture(e.pointerId); draw(last); });
  canvas.addEventListener('pointermove', (e) => { if (last) { const p = point(e); draw(p); last = p; } });
  canvas.addEventListener('pointerup', () => { last = null; });
  function draw(p) {
    context.strokeStyle = context.fillStyle = $('draw-colour').value;
    context.lineWidth = Number($('draw-size').value);
    context.lineCap = context.lineJoin = 'round';
    context.beginPath();
    context.moveTo(last[0], last[1]);
    context.lineTo(p[0], p[1]);
    context.stroke();
  }
  $('draw-clear').addEventListener('click', clear);
  $('draw-background').addEventListener('change', clear);
  $('draw-predict').addEventListener('click', () => canvas.toBlob((blob) => predictImage(blob), 'image/png'));
}

// ---- prediction ----

async function predict(body, contentType, imageUrl) {
  showError('predict-error', null);
  try {
    const { json, roundTrip } = await call('POST', `v1/models/${encodeURIComponent(state.model.name)}/predict`, body, contentType);
    render(json, roundTrip, imageUrl);
  } catch (error) {
    $('prediction').hidden = true;
    showError('predict-error', error);
  }
}

function render(response, roundTrip, imageUrl) {
  const heads = response.heads || (response.predictions && response.predictions[0].heads) || {};
  const figure = $('image-figure');
  figure.hidden = !imageUrl;
  $('predicted-box').hidden = true;
  $('box-caption').textContent = '';
  const container = $('heads');
  container.replaceChildren();
  let box = null;
  let label = null;
  for (const [name, result] of Object.entries(heads)) {
    container.append(headCard(name, result));
    if (result.kind === 'bbox' && !box) box = { name, result };
    if (result.kind === 'classification' && !label) label = result;
  }
  if (imageUrl) {
    const image = $('predicted-image');
    image.onload = () => drawBox(box, label);
    image.src = imageUrl;
  }
  $('predict-timings').textContent = timingsText(response.timings, roundTrip);
  $('predict-json').textContent = JSON.stringify(response, null, 2);
  $('prediction').hidden = false;
}

function drawBox(box, label) {
  const element = $('predicted-box');
  if (!box) { element.hidden = true; return; }
  const image = $('predicted-image');
  const b = box.result.box;
  element.style.left = `${b.xMin * image.clientWidth + image.clientLeft}px`;
  element.style.top = `${b.yMin * image.clientHeight + image.clientTop}px`;
  element.style.width = `${(b.xMax - b.xMin) * image.clientWidth}px`;
  element.style.height = `${(b.yMax - b.yMin) * image.clientHeight}px`;
  element.replaceChildren();
  if (label) {
    const tag = document.createElement('span');
    tag.textContent = `${label.label} ${(label.probability * 100).toFixed(1)}%`;
    element.append(tag);
  }
  element.hidden = false;
  const p = box.result.pixels;
  $('box-caption').textContent = p
    ? `${box.name}: (${p.xMin.toFixed(1)}, ${p.yMin.toFixed(1)}) – (${p.xMax.toFixed(1)}, ${p.yMax.toFixed(1)}) px of ${image.naturalWidth}×${image.naturalHeight}`
    : `${box.name}: normalised (${format(b.xMin, 3)}, ${format(b.yMin, 3)}) – (${format(b.xMax, 3)}, ${format(b.yMax, 3)})`;
}

function headCard(name, result) {
  const card = document.createElement('div');
  card.className = 'head';
  card.dataset.head = name;
  card.dataset.kind = result.kind;
  const title = document.createElement('h3');
  title.innerHTML = `${escapeHtml(name)} <small>${escapeHtml(result.kind)}</small>`;
  card.append(title);
  const value = document.createElement('div');
  value.className = 'value';
  card.append(value);
  switch (result.kind) {
    case 'classification':
      value.textContent = `${result.label} · ${(result.probability * 100).toFixed(1)}%`;
      value.dataset.label = result.label;
      for (const [className, probability] of Object.entries(result.probabilities)) card.append(bar(className, probability));
      break;
    case 'binary':
      value.textContent = `${(result.probability * 100).toFixed(1)}% · ${result.decision ? 'yes' : 'no'} (threshold ${result.threshold})`;
      card.append(bar('p', result.probability));
      break;
    case 'regression':
      value.textContent = result.value !== undefined ? format(result.value) : (result.values || []).map((v) => format(v)).join(', ');
      break;
    case 'multilabel':
      value.textContent = result.positive.length ? result.positive.join(', ') : '(none)';
      for (const decision of result.labels) card.append(bar(decision.label, decision.probability));
      break;
    case 'bbox': {
      const b = result.box;
      value.textContent = `[${[b.xMin, b.yMin, b.xMax, b.yMax].map((v) => v.toFixed(3)).join(', ')}]`;
      break;
    }
    case 'embedding':
      value.textContent = `‖v‖ = ${format(result.norm)} · [${result.vector.slice(0, 6).map((v) => format(v, 3)).join(', ')}${result.vector.length > 6 ? ', …' : ''}]`;
      break;
    default:
      value.textContent = JSON.stringify(result);
  }
  return card;
}

function bar(label, probability) {
  const row = document.createElement('div');
  row.className = 'bar';
  const name = document.createElement('span');
  name.textContent = label;
  const fill = document.createElement('div');
  fill.style.width = `${Math.max(0.5, probability * 100)}%`;
  const text = document.createElement('span');
  text.textContent = `${(probability * 100).toFixed(1)}%`;
  row.append(name, fill, text);
  return row;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

// ---- evaluate ----

async function prepareEvaluate() {
  const detail = await modelDetail(state.model.name);
  const heads = detail.manifest.heads.map((h) => h.name);
  const example = (state.examples ? state.examples.evaluate : []).find((e) => e.model === state.model.name);
  const body = example ? JSON.parse(JSON.stringify(example.value)) : { labels: {} };
  const labelled = Object.keys(body.labels || {});
  const choices = labelled.length >= 2 ? labelled : heads;
  for (const [id, index] of [['head-a', 0], ['head-b', 1]]) {
    const select = $(id);
    select.replaceChildren(...choices.map((h) => new Option(h, h)));
    select.value = (body.heads && body.heads[index]) || choices[Math.min(index, choices.length - 1)];
  }
  delete body.heads;
  delete body.alpha;
  $('evaluate-body').value = JSON.stringify(body, null, 2);
  $('head-losses').tBodies[0].replaceChildren();
  $('combined-loss').textContent = '–';
  updateAlphaLabels();
  if (!$('evaluate-view').hidden) scheduleEvaluate(0);
}

function updateAlphaLabels() {
  $('alpha-head-a').textContent = $('head-a').value || 'a';
  $('alpha-head-b').textContent = $('head-b').value || 'b';
  $('alpha-value').textContent = Number($('alpha').value).toFixed(2);
}

function scheduleEvaluate(delay = 60) {
  clearTimeout(state.evaluateTimer);
  state.evaluateTimer = setTimeout(evaluate, delay);
}

async function evaluate() {
  updateAlphaLabels();
  showError('evaluate-error', null);
  let body;
  try {
    body = JSON.parse($('evaluate-body').value);
  } catch (error) {
    showError('evaluate-error', `The request body is not JSON: ${error.message}`);
    return;
  }
  const a = $('head-a').value;
  const b = $('head-b').value;
  if (a === b) {
    showError('evaluate-error', 'Pick two different heads for α.');
    return;
  }
  body.heads = [a, b];
  body.alpha = Number($('alpha').value);
  const sequence = ++state.evaluateSeq;
  try {
    const { json, roundTrip } = await call('POST', `v1/models/${encodeURIComponent(state.model.name)}/evaluate`, body);
    if (sequence !== state.evaluateSeq) return; // a newer α is on its way
    $('combined-loss').textContent = format(json.loss, 6);
    $('combined-loss').dataset.alpha = String(json.alpha);
    $('head-losses').tBodies[0].replaceChildren(...Object.entries(json.heads).map(([name, h]) => {
      const row = document.createElement('tr');
      row.dataset.head = name;
      const metrics = Object.entries(h.metrics || {}).map(([k, v]) => `${k} ${v === null ? '–' : format(v, 3)}`).join(', ');
      for (const [text, cls] of [[name, ''], [format(h.loss, 6), 'num loss'], [format(h.weight, 3), 'num'], [format(h.contribution, 6), 'num'], [metrics, '']]) {
        const cell = document.createElement('td');
        cell.textContent = text;
        cell.className = cls;
        row.append(cell);
      }
      return row;
    }));
    $('evaluate-timings').textContent = timingsText(json.timings, roundTrip);
    $('evaluate-json').textContent = JSON.stringify(json, null, 2);
  } catch (error) {
    if (sequence === state.evaluateSeq) showError('evaluate-error', error);
  }
}

// ---- wiring ----

function showView(id) {
  for (const tab of document.querySelectorAll('.tabs button')) {
    const selected = tab.dataset.view === id;
    tab.setAttribute('aria-selected', String(selected));
    $(tab.dataset.view).hidden = !selected;
  }
  if (id === 'evaluate-view') scheduleEvaluate(0);
}

async function start() {
  $('api-key').value = sessionStorage.getItem('mhs-api-key') || '';
  $('api-key').addEventListener('change', () => { sessionStorage.setItem('mhs-api-key', $('api-key').value.trim()); loadModels().catch((e) => showError('predict-error', e)); });
  $('model').addEventListener('change', (e) => selectModel(e.target.value).catch((error) => showError('predict-error', error)));
  for (const tab of document.querySelectorAll('.tabs button')) tab.addEventListener('click', () => showView(tab.dataset.view));
  $('tabular-predict').addEventListener('click', predictTabular);
  $('tabular-form').addEventListener('submit', (e) => { e.preventDefault(); predictTabular(); });
  $('alpha').addEventListener('input', () => { updateAlphaLabels(); scheduleEvaluate(); });
  $('head-a').addEventListener('change', () => scheduleEvaluate(0));
  $('head-b').addEventListener('change', () => scheduleEvaluate(0));
  $('evaluate-body').addEventListener('change', () => scheduleEvaluate(0));
  setUpImageInput();
  await loadExamples();
  try {
    await loadModels();
  } catch (error) {
    showError('predict-error', error);
  }
  document.body.dataset.ready = 'true';
}

start();
