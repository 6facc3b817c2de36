import { CacheStateError } from '@kvt/core';
import type { KVCacheContainer } from './kv-cache-container.js';

/**
 * A saved KV cache (version 1), little-endian:
 *
 * | bytes | field |
 * | --- | --- |
 * | 4 | magic `KVTS` |
 * | 4 | u32 version (1) |
 * | 4 | u32 header length H |
 * | H | header, UTF-8 JSON ({@link CacheStateHeader}), padded with spaces to a multiple of 4 |
 * | … | float32 K then V of layer 0, then of layer 1, …; each `[rows, kvHeads, length, headDim]` |
 * | 4 | u32 FNV-1a checksum of every byte before it (as u32 words) |
 */
export interface CacheStateHeader {
  readonly format: 'kvt-cache-state';
  readonly version: 1;
  /** What the state belongs to: the model's shape facts and a fingerprint of its outputs (the saver's choice). */
  readonly model: Readonly<Record<string, unknown>>;
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rows: number;
  readonly length: number;
  readonly padding: readonly number[];
  /** The tokens whose K/V the cache holds (and, for a session, at most one generated token not fed yet). */
  readonly tokens?: readonly number[];
}

/** The current version of the saved-state format. */
export const CACHE_STATE_VERSION = 1;
const MAGIC = 0x5354564b; // 'KVTS' read as a little-endian u32

/** FNV-1a over u32 words. */
function checksum(words: Uint32Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) {
    h ^= words[i]!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * A cache's state as bytes: its valid positions of every layer and the header facts (see {@link CacheStateHeader}).
 *
 * @example
 * ```ts
 * const bytes = await encodeCacheState(cache, { architecture: 'llama' }, tokens);
 * const { header, layers } = decodeCacheState(bytes);
 * ```
 */
export async function encodeCacheState(cache: KVCacheContainer, model: Readonly<Record<string, unknown>>, tokens?: readonly number[]): Promise<Uint8Array> {
  const header: CacheStateHeader = {
    format: 'kvt-cache-state',
    version: CACHE_STATE_VERSION,
    model,
    numLayers: cache.numLayers,
    numKvHeads: cache.numKvHeads,
    headDim: cache.headDim,
    rows: cache.batchSize,
    length: cache.length,
    padding: [...cache.padding],
    ...(tokens ? { tokens: [...tokens] } : {}),
  };
  let json = JSON.stringify(header);
  json += ' '.repeat((4 - (new TextEncoder().encode(json).length % 4)) % 4);
  const head = new TextEncoder().encode(json);
  const perLayer = 2 * cache.batchSize * cache.numKvHeads * cache.length * cache.headDim;
  const bytes = new Uint8Array(12 + head.length + perLayer * cache.numLayers * 4 + 4);
  const words = new Uint32Array(bytes.buffer);
  words[0] = MAGIC;
  words[1] = CACHE_STATE_VERSION;
  words[2] = head.length;
  bytes.set(head, 12);
  const floats = new Float32Array(bytes.buffer, 12 + head.length, perLayer * cache.numLayers);
  for (let l = 0; l < cache.numLayers; l++) {
    const { k, v } = await cache.read(l);
    floats.set(k, l * perLayer);
    floats.set(v, l * perLayer + perLayer / 2);
  }
  words[words.length - 1] = checksum(words.subarray(0, words.length - 1));
  return bytes;
}

/**
 * Reads bytes from {@link encodeCacheState}: the header and every layer's K and V. A state that is cut, corrupt
 * (checksum), of another format or version, or inconsistent with itself is a {@link CacheStateError} that says so.
 */
export function decodeCacheState(bytes: Uint8Array): { header: CacheStateHeader; layers: { k: Float32Array; v: Float32Array }[] } {
  const bad = (why: string) => new CacheStateError(`This is not a usable kvt cache state: ${why}. Save it again (saveSession, or kvt --save-state).`);
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < 16 || bytes.byteLength % 4 !== 0) throw bad('too short, or not whole 32-bit words');
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const words = new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  if (words[0] !== MAGIC) throw bad('it does not start with KVTS');
  if (words[1] !== CACHE_STATE_VERSION) throw bad(`version ${words[1]}; this kvt reads version ${CACHE_STATE_VERSION}`);
  if (checksum(words.subarray(0, words.length - 1)) !== words[words.length - 1]) throw bad('its checksum does not match (the bytes were changed or cut)');
  const headLength = words[2]!;
  if (headLength % 4 !== 0 || 12 + headLength + 4 > aligned.byteLength) throw bad('its header length is out of range');
  let header: CacheStateHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(aligned.subarray(12, 12 + headLength))) as CacheStateHeader;
  } catch {
    throw bad('its header is not JSON');
  }
  const sizes = [header.numLayers, header.numKvHeads, header.headDim, header.rows, header.length];
  if (header.format !== 'kvt-cache-state' || sizes.some((x) => !Number.isInteger(x) || x < 0) || !Array.isArray(header.padding) || header.padding.length !== header.rows)
    throw bad('its header is incomplete');
  const perLayer = 2 * header.rows * header.numKvHeads * header.length * header.headDim;
  if (12 + headLength + perLayer * header.numLayers * 4 + 4 !== aligned.byteLength) throw bad('its size does not match its header');
  const floats = new Float32Array(aligned.buffer, aligned.byteOffset + 12 + headLength, perLayer * header.numLayers);
  const layers = Array.from({ length: header.numLayers }, (_, l) => ({
    k: floats.slice(l * perLayer, l * perLayer + perLayer / 2),
    v: floats.slice(l * perLayer + perLayer / 2, (l + 1) * perLayer),
  }));
  return { header, layers };
}
