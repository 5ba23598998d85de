// The demo page: one module per run, its adapter, the time of `forward` (a new tensor,
// submitted and finished) and of `forwardToHost` (the same request again: a cache hit,
// then the readback), a heatmap of one head, and the check against the JS reference.
import init, { AlibiPositionalBias } from "./pkg/alibi_wgpu.js";
import { firstMismatch, forward as reference } from "./reference.js";

const $ = (id) => document.getElementById(id);

function drawHeatmap(values, [, i, j], head) {
  const canvas = $("heatmap");
  canvas.width = Math.max(1, Math.min(j, 512));
  canvas.height = Math.max(1, Math.min(i, 512));
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  const headValues = values.subarray(head * i * j, (head + 1) * i * j);
  let low = 0;
  for (const value of headValues) low = Math.min(low, value);
  for (let y = 0; y < canvas.height; y++) {
    const r = Math.floor((y * i) / canvas.height);
    for (let x = 0; x < canvas.width; x++) {
      const k = Math.floor((x * j) / canvas.width);
      // 0 (no penalty) is bright yellow, the most negative value dark blue.
      const t = low === 0 ? 1 : 1 - headValues[r * j + k] / low;
      const at = 4 * (y * canvas.width + x);
      image.data[at] = 255 * t;
      image.data[at + 1] = 40 + 200 * t;
      image.data[at + 2] = 120 * (1 - t);
      image.data[at + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
}

async function run(event) {
  event?.preventDefault();
  document.body.dataset.done = "false";
  // An empty box is a missing number: `totalHeads` then defaults to `heads`.
  const [heads, total, i, j, head] = ["heads", "total", "i", "j", "head"].map((id) =>
    $(id).value === "" ? undefined : Number($(id).value),
  );
  const status = $("status");
  status.className = "";
  status.textContent = "running…";
  $("run").disabled = true;
  const canvas = $("heatmap");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  let alibi;
  try {
    alibi = await AlibiPositionalBias.create(heads, total);
    const totalHeads = total ?? heads;
    const info = alibi.adapterInfo();
    $("adapter").textContent = [info.name || "(no name)", info.backend, info.deviceType, info.driver]
      .filter(Boolean)
      .join(" · ");
    // A warm-up on another shape, so the timed call does not pay for first-use costs (the
    // timed call is then a new tensor, unless it fits in 1 x 1). Views are freed at once:
    // a view keeps its buffer from being reused.
    alibi.forward(1, 1).free();
    await alibi.device.queue.onSubmittedWorkDone();
    let start = performance.now();
    alibi.forward(i, j).free();
    await alibi.device.queue.onSubmittedWorkDone();
    $("forward-ms").textContent = `${(performance.now() - start).toFixed(2)} ms`;
    start = performance.now();
    const values = await alibi.forwardToHost(i, j);
    $("to-host-ms").textContent = `${(performance.now() - start).toFixed(2)} ms`;
    const stats = alibi.cacheStats();
    $("cache").textContent = `${stats.hits} hits, ${stats.misses} misses, ${stats.entries} entries, ${stats.bytes} bytes`;
    const mismatch = firstMismatch(values, reference(heads, totalHeads, i, j), [totalHeads, i, j]);
    status.className = mismatch ? "mismatch" : "exact";
    status.textContent = mismatch ? `first mismatch: ${mismatch}` : `exact: ${values.length} values equal, bit for bit`;
    if (head >= 0 && head < totalHeads && i > 0 && j > 0) drawHeatmap(values, [totalHeads, i, j], head);
  } catch (error) {
    status.className = "error";
    status.textContent = `error: ${error.message ?? error}`;
  }
  // The module's GPU buffers and device go now, not when the garbage collector gets to them.
  alibi?.free();
  $("run").disabled = false;
  document.body.dataset.done = "true";
}

await init();
$("form").addEventListener("submit", run);
run();
