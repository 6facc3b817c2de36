/**
 * Generation past the model's positions with attention sinks and a sliding window (StreamingLLM, positions within
 * the cache), on a llama2.c checkpoint (stories260K: 512 positions): a backend's generate() against a reference
 * written here with plain arrays in float64 from the checkpoint's bytes — keys kept unrotated and rotated at their
 * slot in the window at every step, which is what kvt's eviction (keys rotated back once when positions move) must
 * equal. Imports vitest.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { generate, type DecoderOnlyModel } from '@kvt/core';

const [WINDOW, SINKS, CHUNK, NEW] = [256, 4, 16, 4096];

/** llama2.c's checkpoint, as run.c reads it. */
function readCheckpoint(buf: Uint8Array) {
  const head = new Int32Array(buf.buffer, buf.byteOffset, 7);
  const [dim, hidden, L, H, KV, vocab] = [head[0]!, head[1]!, head[2]!, head[3]!, head[4]!, Math.abs(head[5]!)];
  const seq = head[6]!;
  const f = new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.byteLength));
  const hs = dim / H;
  let at = 0;
  const take = (n: number) => f.subarray(at, (at += n));
  const emb = take(vocab * dim);
  const w = {
    rmsAtt: take(L * dim), wq: take(L * dim * dim), wk: take(L * dim * KV * hs), wv: take(L * dim * KV * hs), wo: take(L * dim * dim),
    rmsFfn: take(L * dim), w1: take(L * hidden * dim), w2: take(L * dim * hidden), w3: take(L * hidden * dim), rmsFinal: take(dim),
  };
  take(seq * hs); // freq_cis_real and _imag (unused)
  const wcls = head[5]! > 0 ? emb : f.subarray(at, at + vocab * dim);
  return { dim, hidden, L, H, KV, vocab, hs, emb, wcls, ...w };
}

/** Greedy generation with sinks and a sliding window, plain arrays in float64. */
function referenceSliding(c: ReturnType<typeof readCheckpoint>, prompt: number[], steps: number): number[] {
  const { dim, hidden, L, H, KV, hs } = c;
  const kvDim = KV * hs;
  const matvec = (w: Float32Array, off: number, x: ArrayLike<number>, n: number, d: number) => {
    const out = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += w[off + i * n + j]! * x[j]!;
      out[i] = s;
    }
    return out;
  };
  const rmsnorm = (x: Float64Array, w: Float32Array, off: number) => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const k = 1 / Math.sqrt(ss / x.length + 1e-5);
    return x.map((v, i) => v * k * w[off + i]!);
  };
  // the rotation of slot p, pair i: run.c's frequencies
  const rotate = (v: ArrayLike<number>, off: number, p: number, out: Float64Array) => {
    for (let i = 0; i < hs; i += 2) {
      const angle = p * Math.fround(1 / Math.pow(10000, Math.fround(i / hs)));
      const [x0, x1] = [v[off + i]!, v[off + i + 1]!];
      out[i] = x0 * Math.cos(angle) - x1 * Math.sin(angle);
      out[i + 1] = x0 * Math.sin(angle) + x1 * Math.cos(angle);
    }
    return out;
  };
  const keys: Float64Array[][] = Array.from({ length: L }, () => []); // unrotated
  const values: Float64Array[][] = Array.from({ length: L }, () => []);
  const out: number[] = [];
  let token = prompt[0]!;
  for (let t = 0; t < prompt.length + steps - 1; t++) {
    if (keys[0]!.length + 1 > SINKS + WINDOW) for (let l = 0; l < L; l++) (keys[l]!.splice(SINKS, CHUNK), values[l]!.splice(SINKS, CHUNK));
    const pos = keys[0]!.length; // the new token's slot
    let x = Float64Array.from(c.emb.subarray(token * dim, (token + 1) * dim));
    for (let l = 0; l < L; l++) {
      const xb = rmsnorm(x, c.rmsAtt, l * dim);
      const q = matvec(c.wq, l * dim * dim, xb, dim, dim);
      keys[l]!.push(matvec(c.wk, l * kvDim * dim, xb, dim, kvDim));
      values[l]!.push(matvec(c.wv, l * kvDim * dim, xb, dim, kvDim));
      const att = new Float64Array(dim);
      const qh = new Float64Array(hs);
      const kh = new Float64Array(hs);
      for (let h = 0; h < H; h++) {
        rotate(q, h * hs, pos, qh);
        const g = Math.floor(h / (H / KV));
        const scores = keys[l]!.map((k, j) => {
          rotate(k, g * hs, j, kh);
          let s = 0;
          for (let i = 0; i < hs; i++) s += qh[i]! * kh[i]!;
          return s / Math.sqrt(hs);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const sum = e.reduce((a, b) => a + b, 0);
        values[l]!.forEach((v, j) => {
          for (let i = 0; i < hs; i++) att[h * hs + i] += (e[j]! / sum) * v[g * hs + i]!;
        });
      }
      x = x.map((v, i) => v + matvec(c.wo, l * dim * dim, att, dim, dim)[i]!);
      const xf = rmsnorm(x, c.rmsFfn, l * dim);
      const h1 = matvec(c.w1, l * hidden * dim, xf, dim, hidden);
      const h3 = matvec(c.w3, l * hidden * dim, xf, dim, hidden);
      const act = h1.map((v, i) => (v / (1 + Math.exp(-v))) * h3[i]!);
      const down = matvec(c.w2, l * dim * hidden, act, hidden, dim);
      x = x.map((v, i) => v + down[i]!);
    }
    if (t + 1 < prompt.length) {
      token = prompt[t + 1]!;
      continue;
    }
    const logits = matvec(c.wcls, 0, rmsnorm(x, c.rmsFinal, 0), dim, c.vocab);
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    out.push(best);
    token = best;
  }
  return out;
}

export interface SlidingWindowOptions {
  /** The backend's name, for the suite's title. */
  readonly backend: string;
  /** Makes the backend the active one. */
  activate(): Promise<void>;
  /** The llama2.c checkpoint's bytes, or undefined where the fixture is missing (the suite is skipped). */
  readonly checkpoint: Uint8Array | undefined;
  /** Loads the checkpoint as a model with its tokenizer's encode (and a dispose). */
  load(): Promise<{ model: DecoderOnlyModel; encode(text: string): number[]; dispose(): void }>;
}

/**
 * The sliding-window suite for one backend: 4,096 new tokens with window 256 and 4 sinks equal the reference's, the
 * cache never holds more than the window and sinks (in whole blocks), nothing leaks; step times around tokens 300 and
 * 4,000 are printed (not asserted: machines are shared).
 *
 * @example
 * ```ts
 * describeSlidingWindow({ backend: 'wasm', activate, checkpoint: readFileSync(path), load: async () => ... });
 * ```
 */
export function describeSlidingWindow(o: SlidingWindowOptions): void {
  describe.skipIf(!o.checkpoint)(`sliding window with attention sinks on ${o.backend} (stories260K, 512 positions)`, () => {
    it(`${NEW} new tokens with window ${WINDOW} and ${SINKS} sinks: the reference's tokens; the cache never holds more than ${SINKS + WINDOW} positions (in whole blocks)`, async () => {
      await o.activate();
      const loaded = await o.load();
      try {
        const prompt = loaded.encode('Once upon a time');
        const before = tf.memory().numTensors;
        const result = await generate(loaded.model, { inputIds: prompt, maxNewTokens: NEW, stopTokenIds: [], slidingWindow: { window: WINDOW, sinkTokens: SINKS } });
        const got = result.sequences[0]!.tokens;
        expect(got).toHaveLength(NEW);
        const block = 16; // the caches' blocks: at most 16 positions of room past the window
        expect(result.cache!.capacity).toBeLessThanOrEqual(Math.ceil((SINKS + WINDOW) / block) * block);
        expect(result.cache!.length).toBeLessThanOrEqual(SINKS + WINDOW);
        expect(tf.memory().numTensors).toBe(before);
        const want = referenceSliding(readCheckpoint(o.checkpoint!), prompt, NEW);
        let same = 0;
        while (same < NEW && got[same] === want[same]) same++;
        expect(same, `the first difference at token ${same}`).toBe(NEW);
        const around = (i: number) => [...result.timing.decodeMs.slice(i - 50, i + 50)].sort((a, b) => a - b)[50]!;
        console.log(`sliding window on ${o.backend}: median step ${around(300).toFixed(3)} ms at token 300, ${around(4000).toFixed(3)} ms at token 4000`);
      } finally {
        loaded.dispose();
      }
    }, 300_000);
  });
}
