// The ALiBi bias in plain JavaScript, written from SPEC alone: the page and its test check
// the wasm module against it. Every f32 operation is a JavaScript double rounded once with
// Math.fround; a product of two f32 values is exact in a double, so its fround is the f32
// product, bit for bit.

/** The paper's slope of head `h` of `heads`, rounded once to f32 (SPEC "Slopes"). */
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
