// The reference of the real-engine test, in float64, written from docs/semantics.md: the ALiBi
// bias and softmax(q k^T * scale + bias) v. Nothing here comes from the library or the engine.

/** Head h's slope of `heads` (docs/semantics.md, "Slopes"), in float64. */
export function slope(h, heads) {
  const c = 2 ** Math.floor(Math.log2(heads));
  return h < c ? 2 ** ((-8 * (h + 1)) / c) : 2 ** ((-4 * (2 * (h - c) + 1)) / c);
}

/**
 * The bias of one sequence, [totalHeads, queries.length, keys.length] as a Float64Array:
 * -slope_h * |key - query| for the first `heads` heads, 0 for the padding heads; with `causal`,
 * -Infinity for every key after its query (every head, the padding ones too).
 */
export function biasAt(heads, totalHeads, queries, keys, causal) {
  const [i, j] = [queries.length, keys.length];
  const out = new Float64Array(totalHeads * i * j);
  for (let h = 0; h < totalHeads; h++) {
    const m = h < heads ? slope(h, heads) : 0;
    for (let r = 0; r < i; r++) {
      for (let c = 0; c < j; c++) {
        const distance = keys[c] - queries[r];
        out[(h * i + r) * j + c] = causal && distance > 0 ? -Infinity : -m * Math.abs(distance);
      }
    }
  }
  return out;
}

/** forward(i, j): queries at j - i .. j - 1, keys at 0 .. j - 1. */
export function bias(heads, totalHeads, i, j, causal) {
  const range = (from, n) => Array.from({ length: n }, (_, k) => from + k);
  return biasAt(heads, totalHeads, range(j - i, i), range(0, j), causal);
}

/**
 * softmax(q k^T * scale + bias) v in float64. q [B, N, S, D], k and v [B, N, T, D], bias
 * [Bb, N, S, T] with Bb = 1 or B; all flat arrays of numbers. Returns [B, N, S, D].
 */
export function attention(q, k, v, biasValues, [B, N, S, T, D], biasBatch, scale) {
  const out = new Float64Array(B * N * S * D);
  const scores = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    const bb = biasBatch === 1 ? 0 : b;
    for (let n = 0; n < N; n++) {
      for (let s = 0; s < S; s++) {
        const qRow = ((b * N + n) * S + s) * D;
        const biasRow = ((bb * N + n) * S + s) * T;
        let max = -Infinity;
        for (let t = 0; t < T; t++) {
          const kRow = ((b * N + n) * T + t) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qRow + d] * k[kRow + d];
          scores[t] = dot * scale + biasValues[biasRow + t];
          max = Math.max(max, scores[t]);
        }
        let sum = 0;
        for (let t = 0; t < T; t++) {
          scores[t] = Math.exp(scores[t] - max);
          sum += scores[t];
        }
        const outRow = ((b * N + n) * S + s) * D;
        for (let t = 0; t < T; t++) {
          const p = scores[t] / sum;
          const vRow = ((b * N + n) * T + t) * D;
          for (let d = 0; d < D; d++) out[outRow + d] += p * v[vRow + d];
        }
      }
    }
  }
  return out;
}

/** A seeded generator of numbers in [-1, 1) (mulberry32). */
export function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  };
}

/** The bits of the f16 nearest to `value` (ties to even; saturating to infinity past 65520). */
export function toF16Bits(value) {
  const f32 = new Float32Array([value]);
  const x = new Uint32Array(f32.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mantissa | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let rounded = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    if (rest > half || (rest === half && rounded & 1)) rounded++;
    return sign | rounded;
  }
  let bits = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && bits & 1)) bits++;
  return sign | bits;
}

/** The number an f16's bits stand for. */
export function fromF16Bits(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
