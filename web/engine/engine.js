// The real-engine test's page side: onnxruntime-web's WebGPU execution provider runs the
// attention graphs of make_graphs.py on the GPUDevice of an alibi-wgpu module, the ALiBi bias
// handed to it as a GPUBuffer (ort.Tensor.fromGpuBuffer), never read back to the host; each
// output is compared with reference.js in float64. engine-test.mjs calls `runCase(name)` for
// every name of `cases` through Playwright.
import init, { AlibiPositionalBias } from "alibi-wgpu";
import * as ort from "onnxruntime-web/webgpu";
import * as ref from "./reference.js";

/**
 * The largest |engine - reference| allowed on an output element (outputs lie in [-1, 1]). f32:
 * the worst seen on SwiftShader is 3.5e-7; 1e-5 leaves room for other GPUs' summation orders
 * and exp, and a bias off by 0.05 in a single element already moves an output by 2.5e-3.
 * f16: the engine rounds scores, probabilities and sums to f16 (2^-11 relative, and scores
 * near -10 to 2^-7 absolute); the worst seen on lavapipe (SwiftShader has no shader-f16) is
 * 7.4e-4, and 1e-2 leaves room for other GPUs' f16 arithmetic.
 */
export const TOLERANCE = { f32: 1e-5, f16: 1e-2 };
const SCALE = 0.25; // the graphs' scale, 1 / sqrt(HEAD_DIM)
const HEAD_DIM = 16;

let ready;
/** Loads the wasm module, points onnxruntime-web at its files served here, and starts watching reads. */
export function setup() {
  ready ??= (async () => {
    await init();
    ort.env.wasm.wasmPaths = new URL("/node_modules/onnxruntime-web/dist/", location.href).href;
    ort.env.wasm.numThreads = 1; // no cross-origin isolation here, so no wasm threads
    // Verbose: onnxruntime-web then logs each session's node placements ("All nodes placed on
    // [WebGpuExecutionProvider]") and each WebGPU program it runs, which engine-test.mjs counts.
    ort.env.logLevel = "verbose";
    watchReads();
  })();
  return ready;
}

// --- Did anything read a bias back? -----------------------------------------------------------
// Every buffer handed to the engine as a bias is registered; a copy out of it into a mappable
// buffer, or a map of it, is a readback to the host, counted here, whoever makes it (the
// engine through its WebGPU calls, or this page).
const biasBuffers = new WeakSet();
const readbacks = [];
function watchReads() {
  const copy = GPUCommandEncoder.prototype.copyBufferToBuffer;
  GPUCommandEncoder.prototype.copyBufferToBuffer = function (source, ...rest) {
    const destination = typeof rest[0] === "number" ? rest[1] : rest[0];
    if (biasBuffers.has(source) && destination.usage & GPUBufferUsage.MAP_READ) {
      readbacks.push(`copyBufferToBuffer from a bias buffer into a MAP_READ buffer`);
    }
    return copy.call(this, source, ...rest);
  };
  const map = GPUBuffer.prototype.mapAsync;
  GPUBuffer.prototype.mapAsync = function (...args) {
    if (biasBuffers.has(this)) readbacks.push("mapAsync of a bias buffer");
    return map.apply(this, args);
  };
}

// --- The bias on the GPU, dense, as the engine binds it ------------------------------------------
/** The bias [1, H, i, j], dense at offset 0 of a new GPUBuffer (`forwardDense`). */
export async function gpuBias(alibi, i, j) {
  const tensor = alibi.forwardDense(i, j);
  await tensor.check(); // this call's own GPU errors, if any
  const { buffer, shape, dtype } = tensor;
  return { buffer, dims: [1, ...shape], dtype, via: "forwardDense", release: () => buffer.destroy() };
}

/** The bias [1, H, i, j] written into `target`, a GPUBuffer the caller owns (`forwardInto`);
 * `via` says whether the module's cache served it. */
export async function gpuBiasInto(alibi, target, i, j) {
  const hits = alibi.cacheStats().hits;
  await alibi.forwardInto(target, i, j);
  const via = alibi.cacheStats().hits > hits ? "forwardInto, from the cache" : "forwardInto";
  return { buffer: target, dims: [1, totalHeadsOf(alibi), i, j], dtype: dtypeOf(alibi), via, release() {} };
}

/** The bias at positions, [batch, H, i, j] dense at offset 0 (`forwardPositionsDense`). */
export async function gpuPositionsBias(alibi, queries, keys) {
  const tensor = alibi.forwardPositionsDense(queries, keys);
  await tensor.check();
  const { buffer, shape, dtype } = tensor;
  return { buffer, dims: [...shape], dtype, via: "forwardPositionsDense", release: () => buffer.destroy() };
}

// The module does not say its head count and dtype in JavaScript: the test remembers them.
const created = new WeakMap();
const totalHeadsOf = (alibi) => created.get(alibi).totalHeads;
const dtypeOf = (alibi) => created.get(alibi).dtype;
async function module(heads, totalHeads, options) {
  const alibi = await AlibiPositionalBias.create(heads, totalHeads, options);
  created.set(alibi, { heads, totalHeads, dtype: options.dtype ?? "f32", causal: options.causal ?? false });
  return alibi;
}

// --- The engine -----------------------------------------------------------------------------------
const sessions = new Map();
let sessionsCreated = 0;
/** How many sessions the page created, for engine-test.mjs to match with the placements logged. */
export const sessionCount = () => sessionsCreated;
/** One session per graph and module, on the module's device. */
async function session(alibi, graph) {
  let byGraph = sessions.get(alibi);
  if (!byGraph) sessions.set(alibi, (byGraph = new Map()));
  if (!byGraph.has(graph)) {
    const created = await ort.InferenceSession.create(`/models/${graph}.onnx`, {
      executionProviders: [{ name: "webgpu", device: alibi.device }],
      preferredOutputLocation: "gpu-buffer",
      // Every node on the WebGPU EP, or the session is refused: no silent CPU fallback.
      extra: { session: { disable_cpu_ep_fallback: "1" } },
      logSeverityLevel: 0,
    });
    sessionsCreated++;
    byGraph.set(graph, created);
  }
  return byGraph.get(graph);
}

function hostTensor(dtype, values, dims) {
  if (dtype === "f16") {
    const bits = Uint16Array.from(values, ref.toF16Bits);
    return { tensor: new ort.Tensor("float16", bits, dims), values: Array.from(bits, ref.fromF16Bits) };
  }
  const f32 = Float32Array.from(values);
  return { tensor: new ort.Tensor("float32", f32, dims), values: Array.from(f32) };
}

function numbers(data) {
  return data instanceof Uint16Array ? Array.from(data, ref.fromF16Bits) : Array.from(data, Number);
}

/**
 * One engine call: q [B, N, S, D], k and v [B, N, T, D] from the seeded generator, the bias
 * from the GPU (`bias`, made by one of the helpers above); the output against the reference
 * with `expectedBias` ([Bb, N, S, T], float64). Returns the call's record.
 */
async function engineCall(alibi, graph, { B, S, T, bias, expectedBias, seed }) {
  const N = bias.dims[1];
  const dtype = bias.dtype;
  const next = ref.random(seed);
  const draw = (n) => Array.from({ length: n }, next);
  const q = hostTensor(dtype, draw(B * N * S * HEAD_DIM), [B, N, S, HEAD_DIM]);
  const k = hostTensor(dtype, draw(B * N * T * HEAD_DIM), [B, N, T, HEAD_DIM]);
  const v = hostTensor(dtype, draw(B * N * T * HEAD_DIM), [B, N, T, HEAD_DIM]);
  biasBuffers.add(bias.buffer);
  const biasTensor = ort.Tensor.fromGpuBuffer(bias.buffer, {
    dataType: dtype === "f16" ? "float16" : "float32",
    dims: bias.dims,
  });
  const onGpu = biasTensor.location === "gpu-buffer" && biasTensor.gpuBuffer === bias.buffer;
  const readsBefore = readbacks.length;
  const run = await (await session(alibi, graph)).run({ q: q.tensor, k: k.tensor, v: v.tensor, bias: biasTensor });
  const out = run.out;
  const outputOnGpu = out.location === "gpu-buffer";
  const actual = numbers(await out.getData(true)); // the output only comes back to the host
  const expected = ref.attention(q.values, k.values, v.values, expectedBias, [B, N, S, T, HEAD_DIM], bias.dims[0], SCALE);
  let worst = 0;
  let where = 0;
  for (let n = 0; n < expected.length; n++) {
    const error = Math.abs(actual[n] - expected[n]);
    if (!(error <= worst)) [worst, where] = [error, n]; // NaN counts as the worst
  }
  const biasReadBack = readbacks.length > readsBefore;
  const ok = actual.length === expected.length && worst <= TOLERANCE[dtype] && onGpu && !biasReadBack;
  return {
    graph, dtype, shape: [B, N, S, T], via: bias.via, onGpu: onGpu && !biasReadBack, outputOnGpu, worst, ok,
    detail: ok ? "" : `worst |error| ${worst} at ${where} (got ${actual[where]}, expected ${expected[where]}), `
      + `${actual.length} of ${expected.length} values, bias on the GPU ${onGpu}, bias read back ${biasReadBack}`,
  };
}

/** Runs `call` on each graph with one bias; a bias the library cannot give fails every call. */
async function onGraphs(calls, graphs, makeBias, args) {
  let bias;
  try {
    bias = await makeBias();
  } catch (error) {
    for (const graph of graphs) calls.push({ graph, ok: false, onGpu: false, detail: `the bias: ${error.message}` });
    return;
  }
  try {
    for (const graph of graphs) {
      try {
        calls.push(await engineCall(args.alibi, graph, { ...args, bias }));
      } catch (error) {
        const message = `${error.message ?? error}`;
        // onnxruntime-web's WebGPU EP generates no f16 program on a device without shader-f16
        // (shader_helper.cc: "Program ... requires f16 but the device does not support it").
        // That refusal is the engine's, checked to be exactly that one, and reported; it fails
        // the call only with ALIBI_ENGINE_REQUIRE_F16=1.
        const refused = bias.dtype === "f16" && !args.alibi.device.features.has("shader-f16")
          && /requires f16 but the device does not support it/.test(message);
        calls.push({
          graph, dtype: bias.dtype, via: bias.via, ok: refused && !options.requireF16, onGpu: false, refused,
          detail: refused ? `onnxruntime-web refused the f16 graph on this device (no shader-f16): ${message}` : message,
        });
      }
    }
  } finally {
    bias.release();
  }
}

const options = { requireF16: false };
const graphsFor = (dtype, totalHeads) => [`ops_${dtype}`, `mha_${dtype}_n${totalHeads}`];

// --- The cases ------------------------------------------------------------------------------------
export const cases = {
  /** Fresh shapes on an 8-head f32 module, the batch of 2 sharing one bias: j = 16 (a multiple of 4), 37, 13. */
  async fresh_shapes_f32() {
    const calls = [];
    for (const [i, j] of [[16, 16], [37, 37], [5, 13]]) {
      const alibi = await module(8, 8, {});
      await onGraphs(calls, graphsFor("f32", 8), () => gpuBias(alibi, i, j), {
        alibi, B: 2, S: i, T: j, expectedBias: ref.bias(8, 8, i, j, false), seed: i * 1000 + j,
      });
      tag(calls, `${i}x${j}`);
    }
    return calls;
  },

  /** A causal 8-head module: a prefill of 16 tokens, then three decode steps (1 x 17, 18, 19)
   * into one buffer, all from the cache, which the engine fills once for the context the loop
   * reaches (a decode step is then a copy per head straight into the engine's buffer). */
  async prefill_then_decode_f32() {
    const calls = [];
    const alibi = await module(8, 8, { causal: true });
    const prefill = 16;
    const steps = 3;
    alibi.forward(prefill + steps, prefill + steps).free();
    await onGraphs(calls, graphsFor("f32", 8), () => gpuBias(alibi, prefill, prefill), {
      alibi, B: 1, S: prefill, T: prefill, expectedBias: ref.bias(8, 8, prefill, prefill, true), seed: 7,
    });
    tag(calls, `prefill ${prefill}x${prefill}`);
    const target = alibi.device.createBuffer({
      size: 8 * (prefill + steps) * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    for (let j = prefill + 1; j <= prefill + steps; j++) {
      await onGraphs(calls, graphsFor("f32", 8), () => gpuBiasInto(alibi, target, 1, j), {
        alibi, B: 1, S: 1, T: j, expectedBias: ref.bias(8, 8, 1, j, true), seed: 100 + j,
      });
      tag(calls, `decode 1x${j}`);
      for (const call of calls.filter((c) => c.label === `decode 1x${j}` && c.via !== "forwardInto, from the cache")) {
        call.ok = false;
        call.detail = `not served from the cache (${call.via}): ${call.detail ?? ""}`;
      }
    }
    target.destroy();
    return calls;
  },

  /** 4 heads with slopes padded to 6 (heads 4 and 5 all zero) into a 6-head graph. */
  async padding_heads_f32() {
    const calls = [];
    for (const [i, j] of [[8, 8], [7, 11]]) {
      const alibi = await module(4, 6, {});
      await onGraphs(calls, graphsFor("f32", 6), () => gpuBias(alibi, i, j), {
        alibi, B: 1, S: i, T: j, expectedBias: ref.bias(4, 6, i, j, false), seed: 300 + i * j,
      });
      tag(calls, `${i}x${j}`);
    }
    return calls;
  },

  /** An f16 causal 8-head module into the f16 graphs. */
  async f16_module() {
    const calls = [];
    for (const [i, j] of [[12, 12], [9, 21]]) {
      let alibi;
      try {
        alibi = await module(8, 8, { dtype: "f16", causal: true });
      } catch (error) {
        for (const graph of graphsFor("f16", 8)) {
          calls.push({ graph, dtype: "f16", ok: false, onGpu: false, detail: `the f16 module: ${error.message}` });
        }
        tag(calls, `${i}x${j}`);
        continue;
      }
      // The f16 the module stores: every bias here is a multiple of a power of two, exact in f16.
      const expectedBias = ref.bias(8, 8, i, j, true).map((x) => ref.fromF16Bits(ref.toF16Bits(x)));
      await onGraphs(calls, graphsFor("f16", 8), () => gpuBias(alibi, i, j), {
        alibi, B: 1, S: i, T: j, expectedBias, seed: 500 + i * j,
      });
      tag(calls, `${i}x${j}`);
    }
    return calls;
  },

  /**
   * Two left-padded sequences (BLOOM-style positions: the pads at 0, the tokens counting from
   * 0 after them), each its own positions on both sides, [2, 8, L, L] for L = 8 and 11.
   */
  async left_padded_positions_f32() {
    const calls = [];
    for (const [length, pads] of [[8, 3], [11, 4]]) {
      const alibi = await module(8, 8, {});
      const rows = [0, pads].map((p) => Array.from({ length }, (_, t) => Math.max(0, t - p)));
      const values = rows.flat();
      const expectedBias = new Float64Array(2 * 8 * length * length);
      rows.forEach((row, b) => expectedBias.set(ref.biasAt(8, 8, row, row, false), b * 8 * length * length));
      await onGraphs(calls, graphsFor("f32", 8),
        () => gpuPositionsBias(alibi, { values, batch: 2 }, { values, batch: 2 }),
        { alibi, B: 2, S: length, T: length, expectedBias, seed: 700 + length });
      tag(calls, `batch 2, ${length}x${length}, ${pads} pads`);
    }
    return calls;
  },
};

function tag(calls, label) {
  for (const call of calls) call.label ??= label;
}

/** Runs one case in the page; what comes back is plain data for engine-test.mjs. */
export async function runCase(name, { requireF16 = false } = {}) {
  await setup();
  options.requireF16 = requireF16;
  const calls = await cases[name]();
  return calls.map(({ label, graph, ok, onGpu, refused, via, worst, dtype, outputOnGpu, detail }) =>
    ({ label, graph, ok, onGpu, refused: refused ?? false, via, worst, dtype, outputOnGpu, detail }));
}

/**
 * What the module's device has of what onnxruntime-web asks of a device it makes itself
 * (webgpu_context.cc: GetAvailableRequiredFeatures, GetRequiredLimits), beside the adapter's.
 * `shader-f16` and `timestamp-query` are features wgpu 30's webgpu backend can request
 * (FEATURES_MAPPING in wgpu's src/backend/webgpu.rs); `subgroups` and `subgroup-size-control`
 * are not in that mapping, so a device wgpu 30 opens never has them: reported, not required.
 */
export async function deviceReport() {
  await setup();
  const alibi = await module(2, 2, {});
  const adapter = await navigator.gpu.requestAdapter();
  const requestable = ["shader-f16", "timestamp-query"];
  const notRequestable = ["subgroups", "subgroup-size-control"];
  const limits = ["maxBindGroups", "maxComputeWorkgroupStorageSize", "maxComputeWorkgroupsPerDimension",
    "maxStorageBufferBindingSize", "maxBufferSize", "maxComputeInvocationsPerWorkgroup",
    "maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY", "maxComputeWorkgroupSizeZ"];
  const device = alibi.device;
  const lacks = (features) => features.filter((f) => adapter.features.has(f) && !device.features.has(f));
  return {
    isGpuDevice: device instanceof GPUDevice,
    adapterFeatures: [...adapter.features].sort(),
    deviceFeatures: [...device.features].sort(),
    missingFeatures: lacks(requestable),
    missingUnrequestable: lacks(notRequestable),
    lowerLimits: limits.filter((l) => device.limits[l] < adapter.limits[l])
      .map((l) => `${l} ${device.limits[l]} < adapter's ${adapter.limits[l]}`),
    info: alibi.adapterInfo(),
    api: ["forwardDense", "forwardInto", "forwardPositionsDense"].filter((f) => typeof alibi[f] === "function"),
  };
}
