/**
 * Seeded fuzzing of model and tokenizer files: mutations of a real file (truncations, flipped bytes, rewritten length
 * fields, inserted and deleted bytes), each loaded through `loadModel`, which must load it or throw a typed kvt
 * error, quickly, leaving no tensor behind and allocating no typed array larger than the input justifies.
 *
 * @example
 * ```ts
 * await fuzzLoad('GGUF', 1000, (rng) => ({ 'model.gguf': mutateBytes(gguf, rng, 24_000) }));
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { KvtError, createRng, type Rng } from '@kvt/core';
import { loadModel, type LoadedModel } from '../load-model.js';

const SPECIAL = [0, 1, 2, 0x7f, 0xff, 0x7fffffff, 0xffffffff, 0x80000000, 1 << 20];

/** One seeded mutation of `bytes`, mostly inside its first `headerBytes`. */
export function mutateBytes(bytes: Uint8Array, rng: Rng, headerBytes: number): Uint8Array {
  const pick = (n: number) => Math.floor(rng.next() * n);
  const region = Math.min(bytes.length, headerBytes);
  const out = Uint8Array.from(bytes);
  switch (pick(7)) {
    case 0: // truncate, mostly inside the header
      return out.slice(0, rng.next() < 0.7 ? pick(region) : pick(bytes.length));
    case 1: {
      for (let k = 1 + pick(4); k > 0; k--) out[pick(region)] ^= 1 << pick(8);
      return out;
    }
    case 2: {
      for (let k = 1 + pick(16); k > 0; k--) out[pick(out.length)] = pick(256);
      return out;
    }
    case 3: {
      // an aligned 32- or 64-bit field of the header rewritten with a special value
      const view = new DataView(out.buffer);
      const at = pick(Math.max(1, region - 8)) & ~3;
      const v = SPECIAL[pick(SPECIAL.length)]!;
      if (rng.next() < 0.5) view.setUint32(at, v >>> 0, true);
      else view.setBigUint64(at & ~7, BigInt(v) * BigInt(1 + pick(1 << 20)), true);
      return out;
    }
    case 4: {
      // delete a chunk
      const at = pick(region);
      return concat(out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + pick(64))));
    }
    case 5: {
      // insert garbage
      const at = pick(region);
      return concat(out.subarray(0, at), junk(1 + pick(64), pick), out.subarray(at));
    }
    default:
      return concat(out, junk(1 + pick(128), pick)); // append garbage
  }
}

const junk = (n: number, pick: (n: number) => number) => Uint8Array.from({ length: n }, () => pick(256));

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
}

/** One seeded edit of a JSON document: a value replaced by a wrong type or an extreme number, a key dropped. */
export function mutateJson(json: unknown, rng: Rng): Uint8Array {
  const pick = (n: number) => Math.floor(rng.next() * n);
  const values = [0, -1, 1e9, 2 ** 53, 3.5, -0.5, 'x', '', null, true, [], {}, [[1e9]], [-1], NaN];
  const copy = JSON.parse(JSON.stringify(json)) as unknown;
  // walk to a random object or array inside, then change one of its entries
  let node = copy as Record<string, unknown>;
  for (let depth = 0; depth < 4; depth++) {
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const k = keys[pick(keys.length)]!;
    const child = node[k];
    if (child && typeof child === 'object' && rng.next() < 0.6) node = child as Record<string, unknown>;
    else break;
  }
  const keys = Object.keys(node);
  if (keys.length > 0) {
    const k = keys[pick(keys.length)]!;
    if (rng.next() < 0.15) delete node[k];
    else node[k] = values[pick(values.length)];
  }
  return new TextEncoder().encode(JSON.stringify(copy));
}

const TYPED = ['ArrayBuffer', 'Uint8Array', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array'] as const;

/**
 * Records the largest typed array (or ArrayBuffer) created by length while `run` goes on, in bytes: a header that
 * lies about a size shows up here before any check would see the memory.
 */
export async function largestAllocation<T>(run: () => Promise<T>): Promise<{ bytes: number; result: T | undefined; error: unknown }> {
  const g = globalThis as unknown as Record<string, unknown>;
  const saved = TYPED.map((name) => [name, g[name]] as const);
  let bytes = 0;
  for (const [name, ctor] of saved) {
    const perElement = (ctor as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
    g[name] = new Proxy(ctor as object, {
      construct(target, args, newTarget) {
        if (typeof args[0] === 'number') bytes = Math.max(bytes, args[0] * perElement);
        return Reflect.construct(target as never, args, newTarget);
      },
    });
  }
  try {
    const result = await run();
    return { bytes, result, error: undefined };
  } catch (error) {
    return { bytes, result: undefined, error };
  } finally {
    for (const [name, ctor] of saved) g[name] = ctor;
  }
}

/**
 * Loads `cases` seeded mutations: each must load or throw a typed kvt error within 10 s, leave no tensor, and
 * allocate no single buffer beyond `allocationBound(input bytes)`. Returns how many loaded and how many were rejected.
 */
export async function fuzzLoad(
  name: string,
  cases: number,
  make: (rng: Rng, i: number) => Record<string, Uint8Array>,
  allocationBound: (inputBytes: number) => number,
  /** Something to do with what loaded (encode and decode with its tokenizer): it too may only throw typed errors. */
  use: (loaded: LoadedModel) => void = () => undefined,
  seed = 20261129,
): Promise<{ loaded: number; rejected: number }> {
  const rng = createRng(seed);
  let loaded = 0;
  let rejected = 0;
  for (let i = 0; i < cases; i++) {
    const files = make(rng, i);
    const inputBytes = Object.values(files).reduce((s, b) => s + b.byteLength, 0);
    const before = tf.memory().numTensors;
    const t0 = performance.now();
    const outcome = await largestAllocation(async () => {
      const loaded = await loadModel(files);
      try {
        use(loaded);
      } finally {
        loaded.dispose();
      }
    });
    const largest = outcome.bytes;
    if (outcome.error === undefined) loaded++;
    else if (KvtError.isInstance(outcome.error)) rejected++;
    else throw new Error(`${name} case ${i}: untyped ${(outcome.error as Error)?.constructor?.name}: ${(outcome.error as Error)?.message}`);
    expect(performance.now() - t0, `${name} case ${i} took too long`).toBeLessThan(10_000);
    expect(tf.memory().numTensors, `${name} case ${i} leaked tensors`).toBe(before);
    expect(largest, `${name} case ${i}: allocated ${largest} bytes for ${inputBytes} bytes of input`).toBeLessThanOrEqual(allocationBound(inputBytes));
  }
  return { loaded, rejected };
}
