// fastuss stem mixer: upload, run a preset or free prompts, then play every stem in sync through the
// Web Audio API. All stems start on the same AudioContext time with the same offset, so they stay
// sample-aligned; each has its own GainNode (gain/mute/solo) and AnalyserNode (level meter). A/B
// switches between the stems' bus and the original; one more AnalyserNode meters what is heard.
"use strict";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");

const mixer = {
  ctx: null, job: null, stems: [], buffers: {}, original: null, duration: 0,
  controls: {}, nodes: {}, stemBus: null, originalGain: null, master: null, sources: [],
  playing: false, offset: 0, startedAt: 0, ab: "stems", lastExport: null, error: "",
};
window.mixer = mixer;

function showError(message) {
  mixer.error = message;
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers["X-Token"] = token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const kind = response.headers.get("Content-Type") || "";
  if (!response.ok) {
    const body = kind.includes("json") ? await response.json() : { error: response.statusText };
    throw new Error(body.error || `${response.status} ${response.statusText}`);
  }
  return kind.includes("json") ? response.json() : response.arrayBuffer();
}

function withToken(url) {
  return token ? `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : url;
}

// -- opening a file and running a job ------------------------------------------------------------

let presets = [];

async function loadChoices() {
  const config = await api("api/config");
  for (const word of config.prompts) {  // the prompt vocabulary: a click adds the word to the prompt list
    const button = document.createElement("button");
    button.textContent = word;
    button.dataset.word = word;
    button.onclick = () => {
      $("prompts").value = [...parsePrompts($("prompts").value), word].join(", ");
      $("with-prompts").checked = true;
      describePreset();
    };
    $("prompt-words").appendChild(button);
  }
  presets = (await api("api/presets")).presets;
  $("preset").innerHTML = presets.map((p) => `<option value="${p.name}">${p.name}</option>`).join("");
  const dialog = presets.find((p) => p.name === "dialog_only");
  if (dialog) $("preset").value = "dialog_only";
  describePreset();
  presetFromSelected();
  const files = (await api("api/files")).files;
  for (const name of files) {
    const option = document.createElement("option");
    option.value = option.textContent = name;
    $("pick").appendChild(option);
  }
}

function describePreset() {
  const p = presets.find((x) => x.name === $("preset").value);
  if ($("with-prompts").checked) {
    $("preset-info").textContent = "Free prompts: one stem per prompt, named after it, all at 0 dB.";
    return;
  }
  $("preset-info").textContent = p ? `${p.description} Prompts: ${p.prompts.join(", ")}; stems: ${p.stems.join(", ")}.` : "";
}

// Free prompts as typed ("speech, sfx" or "speech sfx"); the server checks them with the preset schema.
function parsePrompts(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

async function runJob() {
  showError("");
  stop();
  const request = { mode: $("mode").value || null };
  if ($("with-prompts").checked) request.prompts = parsePrompts($("prompts").value);
  else request.preset = $("preset").value;
  const file = $("file").files[0];
  try {
    $("run").disabled = true;
    if (file) {
      const limit = (await api("api/config")).max_upload_bytes;
      if (file.size > limit) {
        throw new Error(`${file.name}: the file is too large: ${(file.size / 1e6).toFixed(1)} MB, the limit is ${(limit / 1e6).toFixed(1)} MB`);
      }
      $("status").textContent = `uploading ${file.name}`;
      const uploaded = await api("api/upload", {
        method: "POST", body: file, headers: { "X-Filename": file.name, "Content-Type": "application/octet-stream" },
      });
      request.file = uploaded.file;
    } else if ($("pick").value) {
      request.pick = $("pick").value;
    } else {
      throw new Error("choose a file to upload or one from the folder");
    }
    const job = await api("api/jobs", { method: "POST", body: JSON.stringify(request), headers: { "Content-Type": "application/json" } });
    await follow(job.id);
  } catch (err) {
    showError(err.message);
    $("status").textContent = "failed";
  } finally {
    $("run").disabled = false;
    $("cancel").disabled = true;
  }
}

async function follow(id) {
  mixer.jobId = id;
  $("cancel").disabled = false;
  for (;;) {
    const job = await api(`api/jobs/${id}`);
    $("progress").value = job.progress;
    $("status").textContent = `${job.state} ${Math.round(job.progress * 100)}%` + (job.model ? ` (model ${job.model})` : "");
    if (job.state === "done") return openMixer(job);
    if (job.state === "failed") throw new Error(job.error);
    if (job.state === "cancelled") throw new Error("cancelled");
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function cancelJob() {
  if (mixer.jobId) await api(`api/jobs/${mixer.jobId}/cancel`, { method: "POST" }).catch((err) => showError(err.message));
}

// -- the mixer -----------------------------------------------------------------------------------

async function openMixer(job) {
  $("status").textContent = "loading stems";
  if (!mixer.ctx) mixer.ctx = new AudioContext({ sampleRate: job.rate });
  const ctx = mixer.ctx;
  const decode = async (name) => ctx.decodeAudioData(await api(`api/jobs/${job.id}/audio/${encodeURIComponent(name)}.wav`));
  mixer.job = job;
  mixer.stems = job.stems;
  mixer.original = await decode("original");
  mixer.buffers = {};
  for (const name of job.stems) mixer.buffers[name] = await decode(name);
  mixer.duration = mixer.original.duration;
  mixer.offset = 0;
  buildGraph();
  buildRows();
  $("seek").max = mixer.duration;
  $("loop-end").value = mixer.duration.toFixed(2);
  $("mixer").hidden = false;
  $("preset-from-mix").disabled = false;
  $("cancel").disabled = true;
  $("status").textContent = `done: ${job.stems.length} stems, ${job.seconds.toFixed(2)} s at ${job.rate} Hz (model ${job.model})`;
  updateGains();
}

function buildGraph() {
  const ctx = mixer.ctx;
  mixer.stemBus = ctx.createGain();
  mixer.originalGain = ctx.createGain();
  mixer.master = ctx.createAnalyser();  // what is heard: the stems' bus or the original (A/B)
  mixer.master.fftSize = 1024;
  mixer.stemBus.connect(mixer.master);
  mixer.originalGain.connect(mixer.master);
  mixer.master.connect(ctx.destination);
  mixer.nodes = {};
  for (const name of mixer.stems) {
    const gain = ctx.createGain();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    gain.connect(analyser);
    analyser.connect(mixer.stemBus);
    mixer.nodes[name] = { gain, analyser };
  }
}

function buildRows() {
  const box = $("stems");
  box.innerHTML = "";
  mixer.controls = {};
  const preset = presets.find((p) => p.name === mixer.job.preset);
  // every waveform on the original's scale, so quiet stems look quiet
  let peak = 1e-6;
  for (const v of mixer.original.getChannelData(0)) peak = Math.max(peak, Math.abs(v));
  for (const name of mixer.stems) {
    // start from the preset's mix: its gains, and the stems it leaves out muted
    const inMix = !preset || name in preset.mix;
    const db = inMix && preset ? preset.mix[name] : 0;
    const row = document.createElement("div");
    row.className = "stem";
    row.dataset.stem = name;
    row.innerHTML = `<span class="name" title="${name}">${name}</span>
      <button class="mute">M</button><button class="solo">S</button>
      <span><input type="range" class="gain" min="-40" max="12" step="0.5" value="${db}"> <span class="gain-label"></span></span>
      <div class="view"><canvas class="wave" width="800" height="48"></canvas><div class="playhead"></div></div>
      <div class="meter"><div></div></div>`;
    box.appendChild(row);
    const c = { db, mute: !inMix, solo: false, row };
    mixer.controls[name] = c;
    row.querySelector(".mute").onclick = () => { c.mute = !c.mute; updateGains(); };
    row.querySelector(".solo").onclick = () => { c.solo = !c.solo; updateGains(); };
    row.querySelector(".gain").oninput = (e) => { c.db = parseFloat(e.target.value); updateGains(); };
    row.querySelector("canvas").onclick = (e) => seek(e.offsetX / e.target.clientWidth * mixer.duration);
  }
  mixer.peak = peak;
  drawViews();
}

function drawViews() {
  for (const name of mixer.stems) {
    const canvas = mixer.controls[name].row.querySelector("canvas");
    if ($("view").value === "spec") drawSpectrogram(canvas, mixer.buffers[name], mixer.peak);
    else drawWave(canvas, mixer.buffers[name], mixer.peak);
  }
}

// In-place radix-2 FFT (re, im: Float64Array of a power-of-two length).
function fft(re, im) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) { [re[i], re[j]] = [re[j], re[i]]; [im[i], im[j]] = [im[j], im[i]]; }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const angle = -2 * Math.PI / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(angle * k), wi = Math.sin(angle * k);
        const a = i + k, b = a + len / 2;
        const tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr; im[b] = im[a] - ti; re[a] += tr; im[a] += ti;
      }
    }
  }
}

// Log-magnitude spectrogram (Hann, 1024 points, one frame per column), dB relative to the original's peak.
function drawSpectrogram(canvas, buffer, peak) {
  const g = canvas.getContext("2d");
  const data = buffer.getChannelData(0), n = 1024, w = canvas.width, h = canvas.height;
  const image = g.createImageData(w, h);
  const re = new Float64Array(n), im = new Float64Array(n);
  const bins = n / 2, ref = peak * n / 4;
  for (let x = 0; x < w; x++) {
    const start = Math.floor(x * (data.length - n) / w);
    for (let i = 0; i < n; i++) {
      re[i] = (data[start + i] || 0) * (0.5 - 0.5 * Math.cos(2 * Math.PI * i / n));
      im[i] = 0;
    }
    fft(re, im);
    for (let y = 0; y < h; y++) {
      const bin = Math.floor(Math.pow(bins, 1 - (y + 1) / h));  // log frequency axis, high at the top
      const db = 10 * Math.log10((re[bin] ** 2 + im[bin] ** 2) / (ref * ref) + 1e-12);
      const v = Math.max(0, Math.min(1, (db + 80) / 70));
      const o = 4 * (y * w + x);
      image.data[o] = 255 * v; image.data[o + 1] = 200 * v * v; image.data[o + 2] = 80 + 120 * (1 - v); image.data[o + 3] = 255;
    }
  }
  g.putImageData(image, 0, 0);
}

function drawWave(canvas, buffer, peak) {
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  const data = buffer.getChannelData(0).map((v) => v / peak);
  const w = canvas.width, h = canvas.height, step = Math.max(1, Math.floor(data.length / w));
  g.fillStyle = "#4fb3ff";
  for (let x = 0; x < w; x++) {
    let lo = 1, hi = -1;
    for (let i = x * step; i < Math.min(data.length, (x + 1) * step); i++) {
      if (data[i] < lo) lo = data[i];
      if (data[i] > hi) hi = data[i];
    }
    if (hi < lo) continue;
    const y0 = (1 - Math.min(1, hi)) * h / 2, y1 = (1 - Math.max(-1, lo)) * h / 2;
    g.fillRect(x, y0, 1, Math.max(1, y1 - y0));
  }
}

// The linear gain each stem plays (and exports) with: solo wins over the rest, mute silences.
function effectiveGains() {
  const anySolo = Object.values(mixer.controls).some((c) => c.solo);
  const out = {};
  for (const [name, c] of Object.entries(mixer.controls)) {
    const on = !c.mute && (!anySolo || c.solo);
    out[name] = on ? Math.pow(10, c.db / 20) : 0;
  }
  return out;
}

function updateGains() {
  const gains = effectiveGains();
  for (const [name, c] of Object.entries(mixer.controls)) {
    mixer.nodes[name].gain.gain.value = gains[name];
    c.row.querySelector(".mute").classList.toggle("on", c.mute);
    c.row.querySelector(".solo").classList.toggle("on", c.solo);
    c.row.querySelector(".gain-label").textContent = `${c.db.toFixed(1)} dB`;
  }
  mixer.stemBus.gain.value = mixer.ab === "stems" ? 1 : 0;
  mixer.originalGain.gain.value = mixer.ab === "original" ? 1 : 0;
  $("ab-stems").classList.toggle("on", mixer.ab === "stems");
  $("ab-original").classList.toggle("on", mixer.ab === "original");
}

function loopRegion() {
  const start = Math.max(0, parseFloat($("loop-start").value) || 0);
  const end = Math.min(mixer.duration, parseFloat($("loop-end").value) || mixer.duration);
  return $("loop").checked && end > start ? [start, end] : null;
}

// Playback position in seconds, from the AudioContext clock (shared by every stem).
function position() {
  if (!mixer.playing) return mixer.offset;
  const t = mixer.ctx.currentTime - mixer.startedAt;
  const loop = mixer.loop;
  if (loop && t >= loop[0]) return loop[0] + ((t - loop[0]) % (loop[1] - loop[0]));
  return Math.min(t, mixer.duration);
}
mixer.position = position;

function play() {
  const ctx = mixer.ctx;
  ctx.resume();
  const loop = loopRegion();
  let offset = mixer.offset >= mixer.duration ? 0 : mixer.offset;
  if (loop && (offset < loop[0] || offset >= loop[1])) offset = loop[0];
  const when = ctx.currentTime + 0.05;
  const start = (buffer, target) => {
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    if (loop) { source.loop = true; source.loopStart = loop[0]; source.loopEnd = loop[1]; }
    source.connect(target);
    source.start(when, offset);
    return source;
  };
  mixer.sources = mixer.stems.map((name) => start(mixer.buffers[name], mixer.nodes[name].gain));
  mixer.sources.push(start(mixer.original, mixer.originalGain));
  mixer.startedAt = when - offset;
  mixer.loop = loop;
  mixer.playing = true;
  $("play").textContent = "Pause";
}

function stop() {
  if (!mixer.playing) return;
  mixer.offset = position();
  for (const s of mixer.sources) { try { s.stop(); } catch (e) { /* already stopped */ } }
  mixer.sources = [];
  mixer.playing = false;
  $("play").textContent = "Play";
}

function seek(seconds) {
  const wasPlaying = mixer.playing;
  stop();
  mixer.offset = Math.max(0, Math.min(mixer.duration, seconds));
  if (wasPlaying) play();
}

// An analyser's RMS level over its last 1024 samples, as a percentage of a -60..0 dBFS scale.
const meterData = new Float32Array(1024);
function meterPercent(analyser) {
  analyser.getFloatTimeDomainData(meterData);
  let sum = 0;
  for (const v of meterData) sum += v * v;
  const db = 10 * Math.log10(sum / meterData.length + 1e-12);
  return Math.max(0, Math.min(100, (db + 60) / 60 * 100));
}

function tick() {
  if (mixer.ctx && mixer.duration) {
    const t = position();
    if (mixer.playing && !mixer.loop && t >= mixer.duration) { stop(); mixer.offset = mixer.duration; }
    if (document.activeElement !== $("seek")) $("seek").value = t;
    $("time").textContent = `${t.toFixed(2)} / ${mixer.duration.toFixed(2)} s`;
    for (const head of document.querySelectorAll(".stem .playhead")) head.style.left = `${(t / mixer.duration) * 100}%`;
    for (const [name, c] of Object.entries(mixer.controls)) {
      c.row.querySelector(".meter div").style.height = `${meterPercent(mixer.nodes[name].analyser)}%`;
    }
    $("master-meter").firstElementChild.style.width = `${meterPercent(mixer.master)}%`;
  }
  requestAnimationFrame(tick);
}

async function exportMix() {
  showError("");
  try {
    const result = await api(`api/jobs/${mixer.job.id}/export`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ gains: effectiveGains(), format: $("format").value }),
    });
    mixer.lastExport = result;
    const link = $("export-link");
    link.href = withToken(result.url);
    link.download = result.name;
    link.textContent = `download ${result.name}`;
    link.hidden = false;
  } catch (err) {
    showError(err.message);
  }
}

async function exportStems() {
  showError("");
  try {
    const result = await api(`api/jobs/${mixer.job.id}/export-stems`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ format: $("format").value }),
    });
    const box = $("export-stems-links");
    box.innerHTML = "";
    for (const file of result.files) {
      const link = document.createElement("a");
      link.href = withToken(file.url);
      link.download = file.name;
      link.textContent = file.name;
      box.append(link, " ");
    }
    mixer.lastStems = result;
  } catch (err) {
    showError(err.message);
  }
}

// -- preset editor -------------------------------------------------------------------------------

function presetToYaml(p) {
  const list = (xs) => `[${xs.join(", ")}]`;
  const lines = [`name: ${p.name}`, `description: ${JSON.stringify(p.description || "")}`, `prompts: ${list(p.prompts)}`,
    `stems: ${list(p.stems)}`, "mix:"];
  for (const [stem, db] of Object.entries(p.mix)) lines.push(`  ${stem}: ${Number(db).toFixed(1)}`);
  lines.push(`mode: ${p.mode}`);
  if (p.model) lines.push(`model: ${p.model}`);
  return lines.join("\n") + "\n";
}

function presetFromSelected() {
  const p = presets.find((x) => x.name === $("preset").value);
  if (p) $("preset-yaml").value = p.yaml;
}

function presetFromMix() {
  const job = mixer.job;
  const base = presets.find((x) => x.name === job.preset) || (job.prompts.length && {  // free prompts
    name: "my_prompts", description: `Prompts ${job.prompts.join(", ")}.`, prompts: job.prompts,
    stems: job.stems, mode: job.mode || "offline", model: null,
  });
  if (!base) {
    $("preset-message").textContent = "these stems come from no preset (e.g. a notebook); start from a preset instead";
    return;
  }
  const gains = effectiveGains();
  const mix = {};
  for (const [name, c] of Object.entries(mixer.controls)) if (gains[name] > 0) mix[name] = c.db;
  $("preset-yaml").value = presetToYaml({
    name: `${base.name}_custom`, description: `${base.description} (gains from the mixer)`,
    prompts: base.prompts, stems: base.stems, mix, mode: base.mode, model: base.model,
  });
}

async function savePreset() {
  $("preset-message").textContent = "";
  try {
    const saved = await api("api/presets", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ yaml: $("preset-yaml").value }),
    });
    $("preset-message").textContent = `saved preset ${saved.name}; it is now in the preset list`;
    const link = $("preset-link");
    link.href = withToken(saved.url);
    link.download = `${saved.name}.yaml`;
    link.textContent = `download ${saved.name}.yaml`;
    link.hidden = false;
    presets = (await api("api/presets")).presets;
    $("preset").innerHTML = presets.map((p) => `<option value="${p.name}">${p.name}</option>`).join("");
    $("preset").value = saved.name;
    describePreset();
    mixer.savedPreset = saved;
  } catch (err) {
    $("preset-message").textContent = `not saved: ${err.message}`;
    mixer.presetError = err.message;
  }
}

// -- wiring --------------------------------------------------------------------------------------

$("run").onclick = runJob;
$("cancel").onclick = cancelJob;
$("preset").onchange = () => { $("with-preset").checked = true; describePreset(); };
$("prompts").oninput = () => { $("with-prompts").checked = true; describePreset(); };
$("with-preset").onchange = describePreset;
$("with-prompts").onchange = describePreset;
$("file").onchange = () => { if ($("file").files.length) $("pick").value = ""; };
$("pick").onchange = () => { if ($("pick").value) $("file").value = ""; };
$("play").onclick = () => (mixer.playing ? stop() : play());
$("seek").oninput = (e) => seek(parseFloat(e.target.value));
$("ab-stems").onclick = () => { mixer.ab = "stems"; updateGains(); };
$("ab-original").onclick = () => { mixer.ab = "original"; updateGains(); };
$("export").onclick = exportMix;
$("export-stems").onclick = exportStems;
$("view").onchange = () => { if (mixer.job) drawViews(); };
$("preset-load").onclick = presetFromSelected;
$("preset-from-mix").onclick = presetFromMix;
$("preset-save").onclick = savePreset;
loadChoices()
  .then(() => {
    const job = new URLSearchParams(location.search).get("job");  // a finished job to open (notebooks)
    return job ? follow(job) : null;
  })
  .catch((err) => showError(err.message));
requestAnimationFrame(tick);
