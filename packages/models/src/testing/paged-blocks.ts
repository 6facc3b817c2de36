/**
 * A paged cache's blocks, counted, on a backend: beams share the prompt's blocks (stories260K, a 200-token prompt,
 * 4 beams × 20 new tokens: cache bytes ≤ 1.3 × one beam's, the same tokens as the reference cache); a reorder or a
 * fork copies block tables, not K/V (its time at 64 and 1,000 positions is printed: what the table holds, not the
 * bytes); a prefix cache lets later requests that share a prompt's whole blocks start from them, sharing the blocks.
 * Imports vitest.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, createPrefixCache, createRng, generate, type DecoderOnlyModel } from '@kvt/core';
import { createBackendKVCache, type KVCacheContainer } from '@kvt/kernels';

const TEXT =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. ' +
  'She wanted to play with it, but it was too high. Lily\'s mom said, "Lily, let\'s go to the park." Lily was sad and didn\'t know what to do. ' +
  'She said, "I want to play with your ball, but I can\'t find it." Lily was sad and didn\'t know what to do. She said, "I\'m sorry, Lily. ' +
  'I didn\'t know what to do." Lily didn\'t want to help her mom, so she said, "I\'m sorry, mom. I didn\'t know what to do." Her mom said, ' +
  '"Don\'t worry, Lily. We can help you."';

export interface PagedBlocksOptions {
  /** The backend's name, for the suite's title. */
  readonly backend: string;
  /** Makes the backend the active one. */
  activate(): Promise<void>;
  /** Whether the stories260K fixture is there (its tests are skipped otherwise). */
  readonly available: boolean;
  /** Loads stories260K with its tokenizer's encode (and a dispose). */
  load(): Promise<{ model: DecoderOnlyModel; encode(text: string): number[]; dispose(): void }>;
}

/**
 * The paged-blocks suite for a backend whose cache is paged (blocks of 16 positions at stories260K's head size).
 *
 * @example
 * ```ts
 * describePagedBlocks({ backend: 'cpu', activate, available: existsSync(path), load: async () => ... });
 * ```
 */
export function describePagedBlocks(o: PagedBlocksOptions): void {
  describe(`paged K/V blocks on ${o.backend}`, () => {
    beforeAll(async () => {
      await o.activate();
    });

    it.skipIf(!o.available)('stories260K, 200-token prompt, 4 beams × 20 tokens: cache bytes ≤ 1.3 × one beam\'s; the reference cache\'s tokens', async () => {
      const loaded = await o.load();
      try {
        const model = loaded.model;
        const inputIds = loaded.encode(TEXT).slice(0, 200);
        expect(inputIds).toHaveLength(200);
        const request = { inputIds, maxNewTokens: 20, stopTokenIds: [], numBeams: 4, numReturnSequences: 4 };
        const one = await generate(model, { ...request, numBeams: 1, numReturnSequences: 1 });
        const beams = await generate(model, request);
        const reference = await generate(model, { ...request, cache: 'concat' });
        expect(beams.sequences[0]!.hypotheses!.map((h) => h.tokens)).toEqual(reference.sequences[0]!.hypotheses!.map((h) => h.tokens));
        const ratio = beams.cache!.bytes / one.cache!.bytes;
        console.log(`${o.backend}: 4 beams hold ${beams.cache!.bytes} bytes of K/V, one beam ${one.cache!.bytes}: ${ratio.toFixed(3)}×`);
        expect(ratio).toBeLessThanOrEqual(1.3);
      } finally {
        loaded.dispose();
      }
    });

    it('a reorder and a fork copy no K/V: blocks are shared until written (copy on write of one block); times printed', async () => {
      // the 15M shape: 6 layers, 6 K/V heads of 48
      const shape = { numLayers: 6, numKvHeads: 6, headDim: 48, maxLength: 1024, batchSize: 4 };
      const rng = createRng(3);
      for (const length of [64, 1000]) {
        const cache = createBackendKVCache({ ...shape, capacityHint: length + 1 }) as KVCacheContainer;
        const size = 4 * shape.numKvHeads * length * shape.headDim;
        const layer = () => ({ k: Float32Array.from({ length: size }, () => rng.next() - 0.5), v: Float32Array.from({ length: size }, () => rng.next() - 0.5) });
        cache.write(Array.from({ length: shape.numLayers }, layer), length, [0, 0, 0, 0]);
        const block = cache.blockSize!;
        const blocks = cache.blocks!.inUse;
        expect(blocks).toBe(4 * Math.ceil((length + 1) / block));
        const written = cache.bytesWritten!;
        const before = await cache.read(2);
        const t0 = performance.now();
        cache.reorder([0, 0, 1, 1]); // beams 2 and 3 dropped, 0 and 1 duplicated
        const reorderMs = performance.now() - t0;
        expect(cache.blocks).toEqual({ inUse: blocks / 2, shared: blocks / 2 }); // no block copied
        expect(cache.bytesWritten).toBe(written);
        const after = await cache.read(2);
        const row = size / 4;
        expect(after.k.subarray(row, 2 * row)).toEqual(before.k.subarray(0, row));
        expect(after.v.subarray(3 * row, 4 * row)).toEqual(before.v.subarray(row, 2 * row));
        const t1 = performance.now();
        const copy = cache.fork();
        const forkMs = performance.now() - t1;
        expect((copy as KVCacheContainer).blocks!.shared).toBe(blocks / 2);
        // one new position per row: each row copies only the block it writes into
        tf.tidy(() => {
          const t = () => tf.tensor4d(Float32Array.from({ length: 4 * shape.numKvHeads * shape.headDim }, () => rng.next()), [4, shape.numKvHeads, 1, shape.headDim]);
          for (let l = 0; l < shape.numLayers; l++) cache.attend(l, t(), t(), t());
        });
        cache.advance(1);
        // each row now owns the block it wrote (four), in place of the two shared ones (which the fork keeps)
        expect(cache.blocks!.inUse).toBe(blocks / 2 + 2);
        console.log(`${o.backend}, length ${length}: reorder ${reorderMs.toFixed(3)} ms, fork ${forkMs.toFixed(3)} ms (${blocks} blocks of ${block} positions, none copied)`);
        copy.dispose();
        cache.dispose();
      }
    });

    it.skipIf(!o.available)('stories260K: a prefix cache shares a 200-token prompt\'s blocks with later requests that start with it; typed errors before any work', async () => {
      const loaded = await o.load();
      const prefixCache = createPrefixCache(loaded.model);
      try {
        const model = loaded.model;
        const system = loaded.encode(TEXT).slice(0, 200);
        const tails = ['Then a dog came.', 'The sun was hot.', 'Tom ran home.'].map((t) => loaded.encode(t).slice(1));
        const prefillMs: number[] = [];
        for (const [i, tail] of tails.entries()) {
          const inputIds = [...system, ...tail];
          const got = await generate(model, { inputIds, maxNewTokens: 16, stopTokenIds: [], prefixCache });
          const want = await generate(model, { inputIds, maxNewTokens: 16, stopTokenIds: [], cache: 'concat' });
          expect(got.sequences[0]!.tokens, `request ${i}`).toEqual(want.sequences[0]!.tokens);
          // 200 = 12 whole blocks of 16 and 8: the first request computes everything, later ones all but 192 positions
          expect(got.reusedTokens, `request ${i}`).toBe(i === 0 ? 0 : 192);
          // the request's whole blocks are shared with the prefix cache, which keeps them for the next request
          expect(got.cache!.blocks!.shared, `request ${i}`).toBe(Math.floor(inputIds.length / 16));
          prefillMs.push(got.timing.prefillMs);
        }
        console.log(`${o.backend}: prefill of ${system.length}+ tokens: ${prefillMs.map((ms) => ms.toFixed(1)).join(', ')} ms (first request, then two that reuse 192 positions)`);
        expect(prefixCache.stats).toEqual({ hits: 2, misses: 1, reusedTokens: 384 });

        // typed errors, before any work
        const other = createPrefixCache(model, { maxBytes: 0 });
        const bad: [Parameters<typeof generate>[1], RegExp][] = [
          [{ inputIds: [[1, 2], [1, 3]], prefixCache }, /one prompt per request/],
          [{ inputIds: system, prefixCache, slidingWindow: { window: 64 } }, /no slidingWindow with prefixCache/],
          [{ inputIds: system, prefixCache, cache: 'concat' }, /no cache option with prefixCache/],
          [{ inputIds: system, prefixCache, kvDtype: 'int8' }, /no kvDtype with prefixCache/],
          [{ inputIds: system, prefixCache: {} as never }, /a PrefixCache from createPrefixCache/],
        ];
        for (const [request, message] of bad) await expect(generate(model, request)).rejects.toThrow(message);
        await expect(generate(model, { inputIds: system, prefixCache })).resolves.toBeDefined();
        // maxBytes 0 keeps nothing
        await generate(model, { inputIds: system, maxNewTokens: 2, prefixCache: other });
        expect([other.size, other.bytes]).toEqual([0, 0]);
        other.dispose();
        await expect(generate(model, { inputIds: system, prefixCache: other })).rejects.toThrow(InvalidOptionError);
        expect(() => createPrefixCache(model, { maxBytes: -1 })).toThrow(/maxBytes/);
      } finally {
        prefixCache.dispose();
        loaded.dispose();
      }
    });
  });
}
