import { ParameterSet, hostTensor, transpose2d, type HostTensor, type LlamaConfig } from '@kvt/models';
import { BinaryReader, float32View } from '../bytes/binary-reader.js';
import { bytesAsRandomAccess, type RandomAccessFile } from '../bytes/sources.js';

/** What a llama2.c checkpoint holds: a Llama config and its parameters in kvt's layout. */
export interface ParsedCheckpoint<C> {
  readonly config: C;
  readonly params: ParameterSet;
}

const LIMIT = 1 << 24; // no header field of a real model comes near this

/**
 * Parses a llama2.c legacy checkpoint (`run.c`'s format): seven int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size, seq_len; a positive vocab_size means the classifier shares the embedding), then float32
 * weights. The file size must equal what the header implies, checked before anything is allocated. Given a
 * {@link RandomAccessFile}, each tensor is read when the model takes it (the file is never all in memory).
 *
 * @example
 * ```ts
 * const { config, params } = parseLlama2cCheckpoint(bytes, 'stories260K.bin');
 * const model = LlamaModel.fromParameters(config, params);
 * ```
 */
export function parseLlama2cCheckpoint(source: Uint8Array | RandomAccessFile, file: string): ParsedCheckpoint<LlamaConfig> {
  const bytes = source instanceof Uint8Array ? bytesAsRandomAccess(source) : source;
  const r = new BinaryReader(bytes.read(0, Math.min(28, bytes.byteLength)), file);
  const names = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'] as const;
  const h: Record<(typeof names)[number], number> = Object.fromEntries(names.map((n) => [n, r.i32(`header ${n}`)])) as never;
  const shared = h.vocab_size > 0;
  const V = Math.abs(h.vocab_size);
  for (const n of names) {
    const v = n === 'vocab_size' ? V : h[n];
    if (v <= 0 || v > LIMIT) r.fail(`header ${n} = ${h[n]} is not a plausible size; is this a llama2.c checkpoint?`);
  }
  const { dim: d, hidden_dim: F, n_layers: L, n_heads: H, n_kv_heads: KV, seq_len: S } = h;
  if (d % H !== 0) r.fail(`dim ${d} is not divisible by n_heads ${H}`);
  if (H % KV !== 0) r.fail(`n_heads ${H} is not divisible by n_kv_heads ${KV}`);
  const hs = d / H;
  if (hs % 2 !== 0) r.fail(`head size ${hs} is odd; rotary positions need an even head size`);
  const kvd = KV * hs;
  // the tensors in run.c's order, [out, in] as stored
  const layout: [string, number[]][] = [
    ['embedding', [V, d]],
    ['rms_att', [L, d]],
    ['wq', [L, d, d]],
    ['wk', [L, kvd, d]],
    ['wv', [L, kvd, d]],
    ['wo', [L, d, d]],
    ['rms_ffn', [L, d]],
    ['w1', [L, F, d]],
    ['w2', [L, d, F]],
    ['w3', [L, F, d]],
    ['rms_final', [d]],
    ['freq_cis', [S, hs]], // real and imaginary halves, unused: rotary tables are recomputed
    ...(shared ? [] : ([['wcls', [V, d]]] as [string, number[]][])),
  ];
  const floats = layout.reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);
  if (28 + 4 * floats !== bytes.byteLength)
    r.fail(`the header implies ${28 + 4 * floats} bytes but the file has ${bytes.byteLength}; it is truncated or the header is wrong`);
  // each tensor's place in the file (floats from byte 28), read when taken
  let off = 28;
  const blocks = Object.fromEntries(
    layout.map(([name, shape]) => {
      const at = off;
      off += 4 * shape.reduce((a, b) => a * b, 1);
      return [name, at];
    }),
  ) as Record<string, number>;
  const floatsAt = (at: number, n: number) => float32View(bytes.read(at, 4 * n));
  const params = new ParameterSet(file);
  const perLayer = (name: string, i: number, size: number) => floatsAt(blocks[name]! + 4 * i * size, size);
  // [out, in] → kvt's [in, out], transposed when the model takes it (one copy at a time, not all at once)
  const linear = (name: string, i: number, out: number, inn: number): [number[], () => HostTensor, () => HostTensor] => [
    [inn, out],
    () => transpose2d(hostTensor(perLayer(name, i, out * inn), [out, inn])),
    () => hostTensor(perLayer(name, i, out * inn), [out, inn]), // as stored: rows [out, in]
  ];
  params.setLazy('embedding', [V, d], () => hostTensor(floatsAt(blocks.embedding!, V * d), [V, d]));
  for (let i = 0; i < L; i++) {
    params.setLazy(`layers.${i}.attentionNorm`, [d], () => hostTensor(perLayer('rms_att', i, d), [d]));
    params.setLazy(`layers.${i}.q`, ...linear('wq', i, d, d));
    params.setLazy(`layers.${i}.k`, ...linear('wk', i, kvd, d));
    params.setLazy(`layers.${i}.v`, ...linear('wv', i, kvd, d));
    params.setLazy(`layers.${i}.o`, ...linear('wo', i, d, d));
    params.setLazy(`layers.${i}.ffnNorm`, [d], () => hostTensor(perLayer('rms_ffn', i, d), [d]));
    params.setLazy(`layers.${i}.gate`, ...linear('w1', i, F, d));
    params.setLazy(`layers.${i}.down`, ...linear('w2', i, d, F));
    params.setLazy(`layers.${i}.up`, ...linear('w3', i, F, d));
  }
  params.setLazy('finalNorm', [d], () => hostTensor(floatsAt(blocks.rms_final!, d), [d]));
  if (!shared) {
    const wcls = () => hostTensor(floatsAt(blocks.wcls!, V * d), [V, d]);
    params.setLazy('output', [d, V], () => transpose2d(wcls()), wcls);
  }
  const config: LlamaConfig = {
    architecture: 'llama',
    vocabSize: V,
    hiddenSize: d,
    intermediateSize: F,
    numLayers: L,
    numHeads: H,
    numKvHeads: KV,
    maxPositions: S,
    normEpsilon: 1e-5,
    ropeTheta: 10000,
    ropeStyle: 'interleaved',
    // run.c stops at BOS (1), which delimits stories; 2 is the SentencePiece EOS
    specialTokens: { bos: 1, eos: [1, 2] },
  };
  return { config, params };
}

export function isLlama2cTokenizerName(name: string): boolean {
  return /^tok.*\.bin$/i.test(name) || name === 'tokenizer.bin';
}
