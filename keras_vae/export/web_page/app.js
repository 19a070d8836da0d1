// The keras_vae web page: runs a model's fixed-shape LiteRT files in this
// browser with LiteRT.js (loaded through the page's import map). Written by
// `keras-vae export RUN --formats web`; served by `keras-vae web RUN`.
//
// Signatures (one per batch size B, see keras_vae.export.signatures):
//   decode_<B>(z [B, latent]) -> images;  sample[_<sampler>]_<B>(temperature)
//   -> images, z. A conditional model's also take labels [B].
// Page options in the URL: ?variant=int8&threads=2.

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(window.location.search);

const state = { meta: null, litert: null, generator: null, variant: null, pair: null,
                threads: 1, loadTimes: {}, busy: 0 };

function showError(message) {
  const status = $('status');
  status.textContent = message;
  status.classList.add('error');
  document.body.dataset.state = 'error';
}

function showStatus(message) {
  $('status').textContent = message;
  $('status').classList.remove('error');
}

/** Whole batches of the given sizes that cover n rows (as keras_vae.edge). */
export function batchPlan(n, sizes) {
  const largest = Math.max(...sizes);
  const plan = [];
  for (let start = 0; start < n;) {
    const rest = n - start;
    const size = rest >= largest ? largest : Math.min(...sizes.filter((s) => s >= rest));
    plan.push([start, size]);
    start += size;
  }
  return plan;
}

/** Runs the signatures of one compiled LiteRT file for any number of images. */
export class Generator {
  constructor(litert, model, meta) {
    this.litert = litert;
    this.model = model;
    this.meta = meta;
    this.latent = meta.latent_dim;
    this.pixels = meta.image_shape.reduce((a, b) => a * b, 1);
  }

  async run(signature, inputs) {
    const tensors = {};
    for (const [name, [data, shape]] of Object.entries(inputs)) {
      tensors[name] = new this.litert.Tensor(data, shape);
    }
    try {
      const outputs = await this.model.run(signature, tensors);
      const result = {};
      for (const [name, tensor] of Object.entries(outputs)) {
        result[name] = Float32Array.from(await tensor.data());
        tensor.delete();
      }
      return result;
    } finally {
      Object.values(tensors).forEach((t) => t.delete());
    }
  }

  /** Run `<kind>_<B>` over n rows: whole batches, the last padded, trimmed. */
  async batches(kind, n, rows, scalars = {}) {
    const out = { images: new Float32Array(n * this.pixels), z: new Float32Array(n * this.latent) };
    for (const [start, size] of batchPlan(n, this.meta.batch_sizes)) {
      const inputs = {};
      for (const [name, [data, width, Type]] of Object.entries(rows)) {
        const batch = new Type(size * width);
        batch.set(data.subarray(start * width, Math.min(n, start + size) * width));
        inputs[name] = [batch, width === 1 ? [size] : [size, width]];
      }
      for (const [name, value] of Object.entries(scalars)) {
        inputs[name] = [new Float32Array([value]), []];
      }
      const result = await this.run(`${kind}_${size}`, inputs);
      const keep = Math.min(size, n - start);
      out.images.set(result.images.subarray(0, keep * this.pixels), start * this.pixels);
      if (result.z) out.z.set(result.z.subarray(0, keep * this.latent), start * this.latent);
    }
    return out;
  }

  _labels(n, label) {
    return this.meta.num_classes ? { labels: [new Int32Array(n).fill(label), 1, Int32Array] } : {};
  }

  /** Images for n codes z (a Float32Array of n * latent_dim). */
  async decode(z, n, label = 0) {
    const rows = { z: [Float32Array.from(z), this.latent, Float32Array], ...this._labels(n, label) };
    return (await this.batches('decode', n, rows)).images;
  }

  /** n fresh images and their codes from the prior or a fitted sampler. */
  async sample(n, { sampler = '', temperature = 1, label = 0 } = {}) {
    const kind = sampler ? `sample_${sampler}` : 'sample';
    return this.batches(kind, n, this._labels(n, label), { temperature });
  }
}

function draw(canvas, images, index, shape) {
  const [height, width, channels] = shape;
  const pixels = height * width * channels;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  const picture = context.createImageData(width, height);
  for (let p = 0; p < height * width; p++) {
    for (let c = 0; c < 3; c++) {
      const value = images[index * pixels + p * channels + (channels === 1 ? 0 : c)];
      picture.data[4 * p + c] = Math.round(255 * Math.min(1, Math.max(0, value)));
    }
    picture.data[4 * p + 3] = 255;
  }
  context.putImageData(picture, 0, 0);
}

function options() {
  const temperature = Number($('temperature').value);
  if (!(temperature >= 0)) throw new Error(`Temperature must be a number >= 0, got ${$('temperature').value}.`);
  return { sampler: $('sampler').value, temperature, label: Number($('class').value || 0) };
}

async function loadVariant(name) {
  const entry = state.meta.variants.find((v) => v.name === name);
  if (!entry) throw new Error(`No variant ${name}: this export has ${state.meta.variants.map((v) => v.name).join(', ')}.`);
  showStatus(`Loading ${entry.file}…`);
  const started = performance.now();
  const response = await fetch(entry.file);
  if (!response.ok) {
    throw new Error(`Could not load the model file ${entry.file} (HTTP ${response.status}). ` +
                    'Export the page again with keras-vae export RUN --formats web.');
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const model = await state.litert.loadAndCompile(bytes, {
    accelerator: 'wasm', cpuOptions: { numThreads: state.threads } });
  state.loadTimes[name] = performance.now() - started;
  state.generator = new Generator(state.litert, model, state.meta);
  state.variant = name;
  showStatus(`Ready: ${entry.file} (${(entry.bytes / 1024).toFixed(0)} KiB) loaded in ` +
             `${state.loadTimes[name].toFixed(0)} ms, ${state.threads} thread(s).`);
}

async function sampleGrid() {
  const n = Math.max(1, Math.min(256, Math.floor(Number($('count').value) || 16)));
  const started = performance.now();
  const { images } = await state.generator.sample(n, options());
  const elapsed = performance.now() - started;
  const grid = $('grid');
  grid.replaceChildren();
  for (let i = 0; i < n; i++) {
    const canvas = document.createElement('canvas');
    canvas.className = 'tile';
    draw(canvas, images, i, state.meta.image_shape);
    grid.append(canvas);
  }
  $('timing').textContent = `${n} images in ${elapsed.toFixed(1)} ms: ` +
    `${(elapsed / n).toFixed(2)} ms per image (${state.variant}, ${state.threads} thread(s)).`;
  state.lastGrid = { n, elapsed, images: Array.from(images) };
  return state.lastGrid;
}

async function newPair() {
  const { images, z } = await state.generator.sample(2, options());
  state.pair = { z, label: options().label };
  draw($('interp-a'), images, 0, state.meta.image_shape);
  draw($('interp-b'), images, 1, state.meta.image_shape);
  return interpolate();
}

async function interpolate() {
  const t = Number($('interp-slider').value);
  $('interp-t').textContent = t.toFixed(2);
  const d = state.meta.latent_dim;
  const z = new Float32Array(d);
  for (let i = 0; i < d; i++) z[i] = (1 - t) * state.pair.z[i] + t * state.pair.z[d + i];
  const image = await state.generator.decode(z, 1, state.pair.label);
  draw($('interp-mix'), image, 0, state.meta.image_shape);
  state.lastMix = { t, z: Array.from(z), image: Array.from(image) };
  return state.lastMix;
}

const MAP_TILES = 8;

function mapPoint(u, v) {  // u, v in [0, 1] across the canvas: a latent point
  const [[x0, x1], [y0, y1]] = state.meta.latent_box;
  return [x0 + u * (x1 - x0), y1 - v * (y1 - y0)];
}

async function drawMap() {
  const n = MAP_TILES * MAP_TILES;
  const z = new Float32Array(2 * n);
  for (let row = 0; row < MAP_TILES; row++) {
    for (let col = 0; col < MAP_TILES; col++) {
      const [a, b] = mapPoint((col + 0.5) / MAP_TILES, (row + 0.5) / MAP_TILES);
      z.set([a, b], 2 * (row * MAP_TILES + col));
    }
  }
  const images = await state.generator.decode(z, n, options().label);
  const [height, width] = state.meta.image_shape;
  const canvas = $('map');
  canvas.width = MAP_TILES * width;
  canvas.height = MAP_TILES * height;
  const tile = document.createElement('canvas');
  for (let i = 0; i < n; i++) {
    draw(tile, images, i, state.meta.image_shape);
    canvas.getContext('2d').drawImage(tile, (i % MAP_TILES) * width, Math.floor(i / MAP_TILES) * height);
  }
}

async function decodeMapPoint(u, v) {
  const z = mapPoint(u, v);
  const image = await state.generator.decode(new Float32Array(z), 1, options().label);
  draw($('map-point'), image, 0, state.meta.image_shape);
  $('map-z').textContent = `z = (${z[0].toFixed(2)}, ${z[1].toFixed(2)})`;
  state.lastPoint = { z, image: Array.from(image) };
  return state.lastPoint;
}

function guarded(action) {  // a failure shows in the page, never silently
  return async (...args) => {
    state.busy += 1;
    try {
      return await action(...args);
    } catch (error) {
      showError(String(error.message || error));
      throw error;
    } finally {
      state.busy -= 1;
    }
  };
}

function fillControls(meta) {
  for (const variant of meta.variants) {
    $('variant').append(new Option(`${variant.name} (${(variant.bytes / 1024).toFixed(0)} KiB)`, variant.name));
  }
  $('sampler').append(new Option(`prior (${meta.prior})`, ''));
  for (const name of meta.samplers) $('sampler').append(new Option(`sampler ${name}`, name));
  if (meta.num_classes) {
    $('class-label').hidden = false;
    meta.class_names.forEach((name, i) => $('class').append(new Option(name, String(i))));
  }
  $('map-section').hidden = !meta.latent_box;
}

async function refresh() {
  await sampleGrid();
  await newPair();
  if (state.meta.latent_box) await drawMap();
}

async function main() {
  const response = await fetch('metadata.json');
  if (!response.ok) throw new Error(`Could not load metadata.json (HTTP ${response.status}).`);
  state.meta = await response.json();
  fillControls(state.meta);
  const wasm = document.querySelector('meta[name="litert-wasm"]').content;
  try {
    state.litert = await import('@litertjs/core');
    const wanted = Number(params.get('threads') || Math.min(4, navigator.hardwareConcurrency || 1));
    state.threads = window.crossOriginIsolated ? Math.max(1, wanted) : 1;
    const started = performance.now();
    await state.litert.loadLiteRt(wasm, { threads: state.threads > 1 });
    state.loadTimes.runtime = performance.now() - started;
  } catch (error) {
    throw new Error(`Could not load the LiteRT.js runtime from ${wasm}: ${error.message || error}. ` +
                    'Offline? Export with --web-runtime pointing at a local copy of @litertjs.');
  }
  const variant = params.get('variant') || state.meta.variants[0].name;
  $('variant').value = variant;
  await loadVariant(variant);
  await refresh();
  for (const id of ['sample', 'interp-new']) $(id).disabled = false;
  $('sample').addEventListener('click', guarded(sampleGrid));
  $('interp-new').addEventListener('click', guarded(newPair));
  $('interp-slider').addEventListener('input', guarded(interpolate));
  $('variant').addEventListener('change', guarded(async () => { await loadVariant($('variant').value); await refresh(); }));
  $('class').addEventListener('change', guarded(refresh));
  $('map').addEventListener('click', guarded((event) => {
    const box = event.target.getBoundingClientRect();
    return decodeMapPoint((event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height);
  }));
  document.body.dataset.state = 'ready';
}

// For scripts and tests driving the page: the same calls the controls make.
window.kerasVae = {
  state, batchPlan, loadVariant: guarded(loadVariant), sampleGrid: guarded(sampleGrid),
  newPair: guarded(newPair), interpolate: guarded(interpolate), decodeMapPoint: guarded(decodeMapPoint),
  decode: (z, n, label) => state.generator.decode(z, n, label),
  sample: (n, opts) => state.generator.sample(n, opts),
  ready: guarded(main)(),
};
