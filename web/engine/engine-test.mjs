// The real-engine test (scripts/engine-test): run from the scratch project that holds this
// file, where npm installed onnxruntime-web (pinned) and the packed alibi-wgpu tarball. Serves
// that folder on loopback, opens index.html in headless Chromium on WebGPU, and runs every case
// of engine.js there: onnxruntime-web's WebGPU EP on the module's device, the bias handed over
// as a GPUBuffer, each output against a float64 reference. Prints one line per engine call and
// per test, the line "[ADAPTER] engine calls on the GPU: N of M; worst error f32 X, f16 Y", and
// "N passed, M failed"; exits non-zero on any failure.
// Usage: node engine-test.mjs   (CHROME_BIN: the browser; ALIBI_CHROMIUM_FLAGS: its flags;
//        ALIBI_EXPECTED_VERSION: the version the installed alibi-wgpu must have;
//        ALIBI_ENGINE_ADAPTER: the adapter's name for that line;
//        ALIBI_ENGINE_REQUIRE_F16=1: the adapter must have shader-f16 and every f16 call must
//        run, an engine's refusal failing it)
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname, join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { launch, serve, tests } from "./harness.mjs";

const root = dirname(fileURLToPath(import.meta.url));
// Only what the page needs, from this folder, on 127.0.0.1 only.
const { server, url } = await serve(root, (file) =>
  ["index.html", "engine.js", "reference.js"].some((name) => file === join(root, name))
  || ["node_modules", "models"].some((folder) => file.startsWith(join(root, folder) + sep)));
const { browser, page } = await launch();
// onnxruntime-web logs verbosely here (engine.js): its node placements and the WebGPU programs
// it runs are counted; of the rest, only warnings are shown (the errors that explain a failed
// call are printed with the call).
const placedOnWebGpu = [];
const programs = new Set();
page.on("console", (message) => {
  const text = message.text();
  const program = text.match(/Starting program "([^"[:]*)/);
  if (program) programs.add(program[1]);
  else if (/All nodes placed on \[WebGpuExecutionProvider\]/.test(text)) placedOnWebGpu.push(text);
  else if (/Node\(s\) placed on|placed on \[(?!WebGpu)|\[W:onnxruntime:/.test(text)) console.error(`  page console: ${text}`);
  // ORT's verbose log (shader sources included) comes as console errors: not shown. Warnings
  // are (a GPU validation error in the library's or the engine's work shows as one).
  else if (message.type() === "warning") console.error(`  page console warning: ${text}`);
});
page.on("pageerror", (error) => console.error(`  page error: ${error.message}`));

const { test, assert, finish } = tests();

await test("the_packed_package_installs_and_resolves", async () => {
  const entry = fileURLToPath(import.meta.resolve("alibi-wgpu"));
  const wasm = fileURLToPath(import.meta.resolve("alibi-wgpu/alibi_wgpu_bg.wasm"));
  const folder = join(root, "node_modules", "alibi-wgpu");
  assert(entry === join(folder, "alibi_wgpu.js"), `"alibi-wgpu" resolves to ${entry}`);
  assert(wasm === join(folder, "alibi_wgpu_bg.wasm"), `"alibi-wgpu/alibi_wgpu_bg.wasm" resolves to ${wasm}`);
  const manifest = JSON.parse(await readFile(join(folder, "package.json"), "utf8"));
  assert(manifest.type === "module" && manifest.license === "MIT OR Apache-2.0", JSON.stringify(manifest));
  assert(existsSync(join(folder, manifest.types)) && existsSync(join(folder, manifest.exports["."].types)),
    `types ${manifest.types}`);
  const expected = process.env.ALIBI_EXPECTED_VERSION;
  assert(!expected || manifest.version === expected, `version ${manifest.version}, expected ${expected}`);
  const ort = JSON.parse(await readFile(join(root, "node_modules", "onnxruntime-web", "package.json"), "utf8"));
  console.log(`  alibi-wgpu ${manifest.version}, onnxruntime-web ${ort.version}`);
});

const requireF16 = process.env.ALIBI_ENGINE_REQUIRE_F16 === "1";
const adapterName = process.env.ALIBI_ENGINE_ADAPTER ?? "the default adapter";
await page.goto(url);
await test("webgpu_adapter_is_there", async () => {
  const features = await page.evaluate(async () => {
    const adapter = await navigator.gpu?.requestAdapter();
    return adapter ? [...adapter.features] : undefined;
  });
  assert(features, "navigator.gpu.requestAdapter() gave no adapter: is WebGPU enabled?");
  assert(!requireF16 || features.includes("shader-f16"),
    `ALIBI_ENGINE_REQUIRE_F16=1, but ${adapterName} has no shader-f16 (features: ${features.join(" ")})`);
});

let api = [];
await test("the_module_device_has_what_onnxruntime_web_asks_of_a_device", async () => {
  const report = await page.evaluate(async () => (await import("/engine.js")).deviceReport());
  api = report.api;
  console.log(`  adapter ${JSON.stringify(report.info)}`);
  console.log(`  adapter features: ${report.adapterFeatures.join(" ")}`);
  console.log(`  module device features: ${report.deviceFeatures.join(" ")}`);
  console.log(`  dense API in the library: ${api.join(", ")}`);
  if (report.missingUnrequestable.length) {
    console.log(`  the adapter has, the module's device lacks (wgpu 30 cannot request them on the web): `
      + report.missingUnrequestable.join(", "));
  }
  assert(report.isGpuDevice, "alibi.device is not a GPUDevice");
  assert(api.length === 3, `the library lacks part of the dense API: has ${api.join(", ") || "none"}`);
  assert(report.missingFeatures.length === 0 && report.lowerLimits.length === 0,
    `the adapter has, the module's device lacks: ${[...report.missingFeatures, ...report.lowerLimits].join("; ")}`);
});

const cases = ["fresh_shapes_f32", "prefill_then_decode_f32", "padding_heads_f32", "f16_module",
  "left_padded_positions_f32"];
const all = [];
for (const name of cases) {
  await test(name, async () => {
    const calls = await page.evaluate(async ([name, options]) => (await import("/engine.js")).runCase(name, options),
      [name, { requireF16 }]);
    for (const call of calls) {
      const result = call.refused ? `refused by the engine${call.ok ? "" : ", FAILED"}`
        : call.ok ? `ok, worst |error| ${call.worst.toExponential(2)}` : "FAILED";
      console.log(`  ${call.label} ${call.graph}${call.via ? ` (bias by ${call.via})` : ""}: ${result}`);
      if (!call.ok || call.refused) console.log(`    ${call.detail}`);
    }
    all.push(...calls);
    const bad = calls.filter((call) => !call.ok);
    assert(calls.length > 0 && bad.length === 0, `${bad.length} of ${calls.length} engine calls failed`);
  });
}

await test("every_session_placed_every_node_on_the_webgpu_ep", async () => {
  const sessions = await page.evaluate(async () => (await import("/engine.js")).sessionCount());
  console.log(`  ${placedOnWebGpu.length} of ${sessions} sessions logged "All nodes placed on [WebGpuExecutionProvider]"`);
  console.log(`  WebGPU programs run: ${[...programs].sort().join(", ")}`);
  assert(sessions > 0 && placedOnWebGpu.length === sessions, `${placedOnWebGpu.length} placements for ${sessions} sessions`);
});

const ran = all.filter((call) => !call.refused);
const refused = all.length - ran.length;
const onGpu = ran.filter((call) => call.ok && call.onGpu).length;
const worst = (dtype) => {
  const errors = all.filter((call) => call.dtype === dtype && call.worst !== undefined).map((call) => call.worst);
  return errors.length ? Math.max(...errors).toExponential(2) : "none";
};
const tolerance = await page.evaluate(async () => (await import("/engine.js")).TOLERANCE);
console.log(`tolerance: |engine - float64 reference| <= ${tolerance.f32} (f32), ${tolerance.f16} (f16)`);
if (refused > 0) {
  console.log(`${refused} f16 engine calls refused by onnxruntime-web: the module's device has no shader-f16 here`);
}
console.log(`[${adapterName}] engine calls on the GPU: ${onGpu} of ${ran.length}; worst error f32 ${worst("f32")}, f16 ${worst("f16")}`);

await browser.close();
finish(() => server.close());
