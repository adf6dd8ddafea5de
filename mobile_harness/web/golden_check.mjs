// Feeds every golden item of a web folder's artifacts through the page in headless Chromium and prints
// a JSON report on stdout: per artifact, per item the page's decision and scores beside the expected ones.
// Comparing them is mobile_harness/web_check.py's job (it also serves the page); this only drives the browser.
//
//   node golden_check.mjs --url 'http://127.0.0.1:8000/index.html?release=/release/' --folder DIR
//        [--artifact NAME]... [--screenshot out.png] [--chromium /usr/bin/chromium] [--timeout-ms 120000]
//
// DIR is the same web folder on disk (tasks.json, golden files, image payloads are read from here).
import { readFileSync } from "node:fs";
import { extname, isAbsolute, join } from "node:path";
import { parseArgs } from "node:util";

import { chromium } from "playwright-core";

const IMAGE_TYPES = { ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
  ".gif": "image/gif", ".bmp": "image/bmp" };

function dataUrl(path) {
  const type = IMAGE_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream";
  return `data:${type};base64,${readFileSync(path).toString("base64")}`;
}

// What the page is given: the raw text, or the image file's bytes (the page cannot read local paths).
// An image path that is not absolute is relative to the web folder.
function payloadOf(task, item, folder) {
  if (task === "text") return item.payload;
  return dataUrl(isAbsolute(item.payload) ? item.payload : join(folder, item.payload));
}

async function classify(page, task, payload) {
  return page.evaluate(([fn, value]) => window.edgemod[fn](value), [task === "text" ? "classifyText" : "classifyImage", payload]);
}

function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function openArtifact(browser, url, name, timeout) {
  const page = await browser.newPage({ viewport: { width: 900, height: 720 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  // MediaPipe's wasm writes its INFO log lines to stderr, which reaches the console as errors.
  page.on("console", (message) => {
    if (message.type() === "error" && !/^(INFO:|I\d{4} )/.test(message.text())) errors.push(message.text());
  });
  const target = new URL(url);
  target.searchParams.set("artifact", name);
  await page.goto(target.href);
  try {
    await within(page.evaluate(() => window.edgemod.ready), timeout, "loading the model");
  } catch (error) {
    throw new Error(`the page did not get ready for ${name}: ${error.message}\n${errors.join("\n")}`);
  }
  return { page, errors };
}

async function checkArtifact(browser, args, tasks, artifact) {
  const golden = JSON.parse(readFileSync(join(args.folder, artifact.golden), "utf8"));
  const { page, errors } = await openArtifact(browser, args.url, artifact.name, args.timeout);
  const items = [];
  for (const item of golden.items) {
    const row = { key: item.key, kind: item.kind, expected_decision: item.expected_decision,
      expected_scores: item.expected_scores, margin: item.threshold_margin };
    try {
      Object.assign(row, await within(classify(page, tasks.task, payloadOf(tasks.task, item, args.folder)), args.timeout, item.key));
    } catch (error) {
      row.error = String(error.message ?? error).split("\n")[0];
    }
    items.push(row);
  }
  return { page, report: { artifact: artifact.name, model: artifact.model, tolerance: golden.tolerance?.max_abs_score_diff,
    items, page_errors: errors } };
}

// The screenshot shows one item, preferably a violating one (so the highlight is visible).
async function screenshot(page, tasks, golden, folder, path) {
  const benign = golden.thresholds?.benign;
  const item = golden.items.find((i) => [i.expected_decision].flat().some((d) => d !== benign)) ?? golden.items[0];
  await classify(page, tasks.task, payloadOf(tasks.task, item, folder));
  await page.screenshot({ path, fullPage: true });
}

async function main() {
  const { values } = parseArgs({ options: {
    url: { type: "string" }, folder: { type: "string" }, artifact: { type: "string", multiple: true },
    screenshot: { type: "string" }, chromium: { type: "string", default: "/usr/bin/chromium" },
    "timeout-ms": { type: "string", default: "120000" } } });
  if (!values.url || !values.folder) throw new Error("usage: node golden_check.mjs --url PAGE_URL --folder WEB_FOLDER [--artifact NAME]...");
  const args = { ...values, timeout: Number(values["timeout-ms"]) };
  const tasks = JSON.parse(readFileSync(join(args.folder, "tasks.json"), "utf8"));
  const wanted = args.artifact ?? tasks.artifacts.map((a) => a.name);
  // --no-sandbox: CI containers run as root; swiftshader: headless has no GPU, and Tasks uploads images through WebGL.
  const browser = await chromium.launch({ executablePath: args.chromium, headless: true,
    args: ["--no-sandbox", "--enable-unsafe-swiftshader"] });
  try {
    const reports = [];
    for (const name of wanted) {
      const artifact = tasks.artifacts.find((a) => a.name === name);
      if (!artifact) throw new Error(`no artifact '${name}' in ${join(args.folder, "tasks.json")}`);
      const { page, report } = await checkArtifact(browser, args, tasks, artifact);
      if (args.screenshot && reports.length === 0) {
        await screenshot(page, tasks, JSON.parse(readFileSync(join(args.folder, artifact.golden), "utf8")), args.folder,
          args.screenshot);
      }
      reports.push(report);
      await page.close();
    }
    process.stdout.write(JSON.stringify({ task: tasks.task, chromium: browser.version(), artifacts: reports }, null, 1) + "\n");
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  process.stderr.write(`golden_check: ${error.message ?? error}\n`);
  process.exit(2);
});
