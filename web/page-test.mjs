// The page-level test: serves target/web on loopback, opens it in headless Chromium on
// WebGPU, and drives it through the JavaScript API (values against reference.js, a cache
// hit, rejected bad calls, the GPU view) and through the demo's own form. Prints one line
// per test and "N passed, M failed"; exits non-zero on any failure, and when there is no
// WebGPU adapter. Usage: node web/page-test.mjs <dir of the built page> [screenshot.png]
import { launch, serve, tests } from "./harness.mjs";

const [root, screenshot] = process.argv.slice(2);
const { server, url } = await serve(root);
const { browser, page } = await launch();
page.on("console", (message) => {
  if (message.type() === "error") console.error(`  page console: ${message.text()}`);
});
const { test, assert, finish } = tests();

await page.goto(url);
await page.waitForFunction(() => document.body.dataset.done === "true", null, { timeout: 120_000 });

await test("webgpu_adapter_is_there", async () => {
  const adapter = await page.evaluate(async () => Boolean(await navigator.gpu?.requestAdapter()));
  assert(adapter, "navigator.gpu.requestAdapter() gave no adapter: is WebGPU enabled?");
});

await test("forward_to_host_equals_the_javascript_reference", async () => {
  const result = await page.evaluate(async () => {
    const { AlibiPositionalBias } = await import("./pkg/alibi_wgpu.js");
    const { forward, firstMismatch } = await import("./reference.js");
    const mismatches = [];
    for (const [heads, total, i, j] of [[4, 8, 3, 5], [8, 8, 16, 16], [12, 16, 7, 33], [5, 5, 40, 3], [1, 3, 1, 300]]) {
      const alibi = await AlibiPositionalBias.create(heads, total);
      const values = await alibi.forwardToHost(i, j);
      const mismatch = firstMismatch(values, forward(heads, total, i, j), [total, i, j]);
      if (mismatch) mismatches.push(`[${heads}, ${total}, ${i}, ${j}]: ${mismatch}`);
    }
    // The worked example of docs/semantics.md, head 0, row 0, bit for bit (+0 on the diagonal).
    const alibi = await AlibiPositionalBias.create(4, 8);
    const row = (await alibi.forwardToHost(3, 5)).subarray(0, 5);
    const spec = firstMismatch(row, new Float32Array([-0.5, -0.25, 0, -0.25, -0.5]), [1, 1, 5]);
    return { mismatches, spec };
  });
  assert(result.mismatches.length === 0, result.mismatches.join("; "));
  assert(result.spec === null, `worked-example row: ${result.spec}`);
});

await test("a_later_request_inside_a_cached_tensor_is_a_hit", async () => {
  const result = await page.evaluate(async () => {
    const { AlibiPositionalBias } = await import("./pkg/alibi_wgpu.js");
    const { forward, firstMismatch } = await import("./reference.js");
    const alibi = await AlibiPositionalBias.create(4);
    await alibi.forwardToHost(3, 5);
    const before = alibi.cacheStats();
    const fields = Object.keys(before).sort().join(",");
    const step = await alibi.forwardToHost(1, 5); // the last query row of (3, 5)
    const after = alibi.cacheStats();
    return { before, after, fields, mismatch: firstMismatch(step, forward(4, 4, 1, 5), [4, 1, 5]) };
  });
  const nine = "budgetBytes,bytes,entries,evictions,hits,misses,peakBytes,recycledBytes,stagingBytes";
  assert(result.fields === nine, `cacheStats fields ${result.fields}`);
  assert(result.after.hits === result.before.hits + 1, `hits ${JSON.stringify(result)}`);
  assert(result.after.misses === result.before.misses, `misses ${JSON.stringify(result)}`);
  assert(result.mismatch === null, `the decode step: ${result.mismatch}`);
});

await test("bad_calls_reject_with_the_error_and_the_module_stays_usable", async () => {
  const result = await page.evaluate(async () => {
    const { AlibiPositionalBias } = await import("./pkg/alibi_wgpu.js");
    const { forward, firstMismatch } = await import("./reference.js");
    const messages = [];
    await AlibiPositionalBias.create(0).catch((error) => messages.push(error.message));
    await AlibiPositionalBias.create(4, 2).catch((error) => messages.push(error.message));
    const alibi = await AlibiPositionalBias.create(2);
    await alibi.forwardToHost(1 << 25, 1).catch((error) => messages.push(error.message));
    try {
      alibi.forward(1 << 24, 1 << 24);
    } catch (error) {
      messages.push(error.message);
    }
    // Numbers that are not counts are refused, never wrapped or truncated into another size.
    const notCounts = [];
    for (const [i, j] of [[-1, 5], [1.5, 5], [NaN, 5], [2 ** 32 + 3, 5], [3, undefined]]) {
      await alibi.forwardToHost(i, j).then(
        () => notCounts.push(`forwardToHost(${i}, ${j}) resolved`),
        (error) => notCounts.push(error.message),
      );
    }
    await AlibiPositionalBias.create(4, -1).then(
      () => notCounts.push("create(4, -1) resolved"),
      (error) => notCounts.push(error.message),
    );
    const after = await alibi.forwardToHost(1, 2);
    return { messages, notCounts, after: firstMismatch(after, forward(2, 2, 1, 2), [2, 1, 2]) };
  });
  const [zero, below, tooLong, tooLarge] = result.messages;
  assert(result.messages.length === 4, `rejections: ${JSON.stringify(result.messages)}`);
  assert(zero.includes("heads must be at least 1"), zero);
  assert(below.includes("total_heads (2) must be at least heads (4)"), below);
  assert(tooLong.includes("exceeds 16777216"), tooLong);
  assert(tooLarge.includes("bytes"), tooLarge);
  assert(
    result.notCounts.length === 6 && result.notCounts.every((m) => m.includes("must be a whole number")),
    `not counts: ${JSON.stringify(result.notCounts)}`,
  );
  assert(result.after === null, `after the refusals: ${result.after}`);
});

await test("forward_gives_a_gpu_view_an_engine_can_bind", async () => {
  const view = await page.evaluate(async () => {
    const { AlibiPositionalBias } = await import("./pkg/alibi_wgpu.js");
    const alibi = await AlibiPositionalBias.create(4, 8);
    alibi.forward(16, 16);
    const view = alibi.forward(3, 5); // the bottom-right slice of the cached (16, 16)
    return {
      isBuffer: view.buffer instanceof GPUBuffer,
      isDevice: alibi.device instanceof GPUDevice,
      storage: (view.buffer.usage & GPUBufferUsage.STORAGE) !== 0,
      shape: view.shape,
      offset: view.offset,
      headStride: view.headStride,
      rowStride: view.rowStride,
      info: alibi.adapterInfo(),
    };
  });
  assert(view.isBuffer && view.isDevice, JSON.stringify(view));
  assert(view.storage, "the view's buffer cannot be bound as storage");
  assert(JSON.stringify(view.shape) === "[8,3,5]", `shape ${view.shape}`);
  assert(view.rowStride === 16 && view.headStride === 256, JSON.stringify(view));
  assert(view.offset === 13 * 16 + 11, `offset ${view.offset}`);
  assert(view.info.backend === "BrowserWebGpu", JSON.stringify(view.info));
});

await test("forward_into_writes_the_dense_bias_exactly_from_the_cache_or_fresh", async () => {
  const result = await page.evaluate(async () => {
    const { AlibiPositionalBias } = await import("./pkg/alibi_wgpu.js");
    const { forward, firstMismatch } = await import("./reference.js");
    const alibi = await AlibiPositionalBias.create(4, 6);
    const device = alibi.device;
    const size = 6 * 16 * 16 * 4 + 64;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const target = device.createBuffer({ size, usage });
    const pattern = new Uint8Array(size).map((_, n) => (n * 7 + 3) & 255);
    const read = async () => {
      const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(target, 0, staging, 0, size);
      device.queue.submit([encoder.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const bytes = new Uint8Array(staging.getMappedRange().slice(0));
      staging.destroy();
      return bytes;
    };
    const problems = [];
    // (i, j, byteOffset, cached first): fresh (the staging buffer); from the cache with a
    // copy per head (a decode step) or one copy (the cached tensor itself), straight into
    // the target; from the cache through the staging buffer (90 rows: more copies than
    // go straight).
    for (const [i, j, offset, cached] of [[5, 9, 8, false], [1, 16, 4, true], [16, 16, 0, true], [15, 13, 12, true]]) {
      const budget = alibi.cacheStats().budgetBytes;
      alibi.setCacheBudget(0); // empties the cache
      alibi.setCacheBudget(budget);
      if (cached) alibi.forward(16, 16).free();
      device.queue.writeBuffer(target, 0, pattern);
      const before = alibi.cacheStats();
      await alibi.forwardInto(target, i, j, offset);
      const after = alibi.cacheStats();
      const bytes = await read();
      const end = offset + 6 * i * j * 4;
      const values = new Float32Array(bytes.slice(offset, end).buffer);
      const mismatch = firstMismatch(values, forward(4, 6, i, j), [6, i, j]);
      if (mismatch) problems.push(`${i}x${j} at ${offset}: ${mismatch}`);
      const outside = [...bytes].findIndex((b, n) => (n < offset || n >= end) && b !== pattern[n]);
      if (outside >= 0) problems.push(`${i}x${j} at ${offset}: byte ${outside} outside the tensor changed`);
      if (after.hits - before.hits !== (cached ? 1 : 0)) problems.push(`${i}x${j}: hits ${before.hits} -> ${after.hits}`);
    }
    target.destroy();
    return problems;
  });
  assert(result.length === 0, result.join("; "));
});

await test("causal_f16_and_positions_equal_the_javascript_reference", async () => {
  const result = await page.evaluate(async () => {
    const { AlibiPositionalBias } = await import("./pkg/alibi_wgpu.js");
    const ref = await import("./reference.js");
    const mismatches = [];
    const check = (name, actual, expected, shape) => {
      const difference = ref.firstMismatch(actual, expected, shape);
      if (difference) mismatches.push(`${name}: ${difference}`);
    };
    const causal = await AlibiPositionalBias.create(4, 6, { causal: true });
    for (const [i, j] of [[5, 9], [1, 12], [9, 4]]) {
      check(`causal ${i}x${j}`, await causal.forwardToHost(i, j), ref.forwardCausal(4, 6, i, j), [6, i, j]);
    }
    const plain = await AlibiPositionalBias.create(4, 6, {});
    const [q, k] = [[0, 1, 2, 4], [0, 1, 2, 3, 5]];
    check("positions", await plain.forwardPositionsToHost(q, k), ref.forwardPositions(4, 6, q, k, false), [6, 4, 5]);
    check("causal positions", await causal.forwardPositionsToHost(q, k), ref.forwardPositions(4, 6, q, k, true), [6, 4, 5]);
    // Two sequences: queries [2] and keys [3] each, back to back.
    const batched = await plain.forwardPositionsToHost(
      { values: new Int32Array([0, 1, 5, 6]), batch: 2 },
      { values: [0, 1, 2, 4, 5, 6], batch: 2 },
    );
    const expected = new Float32Array(2 * 6 * 2 * 3);
    expected.set(ref.forwardPositions(4, 6, [0, 1], [0, 1, 2], false), 0);
    expected.set(ref.forwardPositions(4, 6, [5, 6], [4, 5, 6], false), 6 * 2 * 3);
    check("batched positions", batched, expected, [12, 2, 3]);
    // Batched queries (left-padded rows) against keys shared by both items.
    const mixed = await plain.forwardPositionsToHost({ values: [1, 2, 0, 2], batch: 2 }, [0, 1, 2]);
    const expectedMixed = new Float32Array(2 * 6 * 2 * 3);
    expectedMixed.set(ref.forwardPositions(4, 6, [1, 2], [0, 1, 2], false), 0);
    expectedMixed.set(ref.forwardPositions(4, 6, [0, 2], [0, 1, 2], false), 6 * 2 * 3);
    check("batched queries, shared keys", mixed, expectedMixed, [12, 2, 3]);
    const views = plain.forwardPositions(q, k);
    const viewInfo = { count: views.length, dtype: views[0].dtype, shape: views[0].shape };

    const adapter = await navigator.gpu.requestAdapter();
    const hasF16 = adapter.features.has("shader-f16");
    let f16 = null;
    try {
      const narrow = await AlibiPositionalBias.create(2, 2, { dtype: "f16", causal: true });
      const [i, j] = [2, 1 << 21];
      const values = await narrow.forwardToHost(i, j);
      check("f16", values, ref.forwardCausal(2, 2, i, j).map(ref.f16), [2, i, j]);
      f16 = { dtype: narrow.forward(1, 3).dtype, first: values[0] };
    } catch (error) {
      f16 = { error: error.message };
    }
    const refusals = [];
    for (const options of [{ causl: true }, { dtype: "f64" }, { causal: "yes" }, 7]) {
      await AlibiPositionalBias.create(2, 2, options).catch((error) => refusals.push(error.message));
    }
    await plain.forwardPositionsToHost([0.5], [0]).catch((error) => refusals.push(error.message));
    await plain.forwardPositionsToHost({ values: [0, 1, 2], batch: 2 }, [0]).catch((error) => refusals.push(error.message));
    await plain.forwardPositionsToHost([0, 1], [0, 1], 2).catch((error) => refusals.push(error.message));
    await plain.forwardPositionsToHost({ values: [0], batch: 1, extra: 1 }, [0]).catch((error) => refusals.push(error.message));
    return { mismatches, viewInfo, hasF16, f16, refusals };
  });
  assert(result.mismatches.length === 0, result.mismatches.join("; "));
  assert(result.viewInfo.count === 1 && result.viewInfo.dtype === "f32", JSON.stringify(result.viewInfo));
  // f16 on every adapter: packed by integer rounding where the adapter lacks shader-f16.
  assert(result.f16.dtype === "f16" && result.f16.first === -65504, JSON.stringify(result.f16));
  console.log(`  shader-f16 on this adapter: ${result.hasF16} (f16 served either way)`);
  const expected = [/unknown option "causl"/, /options.dtype/, /options.causal/, /options must be an object/,
    /queries\[0\] must be a whole number/, /do not split into a batch of 2/, /takes two arguments/,
    /unknown key "extra" in queries/];
  assert(
    result.refusals.length === expected.length && expected.every((pattern, n) => pattern.test(result.refusals[n])),
    JSON.stringify(result.refusals),
  );
});

await test("attention_from_javascript", async () => {
  const result = await page.evaluate(async () => {
    const { AlibiPositionalBias } = await import("./pkg/alibi_wgpu.js");
    const alibi = await AlibiPositionalBias.create(2, 4, { causal: true });
    // Values all 1 on every row: every output is 1, whatever the weights.
    const [queries, keys, headDim, kvHeads] = [3, 7, 8, 2];
    const q = Float32Array.from({ length: 4 * queries * headDim }, (_, n) => Math.sin(n));
    const k = Float32Array.from({ length: kvHeads * keys * headDim }, (_, n) => Math.cos(n));
    const v = new Float32Array(kvHeads * keys * headDim).fill(1);
    const y = await alibi.attention(q, k, v, { queries, keys, headDim, kvHeads }, { windowLeft: 2 });
    const refusal = await alibi.attention(q, k, v, { queries, keys, headDim: 6 }).catch((e) => e.message);
    return { length: y.length, ones: y.every((x) => Math.abs(x - 1) < 1e-6), refusal };
  });
  assert(result.length === 4 * 3 * 8 && result.ones, JSON.stringify(result));
  assert(/head dimension 6/.test(result.refusal), result.refusal);
});

await test("the_demo_page_computes_8_x_1024_x_1024_exactly", async () => {
  for (const [id, value] of [["heads", 8], ["total", 8], ["i", 1024], ["j", 1024], ["head", 0]]) {
    await page.fill(`#${id}`, String(value));
  }
  await page.click("#run");
  await page.waitForFunction(() => document.body.dataset.done === "true", null, { timeout: 300_000 });
  const status = await page.textContent("#status");
  const forwardMs = await page.textContent("#forward-ms");
  const toHostMs = await page.textContent("#to-host-ms");
  const adapter = await page.textContent("#adapter");
  console.log(`  demo [8, 1024, 1024] on ${adapter}: forward ${forwardMs}, forwardToHost ${toHostMs}; ${status}`);
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  assert(status.startsWith("exact"), status);
});

await browser.close();
finish(() => server.close());
