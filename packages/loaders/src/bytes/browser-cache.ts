import { InvalidInputError } from '@kvt/core';
import type { ModelFiles, ProgressCallback } from './sources.js';

/** The Cache API bucket kvt keeps model files in, unless told otherwise. */
export const MODEL_CACHE = 'kvt-models';

/** A model file kept in the browser's cache. */
export interface CachedFile {
  /** The file's URL (the cache key). */
  readonly url: string;
  /** Its size in bytes, as first downloaded. */
  readonly bytes: number;
  /** The server's ETag when it was downloaded, if it sent one. */
  readonly etag: string | null;
  /** When it was downloaded (ms since the epoch). */
  readonly storedAt: number;
}

const MISSING = 'x-kvt-missing';

interface CacheStorageLike {
  open(name: string): Promise<Cache>;
  delete(name: string): Promise<boolean>;
}

function cacheStorage(): CacheStorageLike | undefined {
  return (globalThis as { caches?: CacheStorageLike }).caches;
}

/**
 * Keeps the files of a URL model in the browser's Cache API (keyed by URL; each entry records the size and ETag the
 * server sent), so the next load of the same URL reads them from there without a single request. Absent files are
 * remembered too (the loaders probe for optional files). Where there is no Cache API (Node, some private modes) the
 * files pass through unchanged.
 *
 * @example
 * ```ts
 * const loaded = await loadModel('https://example.com/opus-mt-en-es/', { cache: true }); // second time: no network
 * ```
 */
export function cachedModelFiles(files: ModelFiles, base: string, cacheName = MODEL_CACHE): ModelFiles {
  const storage = cacheStorage();
  if (!storage) return files;
  const key = (f: string) => new URL(f, base).href;
  const open = () => storage.open(cacheName);
  return {
    ...files,
    exists: async (f) => {
      const hit = await (await open()).match(key(f));
      if (hit) return !hit.headers.has(MISSING);
      const there = await files.exists(f);
      if (!there) await (await open()).put(key(f), new Response(null, { headers: { [MISSING]: '1' } }));
      return there;
    },
    read: async (f, onProgress?: ProgressCallback) => {
      const cache = await open();
      const hit = await cache.match(key(f));
      if (hit && !hit.headers.has(MISSING)) {
        const bytes = new Uint8Array(await hit.arrayBuffer());
        onProgress?.({ file: f, loaded: bytes.byteLength, total: bytes.byteLength, from: 'cache' });
        return bytes;
      }
      let etag: string | null = null;
      const bytes = await files.read(f, (p) => {
        etag ??= p.etag ?? null;
        onProgress?.({ ...p, from: 'network' });
      });
      const headers: Record<string, string> = { 'content-length': String(bytes.byteLength), 'x-kvt-stored-at': String(Date.now()) };
      if (etag) headers.etag = etag;
      await cache.put(key(f), new Response(bytes as BodyInit, { headers }));
      return bytes;
    },
  };
}

/**
 * The model files kept in the browser's cache (see {@link cachedModelFiles}), with their sizes.
 *
 * @example
 * ```ts
 * for (const f of await listCachedModelFiles()) console.log(f.url, f.bytes);
 * ```
 */
export async function listCachedModelFiles(cacheName = MODEL_CACHE): Promise<CachedFile[]> {
  const storage = cacheStorage();
  if (!storage) return [];
  const cache = await storage.open(cacheName);
  const out: CachedFile[] = [];
  for (const request of await cache.keys()) {
    const r = await cache.match(request);
    if (!r || r.headers.has(MISSING)) continue;
    out.push({
      url: request.url,
      bytes: Number(r.headers.get('content-length') ?? 0),
      etag: r.headers.get('etag'),
      storedAt: Number(r.headers.get('x-kvt-stored-at') ?? 0),
    });
  }
  return out;
}

/**
 * Forgets cached model files: those under `prefix` (a model folder's URL), or all of them. Returns how many entries
 * were removed.
 *
 * @example
 * ```ts
 * await clearModelCache('https://example.com/opus-mt-en-es/');
 * ```
 */
export async function clearModelCache(prefix?: string, cacheName = MODEL_CACHE): Promise<number> {
  const storage = cacheStorage();
  if (!storage) return 0;
  const cache = await storage.open(cacheName);
  let removed = 0;
  for (const request of await cache.keys()) {
    if (prefix !== undefined && !request.url.startsWith(prefix)) continue;
    if (await cache.delete(request)) removed++;
  }
  return removed;
}

/** Checks a cache name before it is used. */
export function cacheNameOf(option: boolean | string | undefined): string | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return MODEL_CACHE;
  if (typeof option !== 'string' || option.length === 0) throw new InvalidInputError('cache: give true or the name of a Cache API bucket.');
  return option;
}
