/**
 * The KV cache conformance suite: one call per backend runs every check of exactness (cached logits against a full
 * uncached forward pass), cache operations, beams, aborts and tensor leaks over every architecture.
 *
 * @example
 * ```ts
 * // packages/backend-wasm/src/conformance.test.ts
 * describeCacheConformance({ backend: 'wasm', cache: 'backend', setup: () => import('./index.js') });
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AbortedError,
  CacheStateError,
  InvalidOptionError,
  PromptTooLongError,
  TokenOutOfRangeError,
  argmax,
  createPrefixCache,
  createRng,
  createSession,
  generate,
  translate,
  type Cache,
  type DecoderOnlyModel,
  type EncoderDecoderCache,
  type EncoderDecoderModel,
  type Logits,
} from '@kvt/core';
import { bruteForceBeamSearch } from '@kvt/core/testing';
import { QUANTIZED_FORMATS, supportsWeightFormat } from '@kvt/kernels';
import { LlamaModel, type LlamaConfig } from '../architectures/llama.js';
import { randomLlamaParameters } from '../weights/random.js';
import { dequantizedLlamaParameters } from './dequantized.js';
import { restoreSession, saveSession } from '../kv-cache/session-state.js';
import { tinyDecoderOnlyModels, tinyEncoderDecoderModels } from './tiny-models.js';

export interface ConformanceOptions {
  /** tfjs backend name. */
  readonly backend: string;
  /** Which cache the models create: the backend's own or the reference concat cache. */
  readonly cache: 'backend' | 'concat';
  /** Registers the backend (and its cache) before the suite. */
  readonly setup?: () => Promise<unknown>;
  /** Decode steps of the exactness runs (64 unless a slow backend asks for fewer). */
  readonly steps?: number;
}

/** Max |a − b| ≤ 1e-4 × max |b|, with a useful failure message. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rel = 1e-4): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let maxAbs = 0;
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(expected[i]!));
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
  }
  expect(maxDiff, `${what}: max |diff| ${maxDiff} vs max |logit| ${maxAbs}`).toBeLessThanOrEqual(rel * maxAbs);
}

function lastRow(l: Logits, row: number): Float32Array {
  const start = (row * l.positions + l.positions - 1) * l.vocabSize;
  return l.data.slice(start, start + l.vocabSize);
}

/** Logits of row `row` at position `position` of an `all`-positions result. */
function rowAt(l: Logits, row: number, position: number): Float32Array {
  const start = (row * l.positions + position) * l.vocabSize;
  return l.data.slice(start, start + l.vocabSize);
}

/** `ids` right-padded with token 0 to `length`. */
const fixedLength = (ids: number[], length: number) => [...ids, ...Array<number>(length - ids.length).fill(0)];

const PROMPTS = [[1, 5, 9, 14, 3, 22, 7], [1, 30], [1, 8, 8, 41, 17]];
const SOURCES = [[4, 9, 13, 22, 5, 2], [7, 3, 2], [11, 12, 40, 6, 2]];

export function describeCacheConformance(o: ConformanceOptions): void {
  const steps = o.steps ?? 64;
  describe(`KV cache conformance: ${o.backend} backend, ${o.cache} cache`, () => {
    let tensorsBefore = 0;
    beforeAll(async () => {
      await o.setup?.();
      tf.env().set('IS_TEST', true);
      const ok = await tf.setBackend(o.backend);
      if (!ok) throw new Error(`backend ${o.backend} failed to initialize`);
      await tf.ready();
    });
    beforeEach(() => {
      tensorsBefore = tf.memory().numTensors;
    });
    afterEach(() => {
      expect(tf.memory().numTensors, 'tensors leaked by this test').toBe(tensorsBefore);
    });

    for (const spec of tinyDecoderOnlyModels) {
      describe(spec.name, () => {
        let model: DecoderOnlyModel;
        beforeAll(() => {
          model = spec.build();
        });
        afterAll(() => model.dispose());

        for (const batch of [1, 3]) {
          it(`cached logits equal a full uncached forward at each of ${steps} greedy steps (batch ${batch})`, async () => {
            const prompts = PROMPTS.slice(0, batch);
            const seqs = prompts.map((p) => [...p]);
            const cache = model.createCache({ batchSize: batch, kind: o.cache });
            try {
              // greedy steps through the cache, keeping each step's logits
              const stepLogits: Float32Array[][] = [];
              let logits = await model.forward(seqs, cache);
              for (let step = 0; step < steps; step++) {
                stepLogits.push(prompts.map((_, b) => lastRow(logits, b)));
                const next = stepLogits[step]!.map((row) => argmax(row));
                next.forEach((t, b) => seqs[b]!.push(t));
                if (step < steps - 1) logits = await model.forward(next.map((t) => [t]), cache);
              }
              // one uncached forward over every sequence gives the logits of every position: step s of row b is
              // position (prompt length − 1 + s) of that row (left-padded to the longest)
              const full = await model.forward(seqs, null, { logits: 'all' });
              const longest = Math.max(...seqs.map((q) => q.length));
              stepLogits.forEach((rows, step) =>
                rows.forEach((row, b) => {
                  const at = longest - seqs[b]!.length + prompts[b]!.length - 1 + step;
                  expectClose(row, full.data.subarray(at * full.vocabSize + b * full.positions * full.vocabSize, (at + 1) * full.vocabSize + b * full.positions * full.vocabSize), `step ${step} row ${b}`);
                }),
              );
              expect(cache.length).toBe(Math.max(...prompts.map((p) => p.length)) + steps - 1);
            } finally {
              cache.dispose();
            }
          });
        }

        it('truncate rolls back, fork branches, reorder permutes: each equal to recomputation', async () => {
          const seqs = PROMPTS.map((p) => [...p]);
          const cache = model.createCache({ batchSize: 3, kind: o.cache });
          const forks: Cache[] = [];
          try {
            await model.forward(seqs, cache);
            const extra = [[3, 4, 5, 6], [7, 8, 9, 10], [11, 12, 13, 14]];
            for (let i = 0; i < 4; i++) await model.forward(extra.map((e) => [e[i]!]), cache);
            const L = cache.length;
            // truncate: drop the last two tokens, feed two others, compare with recomputation
            cache.truncate(L - 2);
            expect(cache.length).toBe(L - 2);
            const alt = await model.forward([[20, 21], [22, 23], [24, 25]], cache);
            const altFull = await model.forward(seqs.map((s, b) => [...s, ...extra[b]!.slice(0, 2), 20 + 2 * b, 21 + 2 * b]), null);
            for (let b = 0; b < 3; b++) expectClose(lastRow(alt, b), lastRow(altFull, b), `after truncate row ${b}`);
            // fork: the copy and the original advance independently
            const copy = cache.fork();
            forks.push(copy);
            const a = await model.forward([[30], [31], [32]], cache);
            const c = await model.forward([[40], [41], [42]], copy);
            const base = seqs.map((s, b) => [...s, ...extra[b]!.slice(0, 2), 20 + 2 * b, 21 + 2 * b]);
            const aFull = await model.forward(base.map((s, b) => [...s, 30 + b]), null);
            const cFull = await model.forward(base.map((s, b) => [...s, 40 + b]), null);
            for (let b = 0; b < 3; b++) {
              expectClose(lastRow(a, b), lastRow(aFull, b), `original after fork row ${b}`);
              expectClose(lastRow(c, b), lastRow(cFull, b), `fork row ${b}`);
            }
            // reorder: rows [2, 0, 0] (keep, duplicate, drop)
            cache.reorder([2, 0, 0]);
            expect(cache.batchSize).toBe(3);
            const r = await model.forward([[50], [51], [52]], cache);
            const order = [2, 0, 0];
            const rFull = await model.forward(order.map((src, b) => [...base[src]!, 30 + src, 50 + b]), null);
            for (let b = 0; b < 3; b++) expectClose(lastRow(r, b), lastRow(rFull, b), `after reorder row ${b}`);
            expect(() => cache.reorder([0, 3, 1])).toThrow(CacheStateError);
            expect(() => cache.truncate(cache.length + 1)).toThrow(CacheStateError);
          } finally {
            cache.dispose();
            forks.forEach((f) => f.dispose());
          }
        });

        it('bytes are the K/V at capacity, the real allocation at most one growth step more, and nothing else grows per step', async () => {
          const c = model.config;
          const rows = 2;
          const perPosition = 2 * c.numLayers * rows * c.numKvHeads * c.headDim * 4;
          const bytesBefore = tf.memory().numBytes;
          const cache = model.createCache({ batchSize: rows, kind: o.cache });
          try {
            // what the cache really holds: its tensors, plus host memory for caches that keep K/V outside tfjs
            const held = () => tf.memory().numBytes - bytesBefore + ((cache as { hostBytes?: number }).hostBytes ?? 0);
            await model.forward([[1, 2, 3], [4, 5, 6]], cache);
            let last = { capacity: cache.capacity, held: held(), tensors: tf.memory().numTensors };
            let growths = 0;
            while (cache.length < Math.min(c.maxPositions, 100)) {
              await model.forward([[7], [8]], cache);
              const now = { capacity: cache.capacity, held: held(), tensors: tf.memory().numTensors };
              const at = `length ${cache.length}, capacity ${now.capacity}`;
              expect(cache.bytes, `bytes = 2·layers·batch·kvHeads·headDim·capacity·4 at ${at}`).toBe(perPosition * now.capacity);
              expect(now.capacity, at).toBeGreaterThanOrEqual(cache.length);
              expect(now.held, at).toBeGreaterThanOrEqual(cache.bytes);
              // one growth step (doubling: half the storage), or one 64 KiB WebAssembly page of rounding, plus a
              // head's kernel scratch
              expect(now.held - cache.bytes, `overhead at ${at}`).toBeLessThanOrEqual(Math.max(cache.bytes / 2, 65536) + 16384);
              if (now.capacity === last.capacity) {
                expect(now.held, `held bytes grew at ${at} without a capacity change`).toBe(last.held);
                expect(now.tensors, `tensors grew at ${at}`).toBe(last.tensors);
              } else growths++;
              last = now;
            }
            // amortized growth: O(log length) doublings, not one per step (the concat reference grows every step)
            if (o.cache === 'backend') expect(growths).toBeLessThanOrEqual(Math.ceil(Math.log2(cache.length)));
          } finally {
            cache.dispose();
          }
        });

        it('generate leaks nothing after success, an abort, or a thrown error', async () => {
          await generate(model, { inputIds: PROMPTS, maxNewTokens: 8, cache: o.cache });
          const controller = new AbortController();
          const aborted = await generate(model, {
            inputIds: PROMPTS[0]!,
            maxNewTokens: 40,
            cache: o.cache,
            signal: controller.signal,
            onToken: (e) => e.step === 2 && controller.abort(),
          }).catch((e: unknown) => e);
          expect(AbortedError.isInstance(aborted)).toBe(true);
          const tooLong = await generate(model, { inputIds: Array(150).fill(3), maxNewTokens: 20, cache: o.cache }).catch((e: unknown) => e);
          expect(PromptTooLongError.isInstance(tooLong)).toBe(true);
          const badToken = await model.forward([[1, 99999]], null).catch((e: unknown) => e);
          expect(TokenOutOfRangeError.isInstance(badToken)).toBe(true);
        });
      });
    }

    it('quantized weights (the formats the backend multiplies): cached logits equal an uncached forward at every step', async () => {
      for (const format of QUANTIZED_FORMATS.filter((f) => supportsWeightFormat(f, o.backend))) {
        // rows of 64 values (q4_k: 256, whole super-blocks) are quantized; the FFN's down projection (rows of 48) stays float32
        const config: LlamaConfig = {
          architecture: 'llama', vocabSize: 61, hiddenSize: format === 'q4_k' ? 256 : 64, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2,
          maxPositions: 160, specialTokens: { bos: 1, eos: [2], pad: 0 },
        };
        const model = LlamaModel.fromParameters(config, randomLlamaParameters(config, 31, { tied: true }), { weights: format });
        try {
          expect(model.weightBytes[format], `${format} weights held`).toBeGreaterThan(0);
          const seqs = PROMPTS.map((p) => [...p]);
          const cache = model.createCache({ batchSize: 3, kind: o.cache });
          const stepLogits: Float32Array[][] = [];
          let logits = await model.forward(seqs, cache);
          for (let step = 0; step < 12; step++) {
            stepLogits.push(seqs.map((_, b) => lastRow(logits, b)));
            const next = stepLogits[step]!.map((row) => argmax(row));
            next.forEach((t, b) => seqs[b]!.push(t));
            if (step < 11) logits = await model.forward(next.map((t) => [t]), cache);
          }
          cache.dispose();
          const full = await model.forward(seqs, null, { logits: 'all' });
          const longest = Math.max(...seqs.map((q) => q.length));
          stepLogits.forEach((rows, step) =>
            rows.forEach((row, b) => {
              const at = (b * full.positions + longest - seqs[b]!.length + PROMPTS[b]!.length - 1 + step) * full.vocabSize;
              expectClose(row, full.data.subarray(at, at + full.vocabSize), `${format} step ${step} row ${b}`);
            }),
          );
        } finally {
          model.dispose();
        }
      }
    });

    it('quantized weights: logits (prefill and 6 cached steps) equal the same model built from the dequantized weights in float32', async () => {
      // every linear weight quantized (rows of 64 and 96 values; q4_k: 256 and 512, whole super-blocks), a vocabulary
      // of 61 rows (a tail after the row groups of four), tied (the embedding table is the output projection) and untied
      for (const format of QUANTIZED_FORMATS.filter((f) => supportsWeightFormat(f, o.backend)))
        for (const tied of [true, false]) {
          const wide = format === 'q4_k';
          const config: LlamaConfig = {
            architecture: 'llama', vocabSize: 61, hiddenSize: wide ? 256 : 64, intermediateSize: wide ? 512 : 96, numLayers: 2, numHeads: 4, numKvHeads: 2,
            maxPositions: 160, specialTokens: { bos: 1, eos: [2], pad: 0 },
          };
          const quantized = LlamaModel.fromParameters(config, randomLlamaParameters(config, 33, { tied }), { weights: format });
          const reference = LlamaModel.fromParameters(config, dequantizedLlamaParameters(randomLlamaParameters(config, 33, { tied }), config, format));
          try {
            const seqs = PROMPTS.map((p) => [...p]);
            const caches = [quantized, reference].map((m) => m.createCache({ batchSize: 3, kind: o.cache }));
            for (let step = 0; step < 7; step++) {
              const input = step === 0 ? seqs : seqs.map((q) => [q[q.length - 1]!]);
              const [got, want] = [await quantized.forward(input, caches[0]!), await reference.forward(input, caches[1]!)];
              seqs.forEach((_, b) => expectClose(lastRow(got, b), lastRow(want, b), `${format} tied ${tied} step ${step} row ${b}`, 1e-3));
              seqs.forEach((q, b) => q.push(argmax(lastRow(want, b))));
            }
            caches.forEach((c) => c.dispose());
          } finally {
            quantized.dispose();
            reference.dispose();
          }
        }
    });

    it('fp16 weights: a value beyond fp16\'s range is a typed error at build, nothing left behind', (ctx) => {
      if (!supportsWeightFormat('fp16', o.backend)) return ctx.skip(); // known once the backend package is imported
      const config: LlamaConfig = {
        architecture: 'llama', vocabSize: 61, hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2,
        maxPositions: 160, specialTokens: { bos: 1, eos: [2], pad: 0 },
      };
      const params = randomLlamaParameters(config, 34);
      params.get('layers.1.down').data[17] = 70000; // rounds to inf in fp16
      const before = tf.memory().numTensors;
      expect(() => LlamaModel.fromParameters(config, params, { weights: 'fp16' })).toThrow(/layers\.1\.down holds inf, NaN or a larger value/);
      expect(tf.memory().numTensors).toBe(before);
      LlamaModel.fromParameters(config, randomLlamaParameters(config, 34), { weights: 'fp16' }).dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    it('decoder-only beam search (4 beams, 12 steps, tiny vocab) equals a brute-force uncached search', async () => {
      const model = tinyDecoderOnlyModels[0]!.build(7);
      try {
        const prompt = [1, 4, 3];
        const result = await generate(model, {
          inputIds: prompt,
          maxNewTokens: 12,
          numBeams: 4,
          numReturnSequences: 4,
          stopTokenIds: [2],
          cache: o.cache,
        });
        const expected = await bruteForceBeamSearch(
          async (seqs) => {
            // one fixed shape for every call (4 rows × prompt + 12 positions, right-padded: a causal model's logits at
            // a position ignore what follows), so backends that compile per shape compile once
            const rows = Array.from({ length: 4 }, (_, b) => fixedLength([...prompt, ...(seqs[b] ?? seqs[0]!)], prompt.length + 12));
            const l = await model.forward(rows, null, { logits: 'all' });
            return seqs.map((s, b) => rowAt(l, b, prompt.length + s.length - 1));
          },
          4,
          12,
          [2],
        );
        const got = result.sequences[0]!.hypotheses!;
        expect(got.map((h) => h.tokens)).toEqual(expected.map((h) => h.tokens));
        got.forEach((h, i) => expect(Math.abs(h.score - expected[i]!.score)).toBeLessThan(1e-4));
      } finally {
        model.dispose();
      }
    });

    it('a session of 5 turns equals uncached greedy runs over the whole conversation; each turn prefills only its new tokens', async () => {
      const model = tinyDecoderOnlyModels[0]!.build(8);
      const session = createSession(model, { cache: o.cache, prefix: [1] });
      try {
        const rng = createRng(21);
        let conversation = [1];
        for (let turn = 0; turn < 5; turn++) {
          const ids = Array.from({ length: 1 + (turn % 3) }, () => 3 + Math.floor(rng.next() * (model.config.vocabSize - 3)));
          const got = await session.generate({ inputIds: ids, maxNewTokens: 6, stopTokenIds: [] });
          // the previous turn's last token (not in the cache yet) and this turn's ids: nothing earlier again
          expect(got.prefillTokens, `turn ${turn}`).toBe(1 + ids.length);
          conversation = [...conversation, ...ids];
          const want = await generate(model, { inputIds: conversation, maxNewTokens: 6, stopTokenIds: [], cache: 'none' });
          expect(got.sequences[0]!.tokens, `turn ${turn}`).toEqual(want.sequences[0]!.tokens);
          conversation = [...conversation, ...want.sequences[0]!.tokens];
          expect(session.tokens).toEqual(conversation);
          expect(session.cache.length).toBe(conversation.length - 1);
        }
        // a fork continues independently; truncate rewinds; beams in a session keep the best beam
        const branch = session.fork();
        const a = await branch.generate({ inputIds: [5], maxNewTokens: 4, stopTokenIds: [] });
        const b = await session.generate({ inputIds: [5], maxNewTokens: 4, stopTokenIds: [] });
        expect(a.sequences[0]!.tokens).toEqual(b.sequences[0]!.tokens);
        branch.dispose();
        session.truncate(conversation.length);
        const beams = await session.generate({ inputIds: [6], maxNewTokens: 5, numBeams: 3, stopTokenIds: [] });
        const beamsWant = await generate(model, { inputIds: [...conversation, 6], maxNewTokens: 5, numBeams: 3, stopTokenIds: [], cache: 'none' });
        expect(beams.sequences[0]!.tokens).toEqual(beamsWant.sequences[0]!.tokens);
        expect(session.cache.batchSize).toBe(1);
        const after = await session.generate({ inputIds: [7], maxNewTokens: 3, stopTokenIds: [] });
        const afterWant = await generate(model, { inputIds: [...conversation, 6, ...beamsWant.sequences[0]!.tokens, 7], maxNewTokens: 3, stopTokenIds: [], cache: 'none' });
        expect(after.sequences[0]!.tokens).toEqual(afterWant.sequences[0]!.tokens);
        expect(after.prefillTokens).toBe(5 + 1); // the beam's tokens were not kept in the cache: fed again with the new id
      } finally {
        session.dispose();
        model.dispose();
      }
    });

    it('a prefix cache reuses the whole blocks of earlier prompts; greedy and beams equal generating without it; nothing leaks', async () => {
      const before = tf.memory().numTensors;
      const model = tinyDecoderOnlyModels[0]!.build(11);
      const prefixCache = createPrefixCache(model, { cache: o.cache });
      try {
        const bs = prefixCache.blockSize;
        const rng = createRng(23);
        const ids = (n: number) => Array.from({ length: n }, () => 3 + Math.floor(rng.next() * (model.config.vocabSize - 3)));
        const system = [1, ...ids(2 * bs + 3)]; // two whole blocks and 4 ids
        // [prompt, beams, positions reused]: the first prompt finds nothing; later ones the system prompt's 2 blocks,
        // or the one block they share with it
        const p0 = [...system, ...ids(5)];
        const cases: [number[], number, number][] = [
          [p0, 1, 0],
          [p0, 3, 2 * bs],
          [[...system, ...ids(7)], 1, 2 * bs],
          [[...system.slice(0, bs + 2), ...ids(3)], 3, bs],
        ];
        for (const [i, [prompt, numBeams, reused]] of cases.entries()) {
          const got = await generate(model, { inputIds: prompt, maxNewTokens: 6, numBeams, stopTokenIds: [], prefixCache });
          const want = await generate(model, { inputIds: prompt, maxNewTokens: 6, numBeams, stopTokenIds: [], cache: 'none' });
          expect(got.reusedTokens, `case ${i}`).toBe(reused);
          expect(got.prefillTokens, `case ${i}`).toBe(prompt.length - reused);
          expect(got.sequences[0]!.tokens, `case ${i}`).toEqual(want.sequences[0]!.tokens);
          if (got.cache?.blocks && reused > 0) expect(got.cache.blocks.shared, `case ${i}: shared blocks`).toBeGreaterThanOrEqual(reused / bs);
        }
        // a session's first turn starts from the held prefix too, and later turns go on as usual
        const session = createSession(model, { prefixCache, prefix: [1] });
        const turn = [...system.slice(1), ...ids(4)];
        const first = await session.generate({ inputIds: turn, maxNewTokens: 5, stopTokenIds: [] });
        expect([first.reusedTokens, first.prefillTokens]).toEqual([2 * bs, system.length + 4 - 2 * bs]);
        const firstWant = await generate(model, { inputIds: [1, ...turn], maxNewTokens: 5, stopTokenIds: [], cache: 'none' });
        expect(first.sequences[0]!.tokens).toEqual(firstWant.sequences[0]!.tokens);
        const next = await session.generate({ inputIds: [5], maxNewTokens: 3, stopTokenIds: [] });
        const nextWant = await generate(model, { inputIds: [1, ...turn, ...firstWant.sequences[0]!.tokens, 5], maxNewTokens: 3, stopTokenIds: [], cache: 'none' });
        expect(next.sequences[0]!.tokens).toEqual(nextWant.sequences[0]!.tokens);
        session.dispose();
        expect(prefixCache.stats).toEqual({ hits: 4, misses: 1, reusedTokens: 7 * bs });
        // every prompt's whole blocks are the system prompt's first one or two: one prefix is held
        expect(prefixCache.size).toBe(1);
      } finally {
        prefixCache.dispose();
        model.dispose();
      }
      expect(prefixCache.bytes).toBe(0);
      expect(tf.memory().numTensors).toBe(before);
    });

    it('save → restore → continue equals continuing without the round trip; a corrupt state or another model is a typed error', async () => {
      const model = tinyDecoderOnlyModels[0]!.build(9);
      const other = tinyDecoderOnlyModels[0]!.build(10);
      const session = createSession(model, { cache: o.cache, prefix: [1] });
      try {
        await session.generate({ inputIds: [4, 5, 6], maxNewTokens: 5, stopTokenIds: [] });
        const bytes = await saveSession(session);
        const restored = await restoreSession(model, bytes, { cache: o.cache });
        expect(restored.tokens).toEqual(session.tokens);
        const a = await session.generate({ inputIds: [7], maxNewTokens: 6, stopTokenIds: [] });
        const b = await restored.generate({ inputIds: [7], maxNewTokens: 6, stopTokenIds: [] });
        expect(b.sequences[0]!.tokens).toEqual(a.sequences[0]!.tokens);
        expect(b.prefillTokens).toBe(a.prefillTokens);
        restored.dispose();
        const before = tf.memory().numTensors;
        const corrupt = bytes.slice();
        corrupt[corrupt.length - 40]! ^= 1;
        await expect(restoreSession(model, corrupt)).rejects.toThrow(CacheStateError);
        await expect(restoreSession(model, bytes.slice(0, bytes.length - 8))).rejects.toThrow(/not a usable kvt cache state/);
        await expect(restoreSession(other, bytes)).rejects.toThrow(/saved from another model/);
        expect(tf.memory().numTensors).toBe(before);
      } finally {
        session.dispose();
        model.dispose();
        other.dispose();
      }
    });

    for (const spec of tinyEncoderDecoderModels) {
      describe(spec.name, () => {
        let model: ReturnType<typeof spec.build>;
        beforeAll(() => {
          model = spec.build();
        });
        afterAll(() => model.dispose());

        for (const batch of [1, 3]) {
          it(`cached decoder logits equal a full uncached decode at each of ${steps} greedy steps (batch ${batch})`, async () => {
            const sources = SOURCES.slice(0, batch);
            const state = await model.encode(sources);
            const cache = model.createCache({ encoderState: state, kind: o.cache });
            try {
              const start = model.config.specialTokens.decoderStart!;
              const targets = sources.map(() => [start]);
              const stepLogits: Float32Array[][] = [];
              let logits = await model.decode(targets, state, cache);
              for (let step = 0; step < steps; step++) {
                stepLogits.push(sources.map((_, b) => lastRow(logits, b)));
                const next = stepLogits[step]!.map((row) => argmax(row));
                next.forEach((t, b) => targets[b]!.push(t));
                if (step < steps - 1) logits = await model.decode(next.map((t) => [t]), state, cache);
              }
              // one uncached decode of every target gives the logits of every position (step s = position s)
              const full = await model.decode(targets, state, null, { logits: 'all' });
              const V = full.vocabSize;
              stepLogits.forEach((rows, step) =>
                rows.forEach((row, b) => {
                  const at = (b * full.positions + step) * V;
                  expectClose(row, full.data.subarray(at, at + V), `step ${step} row ${b}`);
                }),
              );
            } finally {
              cache.dispose();
              state.dispose();
            }
          });
        }

        it('projects cross-attention K/V once per layer per translation, whatever the output length or beams', async () => {
          const layers = model.config.numLayers;
          for (const [maxNewTokens, numBeams] of [[3, 1], [12, 1], [8, 4]] as const) {
            const before = model.counters.crossAttentionProjections;
            await translate(model, { sourceIds: SOURCES[0]!, maxNewTokens, numBeams, stopTokenIds: [], cache: o.cache });
            expect(model.counters.crossAttentionProjections - before).toBe(layers);
          }
        });

        it('runs the first decoder step once per source, then fans out to the beams', async () => {
          const rows: number[] = [];
          const watched = { ...model, kind: model.kind, config: model.config, encode: model.encode.bind(model), createCache: model.createCache.bind(model),
            decode: ((ids, state, cache, options) => (rows.push(ids.length), model.decode(ids, state, cache, options))) as typeof model.decode };
          await translate(watched, { sourceIds: SOURCES, maxNewTokens: 4, numBeams: 4, stopTokenIds: [], cache: o.cache });
          expect(rows[0], 'the first decoder call').toBe(SOURCES.length);
          expect(rows.slice(1).every((n) => n === SOURCES.length * 4)).toBe(true);
        });

        it('batched translation equals translating each source alone', async () => {
          const together = await translate(model, { sourceIds: SOURCES, maxNewTokens: 10, cache: o.cache });
          for (let i = 0; i < SOURCES.length; i++) {
            const alone = await translate(model, { sourceIds: SOURCES[i]!, maxNewTokens: 10, cache: o.cache });
            expect(together.translations[i]!.tokens).toEqual(alone.translations[0]!.tokens);
          }
        });

        it('translate continues a given cache: two calls equal one (the second runs only its prefix); 4 beams over it; a mismatched cache is a typed error', async () => {
          const before = tf.memory().numTensors;
          const whole = await translate(model, { sourceIds: SOURCES[0]!, maxNewTokens: 10, stopTokenIds: [], cache: o.cache });
          const state = await model.encode([SOURCES[0]!]);
          const cache = model.createCache({ encoderState: state, rowsPerSource: 1, kind: o.cache });
          try {
            const first = await translate(model, { sourceIds: SOURCES[0]!, maxNewTokens: 4, stopTokenIds: [], cache });
            expect(cache.length, 'the start token and every generated token but the last').toBe(4);
            const last = first.translations[0]!.tokens.at(-1)!;
            const rows: number[] = [];
            const watched = { ...model, kind: model.kind, config: model.config, encode: model.encode.bind(model), createCache: model.createCache.bind(model),
              decode: ((ids, s, c, options) => (rows.push(ids[0]!.length), model.decode(ids, s, c, options))) as typeof model.decode };
            const rest = await translate(watched, { sourceIds: SOURCES[0]!, targetPrefix: [last], maxNewTokens: 6, stopTokenIds: [], cache });
            expect(rows[0], 'the second call runs its prefix only').toBe(1);
            expect([...first.translations[0]!.tokens, ...rest.translations[0]!.tokens.slice(1)]).toEqual(whole.translations[0]!.tokens);
            expect(cache.disposed).toBe(false);
            // beams over a given cache fan its row out and equal beams over the same prefix from scratch
            const fork = cache.fork() as EncoderDecoderCache;
            const beams = await translate(model, { sourceIds: SOURCES[0]!, targetPrefix: rest.translations[0]!.tokens.slice(-1), maxNewTokens: 3, numBeams: 4, stopTokenIds: [], cache: fork });
            const prefix = [...first.translations[0]!.tokens, ...rest.translations[0]!.tokens.slice(1)];
            const fresh = await translate(model, { sourceIds: SOURCES[0]!, targetPrefix: prefix, maxNewTokens: 3, numBeams: 4, stopTokenIds: [], cache: o.cache });
            expect(beams.translations[0]!.tokens.slice(1)).toEqual(fresh.translations[0]!.tokens.slice(prefix.length));
            expect(fork.batchSize).toBe(4);
            fork.dispose();
            const noPrefix = await translate(model, { sourceIds: SOURCES[0]!, maxNewTokens: 2, cache }).catch((e: unknown) => e);
            expect(InvalidOptionError.isInstance(noPrefix), 'nothing to continue the cache with').toBe(true);
            const twoSources = await translate(model, { sourceIds: SOURCES.slice(0, 2), targetPrefix: [last], cache }).catch((e: unknown) => e);
            expect(CacheStateError.isInstance(twoSources)).toBe(true);
            expect(cache.length, 'refused before any work').toBe(10);
          } finally {
            cache.dispose();
            state.dispose();
          }
          expect(tf.memory().numTensors).toBe(before);
        });

        it('beam reorder keeps rows within their source; translate leaks nothing after an abort or error', async () => {
          const state = await model.encode(SOURCES.slice(0, 2));
          const cache: EncoderDecoderCache = model.createCache({ encoderState: state, rowsPerSource: 2, kind: o.cache });
          try {
            await model.decode([[1], [1], [1], [1]], state, cache);
            expect(() => cache.reorder([1, 0, 3, 2])).not.toThrow();
            expect(() => cache.reorder([2, 0, 3, 1])).toThrow(CacheStateError);
          } finally {
            cache.dispose();
            state.dispose();
          }
          const controller = new AbortController();
          const aborted = await translate(model, {
            sourceIds: SOURCES[0]!,
            maxNewTokens: 30,
            stopTokenIds: [],
            cache: o.cache,
            signal: controller.signal,
            onToken: (e) => e.step === 3 && controller.abort(),
          }).catch((e: unknown) => e);
          expect(AbortedError.isInstance(aborted)).toBe(true);
          const bad = await translate(model, { sourceIds: [1, 10_000], cache: o.cache }).catch((e: unknown) => e);
          expect(TokenOutOfRangeError.isInstance(bad)).toBe(true);
        });
      });
    }

    it('encoder-decoder beam search (4 beams, 12 steps, tiny vocab) equals a brute-force uncached search', async () => {
      const model: EncoderDecoderModel = tinyEncoderDecoderModels[0]!.build(7);
      const source = [4, 5, 6, 2];
      const state = await model.encode([source]);
      try {
        const result = await translate(model, {
          sourceIds: source,
          maxNewTokens: 12,
          numBeams: 4,
          numReturnSequences: 4,
          stopTokenIds: [2],
          cache: o.cache,
        });
        const start = model.config.specialTokens.decoderStart!;
        const expected = await bruteForceBeamSearch(
          async (seqs) => {
            // one fixed shape for every call, as above
            const rows = Array.from({ length: 4 }, (_, b) => fixedLength([start, ...(seqs[b] ?? seqs[0]!)], 13));
            const l = await model.decode(rows, state, null, { logits: 'all' });
            return seqs.map((s, b) => rowAt(l, b, s.length));
          },
          4,
          12,
          [2],
        );
        const got = result.translations[0]!.hypotheses;
        expect(got.map((h) => h.tokens)).toEqual(expected.map((h) => h.tokens));
        got.forEach((h, i) => expect(Math.abs(h.score - expected[i]!.score)).toBeLessThan(1e-4));
      } finally {
        state.dispose();
        model.dispose();
      }
    });
  });
}
