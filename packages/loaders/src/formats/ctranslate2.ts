import { ModelFormatError, UnsupportedError } from '@kvt/core';
import { ParameterSet, hostTensor, transpose2d, type EncoderDecoderConfig, type HostTensor } from '@kvt/models';
import { BinaryReader, elementCount, float32From } from '../bytes/binary-reader.js';
import type { ParsedCheckpoint } from './llama2c.js';

const HEADS: Record<string, number> = { TransformerBase: 8, TransformerBig: 16 };

interface Ct2Variable {
  readonly shape: number[];
  readonly itemSize: number;
  readonly raw: Uint8Array;
}

/**
 * Parses a CTranslate2 binary model (version 2; `TransformerBase`/`TransformerBig` specs): u32 version, the spec
 * name, u32 revision, then named variables (rank, dims, item size, count, raw data). float32 weights, and int8/int16
 * weights with their `weight_scale`. Returns an encoder-decoder config (pre-norm, ReLU, OpenNMT positions) and
 * parameters in kvt's layout (fused Q,K,V and K,V split; `[out, in]` transposed).
 *
 * @example
 * ```ts
 * const { config, params } = parseCTranslate2(bytes, 'model.bin', { sourceVocabSize: 51, targetVocabSize: 43 });
 * ```
 */
export function parseCTranslate2(bytes: Uint8Array, file: string): ParsedCheckpoint<EncoderDecoderConfig> {
  const r = new BinaryReader(bytes, file);
  const str = (what: string) => {
    const n = r.u16(`${what} length`);
    if (n === 0) r.fail(`${what} has length 0 (no NUL)`);
    const s = r.utf8(n - 1, what);
    if (r.u8(`${what} terminator`) !== 0) r.fail(`${what} is not NUL-terminated`);
    return s;
  };
  const version = r.u32('binary version');
  if (version !== 2) throw new UnsupportedError(`${file}: CTranslate2 binary version ${version}; kvt reads version 2.`);
  const spec = str('spec name');
  const heads = HEADS[spec];
  if (!heads) throw new UnsupportedError(`${file}: spec "${spec}"; kvt reads TransformerBase and TransformerBig.`);
  r.u32('spec revision');
  const count = r.u32('variable count');
  if (count * 8 > r.remaining) r.fail(`${count} variables cannot fit in the ${r.remaining} bytes left`);
  const vars = new Map<string, Ct2Variable>();
  for (let i = 0; i < count; i++) {
    const name = str(`variable ${i} name`);
    const rank = r.u8(`${name} rank`);
    if (rank > 4) r.fail(`variable ${name} has rank ${rank}`);
    const shape: number[] = [];
    for (let k = 0; k < rank; k++) shape.push(r.u32(`${name} dim ${k}`));
    const itemSize = r.u8(`${name} item size`);
    if (itemSize !== 1 && itemSize !== 2 && itemSize !== 4) r.fail(`variable ${name} has item size ${itemSize}`);
    const n = r.u32(`${name} count`);
    if (n !== elementCount(shape, file, name)) r.fail(`variable ${name}: count ${n} disagrees with shape [${shape.join(', ')}]`);
    vars.set(name, { shape, itemSize, raw: r.take(n * itemSize, `data of ${name}`) });
  }
  if (r.remaining !== 0) r.fail(`${r.remaining} unexpected bytes after the variables`);

  const values = (name: string): HostTensor => {
    const v = vars.get(name);
    if (!v) throw new ModelFormatError(file, `variable ${name} is missing`);
    if (v.itemSize === 4) return hostTensor(float32From(v.raw), v.shape);
    // quantized: value = q / scale, scale per output row (or one for all)
    const scale = vars.get(`${name}_scale`);
    if (!scale || scale.itemSize !== 4) throw new UnsupportedError(`${file}: ${name} is quantized without a float32 ${name}_scale.`);
    const s = float32From(scale.raw);
    const view = new DataView(v.raw.buffer, v.raw.byteOffset, v.raw.byteLength);
    const n = v.raw.byteLength / v.itemSize;
    const rowLen = n / (v.shape[0] ?? 1);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const q = v.itemSize === 1 ? view.getInt8(i) : view.getInt16(2 * i, true);
      out[i] = q / (s.length === 1 ? s[0]! : s[Math.floor(i / rowLen)]!);
    }
    return hostTensor(out, v.shape);
  };
  const emb = (name: string) => {
    const t = values(name);
    if (t.shape.length !== 2) throw new ModelFormatError(file, `${name} is not 2-D`);
    return t;
  };
  const srcEmb = emb('encoder/embeddings/weight');
  const tgtEmb = emb('decoder/embeddings/weight');
  const d = srcEmb.shape[1]!;
  const countLayers = (side: string) => {
    let n = 0;
    while (vars.has(`${side}/layer_${n}/ffn/linear_0/weight`)) n++;
    return n;
  };
  const encoderLayers = countLayers('encoder');
  const decoderLayers = countLayers('decoder');
  if (encoderLayers === 0 || decoderLayers === 0) throw new ModelFormatError(file, 'no encoder or decoder layers found');
  const ffn = vars.get('encoder/layer_0/ffn/linear_0/weight')!.shape[0]!;
  const params = new ParameterSet(file);
  // split a fused [k·d, d] projection into k [d, d] kvt linears (transposed), with biases
  const split = (prefix: string, names: string[], target: string) => {
    const w = values(`${prefix}/weight`);
    const b = values(`${prefix}/bias`);
    if (w.shape[0] !== names.length * d || w.shape[1] !== d)
      throw new ModelFormatError(file, `${prefix}/weight has shape [${w.shape.join(', ')}], expected [${names.length * d}, ${d}]`);
    names.forEach((n, k) => {
      params.set(`${target}.${n}`, transpose2d(hostTensor(w.data.slice(k * d * d, (k + 1) * d * d), [d, d])));
      params.set(`${target}.${n}.bias`, hostTensor(b.data.slice(k * d, (k + 1) * d), [d]));
    });
  };
  const linear = (prefix: string, target: string) => {
    const w = values(`${prefix}/weight`);
    if (w.shape.length !== 2) throw new ModelFormatError(file, `${prefix}/weight is not 2-D`);
    params.set(target, transpose2d(w));
    if (vars.has(`${prefix}/bias`)) params.set(`${target}.bias`, values(`${prefix}/bias`));
  };
  const layerNorm = (prefix: string, target: string) => {
    params.set(`${target}.weight`, values(`${prefix}/gamma`));
    params.set(`${target}.bias`, values(`${prefix}/beta`));
  };
  for (const [side, n] of [['encoder', encoderLayers], ['decoder', decoderLayers]] as const) {
    for (let i = 0; i < n; i++) {
      const p = `${side}/layer_${i}`;
      const t = `${side}.layers.${i}`;
      split(`${p}/self_attention/linear_0`, ['q', 'k', 'v'], `${t}.selfAttention`);
      linear(`${p}/self_attention/linear_1`, `${t}.selfAttention.o`);
      layerNorm(`${p}/self_attention/layer_norm`, `${t}.selfAttentionNorm`);
      if (side === 'decoder') {
        linear(`${p}/attention/linear_0`, `${t}.crossAttention.q`);
        split(`${p}/attention/linear_1`, ['k', 'v'], `${t}.crossAttention`);
        linear(`${p}/attention/linear_2`, `${t}.crossAttention.o`);
        layerNorm(`${p}/attention/layer_norm`, `${t}.crossAttentionNorm`);
      }
      linear(`${p}/ffn/linear_0`, `${t}.ffn.up`);
      linear(`${p}/ffn/linear_1`, `${t}.ffn.down`);
      layerNorm(`${p}/ffn/layer_norm`, `${t}.ffnNorm`);
    }
    layerNorm(`${side}/layer_norm`, `${side}.finalNorm`);
  }
  params.set('sourceEmbedding', srcEmb);
  params.set('targetEmbedding', tgtEmb);
  linear('decoder/projection', 'output');
  if (params.has('output.bias')) params.set('outputBias', values('decoder/projection/bias'));
  const config: EncoderDecoderConfig = {
    architecture: 'encoder-decoder',
    dModel: d,
    numHeads: heads,
    encoderLayers,
    decoderLayers,
    ffnDim: ffn,
    sourceVocabSize: srcEmb.shape[0]!,
    targetVocabSize: tgtEmb.shape[0]!,
    maxPositions: 1024,
    normPlacement: 'pre',
    normEpsilon: 1e-6,
    activation: 'relu',
    positions: { kind: 'sinusoidal', layout: 'concat', denominator: 'half-minus-one', offset: 1 },
    scaleEmbedding: true,
    encoderFinalNorm: true,
    decoderFinalNorm: true,
    specialTokens: { decoderStart: 1, eos: [2], pad: 0 },
  };
  return { config, params };
}
