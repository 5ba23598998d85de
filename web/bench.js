// The browser bench, run in the page (web/bench.mjs drives it): the dense forms against the
// strided `forward` of the same shape, fresh and from the cache, on the module's device, as
// `alibi bench` measures them natively (cli/src/dense_bench.rs). Each timed call ends when
// the device says its work is done (`onSubmittedWorkDone`); medians of `runs` runs after a
// warm-up, each figure alternated with its baseline.
import init, { AlibiPositionalBias } from "./pkg/alibi_wgpu.js";

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// Frees a module and destroys its device now, not at the page's garbage collection: a
// case's cache (32 MB blocks) left alive made the next case's new buffers cost twice as much.
function release(alibi) {
  const device = alibi.device;
  alibi.free();
  device.destroy();
}

async function timed(device, body) {
  const start = performance.now();
  const result = body();
  await device.queue.onSubmittedWorkDone();
  return [performance.now() - start, result];
}

/** Figures of one case `{ heads, totalHeads, i, j, dtype }`, in milliseconds. */
export async function benchCase({ heads, totalHeads, i, j, dtype = "f32" }, runs) {
  await init();
  const alibi = await AlibiPositionalBias.create(heads, totalHeads, { dtype });
  const device = alibi.device;
  const size = dtype === "f16" ? 2 : 4;
  const bytes = Math.max(4, Math.ceil((totalHeads * i * j * size) / 4) * 4);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const source = device.createBuffer({ size: bytes, usage });
  const budget = alibi.cacheStats().budgetBytes;
  // A buffer allocated once, with room for the strided tensor's padded rows too.
  const padded = Math.ceil(j / 4) * 4;
  const target = device.createBuffer({ size: Math.max(bytes, totalHeads * i * padded * size), usage });
  // Timed to the device's end of the work, as the copies it is compared with are: the
  // call submits before it returns, and its promise (this call's errors, a round trip of
  // its own to the GPU process) is awaited after.
  const intoTarget = async (cols) => {
    const start = performance.now();
    const written = alibi.forwardInto(target, i, cols);
    await device.queue.onSubmittedWorkDone();
    const ms = performance.now() - start;
    await written;
    return ms;
  };

  // Fresh: nothing cached, so every call generates (the strided view into a new cache
  // block, the dense tensor into a new buffer; `forwardInto` the buffer allocated once,
  // dense, and for the strided tensor's shape, j rounded up to a multiple of 4, which the
  // strided kernel writes: the two kernels alone).
  alibi.setCacheBudget(0);
  const strided = [];
  const dense = [];
  const intoFresh = [];
  const stridedInto = [];
  for (let run = 0; run <= runs; run++) {
    const [s, view] = await timed(device, () => alibi.forward(i, j));
    view.free();
    const [d, tensor] = await timed(device, () => alibi.forwardDense(i, j));
    await tensor.check();
    tensor.buffer.destroy();
    const k = await intoTarget(padded);
    const n = await intoTarget(j);
    if (run > 0) strided.push(s), dense.push(d), stridedInto.push(k), intoFresh.push(n);
  }

  // From the cache: the dense copy of a cached block against a device copy of the same
  // bytes into a new buffer; and the strided hit (no GPU work) for reference.
  alibi.setCacheBudget(budget);
  alibi.forward(i, j).free();
  const hit = [];
  const copy = [];
  const into = [];
  const copyInto = [];
  // The copies into the buffer allocated once first, then those into new buffers: a
  // destroyed buffer is freed in the GPU process while the next call runs.
  for (let run = 0; run <= runs; run++) {
    const n = await intoTarget(j);
    const [ci] = await timed(device, () => {
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(source, 0, target, 0, bytes);
      device.queue.submit([encoder.finish()]);
    });
    if (run > 0) into.push(n), copyInto.push(ci);
  }
  for (let run = 0; run <= runs; run++) {
    const [h, tensor] = await timed(device, () => alibi.forwardDense(i, j));
    tensor.buffer.destroy();
    const [c, fresh] = await timed(device, () => {
      const fresh = device.createBuffer({ size: bytes, usage });
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(source, 0, fresh, 0, bytes);
      device.queue.submit([encoder.finish()]);
      return fresh;
    });
    fresh.destroy();
    if (run > 0) hit.push(h), copy.push(c);
  }
  const stats = alibi.cacheStats();
  const info = alibi.adapterInfo();
  source.destroy();
  target.destroy();
  release(alibi);
  const round = (x) => Math.round(x * 1000) / 1000;
  const figures = {
    case: `${heads}x${totalHeads}x${i}x${j}`,
    dtype,
    adapter: `${info.name || "(no name)"} · ${info.backend} · ${info.deviceType}`,
    strided_fresh_ms: round(median(strided)),
    dense_ms: round(median(dense)),
    dense_over_strided: round(median(dense) / median(strided)),
    dense_into_ms: round(median(intoFresh)),
    strided_into_ms: round(median(stridedInto)),
    dense_into_over_strided_into: round(median(intoFresh) / median(stridedInto)),
    copy_new_ms: round(median(copy)),
    dense_hit_ms: round(median(hit)),
    dense_hit_over_copy: round(median(hit) / median(copy)),
    into_hit_ms: round(median(into)),
    copy_into_ms: round(median(copyInto)),
    dense_hit_into_over_copy: round(median(into) / median(copyInto)),
    hits: stats.hits,
  };
  return figures;
}

/** The fused attention from JavaScript (`attention`, host arrays in and out: upload, kernel
 * and readback), plain and causal modules, `{ heads, i, j, d }`; medians in milliseconds. */
export async function benchAttention({ heads, i, j, d }, runs) {
  await init();
  const plain = await AlibiPositionalBias.create(heads, heads);
  const causal = await AlibiPositionalBias.create(heads, heads, { causal: true });
  const random = (length) => Float32Array.from({ length }, () => Math.random() - 0.5);
  const [q, k, v] = [random(heads * i * d), random(heads * j * d), random(heads * j * d)];
  const shape = { queries: i, keys: j, headDim: d };
  const time = async (alibi) => {
    const times = [];
    for (let run = 0; run <= runs; run++) {
      const start = performance.now();
      await alibi.attention(q, k, v, shape);
      if (run > 0) times.push(performance.now() - start);
    }
    return median(times);
  };
  const [fused, masked] = [await time(plain), await time(causal)];
  release(plain);
  release(causal);
  const round = (x) => Math.round(x * 1000) / 1000;
  return {
    case: `attention ${heads}x${i}x${j}x${d}`,
    fused_ms: round(fused),
    gflop_per_s: round((4 * heads * i * j * d) / fused / 1e6),
    causal_ms: round(masked),
    causal_over_fused: round(masked / fused),
  };
}
