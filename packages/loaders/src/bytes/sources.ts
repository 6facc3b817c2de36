import { FileAccessError, InvalidInputError, ResourceLimitError } from '@kvt/core';

/** Progress of reading model files. */
export interface LoadProgress {
  readonly file: string;
  readonly loaded: number;
  /** Total bytes, when known. */
  readonly total?: number;
  /** Which file of this load it is (1, 2, …, in the order they are read); set by `loadModel`. */
  readonly fileIndex?: number;
  /** Where the bytes come from: the network, the browser's cache, or a local file or memory. */
  readonly from?: 'network' | 'cache' | 'local';
  /** The server's ETag, when it sent one (URL sources). */
  readonly etag?: string;
}

export type ProgressCallback = (p: LoadProgress) => void;

/**
 * The files of a model, wherever they are: a folder or file on disk (Node), a URL (browser or Node 18+), `File`s a
 * user picked, or bytes in memory.
 */
export interface ModelFiles {
  /** For messages: the folder path, URL or "selected files". */
  readonly name: string;
  /** The file a user pointed at, when a single file was given. */
  readonly primary?: string;
  /** File names, or null when they cannot be listed (a URL folder). */
  list(): Promise<string[] | null>;
  exists(file: string): Promise<boolean>;
  read(file: string, onProgress?: ProgressCallback): Promise<Uint8Array>;
  /**
   * Opens a file to read in pieces, where the source can (files on disk in Node): a loader then reads each tensor
   * when the model takes it, so the whole file is never in memory at once.
   */
  openRandomAccess?(file: string): Promise<RandomAccessFile>;
}

/** A file read in pieces. */
export interface RandomAccessFile {
  readonly byteLength: number;
  /** `length` bytes at `offset`, in a buffer of their own. */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

/** Bytes in memory as a {@link RandomAccessFile} (pieces are views, not copies). */
export function bytesAsRandomAccess(bytes: Uint8Array): RandomAccessFile {
  return { byteLength: bytes.byteLength, read: (offset, length) => bytes.subarray(offset, offset + length), close: () => {} };
}

/** Anything kvt can load a model from. */
export type ModelSource = string | URL | Blob | readonly Blob[] | Readonly<Record<string, Uint8Array>> | ModelFiles;

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/** The largest file kvt reads whole: one typed array (a model that size would not fit a WebAssembly heap anyway). */
export const MAX_FILE_BYTES = 2 ** 32 - 1;

function checkFileSize(file: string, size: number): void {
  if (size > MAX_FILE_BYTES)
    throw new ResourceLimitError(
      `${file} is ${(size / 2 ** 30).toFixed(1)} GiB; kvt reads files of at most 4 GiB (a model must fit a 4 GiB WebAssembly heap). Is it the model file you meant?`,
      size,
      MAX_FILE_BYTES,
    );
}
const isUrl = (s: string) => /^(https?|file|blob|data):/i.test(s);

function isModelFiles(s: unknown): s is ModelFiles {
  return typeof s === 'object' && s !== null && typeof (s as ModelFiles).read === 'function' && typeof (s as ModelFiles).list === 'function';
}

/**
 * Opens a model source as {@link ModelFiles}.
 *
 * @example
 * ```ts
 * const files = await openModelFiles('../shared/fixtures/stories260K/stories260K.bin');
 * const files2 = await openModelFiles(fileInput.files); // browser: the files of a folder
 * ```
 */
export async function openModelFiles(source: ModelSource): Promise<ModelFiles> {
  if (isModelFiles(source)) return source;
  if (typeof source === 'string' && !isUrl(source)) {
    if (!isNode) throw new InvalidInputError(`"${source}" is a path; in the browser give a URL or File objects.`);
    return nodeFiles(source);
  }
  if (typeof source === 'string' || source instanceof URL) return urlFiles(String(source));
  if (typeof Blob !== 'undefined' && source instanceof Blob) return blobFiles([source]);
  if (Array.isArray(source)) return blobFiles(source as readonly Blob[]);
  if (typeof source === 'object' && source !== null) return memoryFiles(source as Record<string, Uint8Array>);
  throw new InvalidInputError('A model source is a path, a URL, File/Blob objects, or a record of file names to bytes.');
}

async function nodeFiles(path: string): Promise<ModelFiles> {
  const fs = await import('node:fs/promises');
  const fsSync = await import('node:fs');
  const p = await import('node:path');
  const stat = await fs.stat(path).catch(() => null);
  if (!stat) throw new FileAccessError(path, 'missing', `No file or folder at ${path}; check the --model path.`);
  const dir = stat.isDirectory() ? path : p.dirname(path);
  const primary = stat.isDirectory() ? undefined : p.basename(path);
  return {
    name: path,
    ...(primary ? { primary } : {}),
    // files, and links to files (Hugging Face's cache keeps a model's files as links into its blob store)
    list: async () => {
      const entries = await fs.readdir(dir, { withFileTypes: true });
      const isFile = async (e: (typeof entries)[number]) => e.isFile() || (e.isSymbolicLink() && !!(await fs.stat(p.join(dir, e.name)).catch(() => null))?.isFile());
      const flags = await Promise.all(entries.map(isFile));
      return entries.filter((_, i) => flags[i]).map((e) => e.name);
    },
    exists: async (f) => !!(await fs.stat(p.join(dir, f)).catch(() => null)),
    read: async (f, onProgress) => {
      const full = p.join(dir, f);
      const st = await fs.stat(full).catch(() => null);
      if (!st || !st.isFile()) throw new FileAccessError(full, 'missing', `${full} is missing.`);
      checkFileSize(full, st.size);
      const out = new Uint8Array(st.size);
      const handle = await fs.open(full, 'r');
      try {
        const chunk = 8 << 20;
        for (let off = 0; off < st.size; ) {
          const { bytesRead } = await handle.read(out, off, Math.min(chunk, st.size - off), off);
          if (bytesRead === 0) break;
          off += bytesRead;
          onProgress?.({ file: f, loaded: off, total: st.size });
        }
      } finally {
        await handle.close();
      }
      return out;
    },
    openRandomAccess: async (f) => {
      const full = p.join(dir, f);
      const st = await fs.stat(full).catch(() => null);
      if (!st || !st.isFile()) throw new FileAccessError(full, 'missing', `${full} is missing.`);
      const fd = fsSync.openSync(full, 'r');
      return {
        byteLength: st.size,
        read: (offset, length) => {
          const out = new Uint8Array(length);
          for (let at = 0; at < length; ) {
            const n = fsSync.readSync(fd, out, at, length - at, offset + at);
            if (n === 0) throw new InvalidInputError(`${full} ended early (read ${offset + at} of ${st.size} bytes); was it changed while loading?`);
            at += n;
          }
          return out;
        },
        close: () => fsSync.closeSync(fd),
      };
    },
  };
}

function urlFiles(url: string): ModelFiles {
  const looksLikeFile = /\.(bin|gguf|safetensors|json|txt|model|spm)(\?.*)?$/i.test(url);
  const base = looksLikeFile ? url.slice(0, url.lastIndexOf('/') + 1) : url.endsWith('/') ? url : `${url}/`;
  const primary = looksLikeFile ? decodeURIComponent(url.slice(url.lastIndexOf('/') + 1).replace(/\?.*$/, '')) : undefined;
  return {
    name: url,
    ...(primary ? { primary } : {}),
    list: async () => null,
    exists: async (f) => {
      const url = String(new URL(f, base));
      // an unreachable server is a network error, not "no such file"
      const r = await fetch(url, { method: 'HEAD' }).catch((e: unknown) => {
        throw new FileAccessError(url, 'network', `${url} could not be fetched (${(e as Error)?.message ?? e}): is the network up and the server reachable?`);
      });
      return r.ok && !isHtmlFallback(f, r);
    },
    read: async (f, onProgress) => {
      const url = String(new URL(f, base));
      const r = await fetch(url).catch((e: unknown) => {
        throw new FileAccessError(url, 'network', `${url} could not be fetched (${(e as Error)?.message ?? e}): is the network up and the server reachable?`);
      });
      if (!r.ok || isHtmlFallback(f, r)) {
        const missing = r.status === 404 || r.ok;
        throw new FileAccessError(url, missing ? 'missing' : 'http', `${url} answered ${r.status} ${r.statusText}${r.ok ? ' with an HTML page' : ''}; is the file there?`, r.status);
      }
      const total = Number(r.headers.get('content-length')) || undefined;
      const etag = r.headers.get('etag') ?? undefined;
      if (total !== undefined) checkFileSize(String(new URL(f, base)), total);
      if (!r.body) return new Uint8Array(await r.arrayBuffer());
      const reader = r.body.getReader();
      const chunks: Uint8Array[] = [];
      let loaded = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        loaded += value.byteLength;
        checkFileSize(String(new URL(f, base)), loaded);
        onProgress?.({ file: f, loaded, ...(total ? { total } : {}), from: 'network', ...(etag ? { etag } : {}) });
      }
      const out = new Uint8Array(loaded);
      let off = 0;
      for (const c of chunks) out.set(c, off), (off += c.byteLength);
      return out;
    },
  };
}

/** Single-page-app servers answer every missing path with index.html: that is not the model file asked for. */
function isHtmlFallback(file: string, r: Response): boolean {
  return !/\.html?$/i.test(file) && (r.headers.get('content-type') ?? '').includes('text/html');
}

function blobFiles(blobs: readonly Blob[]): ModelFiles {
  const byName = new Map<string, Blob>();
  for (const b of blobs) byName.set((b as File).name ?? 'model.bin', b);
  const names = [...byName.keys()];
  return {
    name: names.length === 1 ? names[0]! : 'selected files',
    ...(names.length === 1 ? { primary: names[0]! } : {}),
    list: async () => names,
    exists: async (f) => byName.has(f),
    read: async (f, onProgress) => {
      const b = byName.get(f);
      if (!b) throw new FileAccessError(f, 'missing', `${f} is not among the selected files; select it too.`);
      checkFileSize(f, b.size);
      const out = new Uint8Array(await b.arrayBuffer());
      onProgress?.({ file: f, loaded: out.byteLength, total: out.byteLength });
      return out;
    },
  };
}

function memoryFiles(files: Readonly<Record<string, Uint8Array>>): ModelFiles {
  const names = Object.keys(files);
  return {
    name: 'in-memory files',
    ...(names.length === 1 ? { primary: names[0]! } : {}),
    list: async () => names,
    exists: async (f) => f in files,
    read: async (f) => {
      const b = files[f];
      if (!b) throw new FileAccessError(f, 'missing', `${f} is missing from the given files.`);
      return b;
    },
  };
}
