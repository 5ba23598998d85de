// The ALiBi bias in plain JavaScript, written from docs/semantics.md alone: the page and its test check
// the wasm module against it. Every f32 operation is a JavaScript double rounded once with
// Math.fround; a product of two f32 values is exact in a double, so its fround is the f32
// product, bit for bit.

/** The paper's slope of head `h` of `heads`, rounded once to f32 (docs/semantics.md, "Slopes"). */
export function slope(h, heads) {
  const c = 2 ** Math.floor(Math.log2(heads));
  const exponent = h < c ? (-8 * (h + 1)) / c : (-4 * (2 * (h - c) + 1)) / c;
  return Math.fround(2 ** exponent);
}

/** forward(i, j) of a fresh module: [totalHeads, i, j] row-major, as a Float32Array. */
export function forward(heads, totalHeads, i, j) {
  const out = new Float32Array(totalHeads * i * j);
  for (let h = 0; h < heads; h++) {
    const m = slope(h, heads);
    for (let r = 0; r < i; r++) {
      const query = j - i + r;
      const row = (h * i + r) * j;
      for (let k = 0; k < j; k++) {
        // (0 - distance) * slope: the negated integer distance, +0 on the diagonal as in
        // PyTorch; `-Math.abs(0)` would be -0 here, a different f32.
        out[row + k] = Math.fround((0 - Math.abs(k - query)) * m);
      }
    }
  }
  return out; // heads past `heads` stay +0: the padding
}

/** Where `actual` differs from `expected`, bit for bit, or null. */
export function firstMismatch(actual, expected, [heads, i, j]) {
  if (actual.length !== expected.length) {
    return `${actual.length} values, expected ${expected.length}`;
  }
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let n = 0; n < a.length; n++) {
    if (a[n] !== e[n]) {
      const [h, r, k] = [Math.floor(n / (i * j)), Math.floor(n / j) % i, n % j];
      return `head ${h}, row ${r}, key ${k}: got ${actual[n]}, expected ${expected[n]}`;
    }
  }
  return heads * i * j === a.length ? null : "shape mismatch";
}

/** forward(i, j) of a causal module: every future key (k > j - i + r) of every head is -Infinity. */
export function forwardCausal(heads, totalHeads, i, j) {
  const out = forward(heads, totalHeads, i, j);
  for (let h = 0; h < totalHeads; h++) {
    for (let r = 0; r < i; r++) {
      for (let k = Math.max(0, j - i + r + 1); k < j; k++) out[(h * i + r) * j + k] = -Infinity;
    }
  }
  return out;
}

/** The bias at custom positions, one sequence: [totalHeads, queries.length, keys.length]. */
export function forwardPositions(heads, totalHeads, queries, keys, causal) {
  const [i, j] = [queries.length, keys.length];
  const out = new Float32Array(totalHeads * i * j);
  for (let h = 0; h < totalHeads; h++) {
    const m = h < heads ? slope(h, heads) : 0;
    for (let r = 0; r < i; r++) {
      for (let k = 0; k < j; k++) {
        const offset = keys[k] - queries[r];
        const value = h < heads ? Math.fround((0 - Math.abs(offset)) * m) : 0;
        out[(h * i + r) * j + k] = causal && offset > 0 ? -Infinity : value;
      }
    }
  }
  return out;
}

/**
 * The f16 an f32 bias value is stored as (docs/semantics.md, "f16"), as a number: finite values saturate
 * at ±65504, then round to nearest even (11 significant bits; 2^-24 steps below 2^-14).
 */
export function f16(value) {
  if (!Number.isFinite(value) || value === 0) return value;
  const x = Math.min(Math.max(value, -65504), 65504);
  const magnitude = Math.abs(x);
  let exponent = Math.max(Math.floor(Math.log2(magnitude)), -14);
  while (exponent > -14 && 2 ** exponent > magnitude) exponent--;
  while (2 ** (exponent + 1) <= magnitude) exponent++;
  const quantum = 2 ** (exponent - 10);
  const scaled = x / quantum; // exact: a power of two
  let rounded = Math.round(scaled);
  if (Math.abs(scaled - Math.trunc(scaled)) === 0.5 && rounded % 2 !== 0) rounded -= 1;
  return rounded * quantum;
}
