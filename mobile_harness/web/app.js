// Runs one artifact of an edgemod web folder (tasks.json, thresholds.json, Tasks-ready .tflite files)
// in MediaPipe Tasks on the CPU, as a web app would: Tasks tokenizes the raw text / decodes and resizes
// the image itself, and the app applies the shipped thresholds (decision.js).
//
// URL: index.html?release=<web folder, default ./release/>&artifact=<name, default the first>.
// Tests drive it through window.edgemod (see golden_check.mjs).
import { decide } from "./decision.js";

// MediaPipe is served from this page's own node_modules: no CDN, so the page runs offline and on
// exactly the versions package-lock.json pins.
const TASKS = {
  text: { module: "./node_modules/@mediapipe/tasks-text/text_bundle.mjs", wasm: "./node_modules/@mediapipe/tasks-text/wasm" },
  image: { module: "./node_modules/@mediapipe/tasks-vision/vision_bundle.mjs", wasm: "./node_modules/@mediapipe/tasks-vision/wasm" },
};
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const release = new URL(params.get("release") ?? "./release/", location.href);

async function fetchJson(relative) {
  const url = new URL(relative, release);
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`${url} answered ${response.status}; fix: serve a web folder (edgemod pull NAME@VER --platform web) ` +
      "and open this page with ?release=<its URL path>, e.g. `edgemod harness web FOLDER --serve`");
  }
  return response.json();
}

async function createClassifier(tasks, artifact) {
  const kind = TASKS[tasks.task];
  if (!kind) throw new Error(`tasks.json task '${tasks.task}' is neither 'text' nor 'image'`);
  const lib = await import(new URL(kind.module, import.meta.url).href);
  const wasm = new URL(kind.wasm, import.meta.url).href;
  const fileset = tasks.task === "text" ? await lib.FilesetResolver.forTextTasks(wasm) : await lib.FilesetResolver.forVisionTasks(wasm);
  // maxResults -1: every category, so the thresholds see every score (Tasks keeps only the top 3 by default).
  const options = { baseOptions: { modelAssetPath: new URL(artifact.model, release).href, delegate: "CPU" }, maxResults: -1 };
  const Classifier = tasks.task === "text" ? lib.TextClassifier : lib.ImageClassifier;
  return Classifier.createFromOptions(fileset, options);
}

// Tasks lists categories by score; `index` is the position in the model's label file (= tasks.json order).
function labelOrder(result, size) {
  const scores = new Array(size).fill(0);
  for (const category of result.classifications[0].categories) scores[category.index] = category.score;
  return scores;
}

// The square edgemod's eval transform keeps (edgemod/runtime/tasks_check.py center_crop_roi), as an
// app passes it to Tasks; without it Tasks would squash the whole frame into the model's input.
function centerCrop(width, height, cropPct) {
  const side = Math.min(width, height) * cropPct;
  const left = (width - side) / 2 / width, top = (height - side) / 2 / height;
  return { regionOfInterest: { left, top, right: 1 - left, bottom: 1 - top } };
}

function render(state, scores, decision) {
  const fired = new Set([decision].flat());
  const violating = (label) => fired.has(label) && label !== state.thresholds.benign;
  const anyViolating = state.tasks.labels.some(violating);
  $("decision").textContent = `decision: ${[decision].flat().join(", ") || "none"}`;
  $("decision").className = anyViolating ? "violating" : "";
  $("scores").replaceChildren(...state.tasks.labels.map((label, i) => {
    const row = document.createElement("tr");
    row.className = violating(label) ? "violating" : "";
    const cut = state.thresholds.per_class[label]?.threshold;
    row.innerHTML = `<td></td><td class="num">${scores[i].toFixed(4)}</td><td class="num">${cut === undefined ? "–" : cut.toFixed(4)}</td>` +
      `<td><div class="bar" style="width:${(100 * scores[i]).toFixed(1)}%"></div></td>`;
    row.firstChild.textContent = label;  // labels are data: never parsed as HTML
    return row;
  }));
  $("result").hidden = false;
  return { scores, decision };
}

function classifyText(state, text) {
  $("message").value = text;
  const scores = labelOrder(state.classifier.classify(text), state.tasks.labels.length);
  return render(state, scores, decide(scores, state.tasks.labels, state.thresholds));
}

async function classifyImage(state, dataUrl) {
  const image = $("preview");
  image.src = dataUrl;
  image.hidden = false;
  await image.decode();
  const cropPct = state.tasks.image?.crop_pct;
  const options = cropPct ? centerCrop(image.naturalWidth, image.naturalHeight, cropPct) : undefined;
  const scores = labelOrder(state.classifier.classify(image, options), state.tasks.labels.length);
  return render(state, scores, decide(scores, state.tasks.labels, state.thresholds));
}

const readAsDataUrl = (file) => new Promise((resolve, reject) => {
  const reader = new FileReader();
  reader.onload = () => resolve(reader.result);
  reader.onerror = () => reject(reader.error);
  reader.readAsDataURL(file);
});

function wireInputs(state) {
  const report = (promise) => Promise.resolve(promise).catch((error) => showError(error));
  if (state.tasks.task === "text") {
    $("text-input").hidden = false;
    $("text-input").addEventListener("submit", (event) => { event.preventDefault(); report(classifyText(state, $("message").value)); });
    return;
  }
  $("image-input").hidden = false;
  const drop = $("drop");
  const take = (file) => file && report(readAsDataUrl(file).then((url) => classifyImage(state, url)));
  $("file").addEventListener("change", () => take($("file").files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); take(event.dataTransfer.files[0]); });
}

function showArtifacts(tasks, artifact) {
  const select = $("artifact");
  select.replaceChildren(...tasks.artifacts.map((a) => new Option(a.name, a.name, false, a.name === artifact.name)));
  select.addEventListener("change", () => { params.set("artifact", select.value); location.search = params.toString(); });
  $("artifact-picker").hidden = tasks.artifacts.length < 2;
}

function showError(error) {
  $("status").textContent = String(error?.message ?? error);
  $("status").className = "error";
}

async function start() {
  const tasks = await fetchJson("tasks.json");
  const thresholds = await fetchJson(tasks.thresholds ?? "thresholds.json");
  const wanted = params.get("artifact");
  const artifact = wanted ? tasks.artifacts.find((a) => a.name === wanted) : tasks.artifacts[0];
  if (!artifact) throw new Error(`no artifact '${wanted}' in tasks.json; fix: use one of ${tasks.artifacts.map((a) => a.name).join(", ")}`);
  $("title").textContent = `${tasks.name}${tasks.version ? ` ${tasks.version}` : ""}`;
  showArtifacts(tasks, artifact);
  const state = { tasks, thresholds, artifact, classifier: await createClassifier(tasks, artifact) };
  wireInputs(state);
  $("status").textContent = `${artifact.name} (${artifact.model}) ready: ${tasks.task} classifier, ${tasks.labels.length} labels`;
  return state;
}

const ready = start();
ready.catch(showError);
window.edgemod = {
  ready: ready.then((state) => ({ task: state.tasks.task, artifact: state.artifact.name, labels: state.tasks.labels })),
  classifyText: async (text) => classifyText(await ready, text),
  classifyImage: async (dataUrl) => classifyImage(await ready, dataUrl),
};
