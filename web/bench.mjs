// The browser bench (scripts/web-bench): serves the built page (target/web), opens it in
// headless Chromium on WebGPU and runs web/bench.js there for each case; prints a table, or
// one JSON object per line with --json. Speed is reported, never asserted.
// Usage: node web/bench.mjs <dir of the built page> [--runs N] [--json] [--case HxTxIxJ[:f16]]...
//        [--attention HxIxJxD]... (fused attention from JavaScript: upload, kernel, readback)
import { launch, serve } from "./harness.mjs";

const args = process.argv.slice(2);
const root = args.shift();
let runs = 7;
let json = false;
const cases = [];
const attention = [];
while (args.length) {
  const arg = args.shift();
  if (arg === "--runs") runs = Number(args.shift());
  else if (arg === "--json") json = true;
  else if (arg === "--case") {
    const [shape, dtype = "f32"] = args.shift().split(":");
    const [heads, totalHeads, i, j] = shape.split("x").map(Number);
    cases.push({ heads, totalHeads, i, j, dtype });
  } else if (arg === "--attention") {
    const [heads, i, j, d] = args.shift().split("x").map(Number);
    attention.push({ heads, i, j, d });
  } else {
    console.error(`web-bench: unknown argument ${arg}`);
    process.exit(2);
  }
}
const bad = (c, keys) => keys.some((key) => !(c[key] >= 1));
if (!(runs >= 1) || cases.some((c) => bad(c, ["heads", "totalHeads", "i", "j"]))
  || attention.some((c) => bad(c, ["heads", "i", "j", "d"]))) {
  console.error("web-bench: --runs N >= 1, --case HxTxIxJ[:f16], --attention HxIxJxD of whole numbers >= 1");
  process.exit(2);
}
if (cases.length === 0 && attention.length === 0) {
  attention.push({ heads: 8, i: 256, j: 256, d: 64 }, { heads: 16, i: 1, j: 4096, d: 64 });
  cases.push({ heads: 8, totalHeads: 8, i: 1024, j: 1024, dtype: "f32" },
    { heads: 8, totalHeads: 8, i: 37, j: 37, dtype: "f32" },
    { heads: 12, totalHeads: 16, i: 1, j: 4095, dtype: "f32" },
    { heads: 8, totalHeads: 8, i: 1024, j: 1024, dtype: "f16" });
}

const { server, url } = await serve(root);
const { browser, page } = await launch();
page.on("pageerror", (error) => console.error(`  page error: ${error.message}`));
await page.goto(url);
const columns = ["case", "dtype", "strided_fresh_ms", "dense_ms", "dense_over_strided",
  "dense_into_over_strided_into", "copy_new_ms", "dense_hit_ms", "dense_hit_over_copy", "into_hit_ms",
  "dense_hit_into_over_copy"];
if (!json && cases.length) console.log(columns.join("\t"));
let adapter;
for (const c of cases) {
  const figures = await page.evaluate(async ([c, runs]) =>
    (await import("./bench.js")).benchCase(c, runs), [c, runs]);
  adapter = figures.adapter;
  console.log(json ? JSON.stringify(figures) : columns.map((k) => figures[k]).join("\t"));
}
for (const c of attention) {
  const figures = await page.evaluate(async ([c, runs]) =>
    (await import("./bench.js")).benchAttention(c, runs), [c, runs]);
  console.log(json ? JSON.stringify(figures) : Object.entries(figures).map(([k, v]) => `${k} ${v}`).join(", "));
}
if (!json) console.log(`adapter: ${adapter ?? "(see above)"}; medians of ${runs} runs, ms`);
await browser.close();
server.close();
