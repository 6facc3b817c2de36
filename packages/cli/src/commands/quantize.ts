import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { InvalidInputError, InvalidOptionError, UnsupportedError } from '@kvt/core';
import { BLOCK } from '@kvt/kernels';
import { quantizeRows, type HostTensor, type QuantizedHostTensor } from '@kvt/models';
import {
  detectFormat,
  llamaFromGguf,
  llamaToGguf,
  openModelFiles,
  parseGguf,
  parseLlama2cCheckpoint,
  parseLlama2cTokenizer,
  parseSafetensors,
  readSafetensor,
  tokenizerFromGguf,
  writeSafetensors,
  type ScoreBpeTokenizer,
  type WeightFormat,
} from '@kvt/loaders';

export interface QuantizeOptions {
  weights: WeightFormat;
  tokenizer?: string;
  json?: boolean;
}

/** What `kvt quantize` wrote. */
interface QuantizeReport {
  input: string;
  output: string;
  format: 'gguf' | 'safetensors';
  weights: WeightFormat;
  inputBytes: number;
  outputBytes: number;
}

/**
 * `kvt quantize IN OUT --weights q8_0`: a Llama checkpoint (llama2.c .bin, GGUF) → a GGUF file llama.cpp and kvt
 * read, its matrices in the format asked for; a Hugging Face folder (Llama, Marian, BART) → a folder of the same
 * files with model.safetensors in kvt's quantized safetensors layout (int8 or packed 4-bit values beside fp16 scales
 * per 32, `name_scale`).
 */
export async function runQuantize(input: string, output: string, o: QuantizeOptions): Promise<void> {
  if (!existsSync(input)) throw new InvalidInputError(`${input} does not exist; pass a model file or folder.`);
  if (existsSync(output) && realpathSync(output) === realpathSync(input)) throw new InvalidOptionError('OUT', output, 'a path other than the input');
  const { format } = await detectFormat(await openModelFiles(input));
  const report: QuantizeReport =
    format === 'huggingface'
      ? quantizeHuggingFace(input, output, o.weights)
      : format === 'llama2c' || format === 'gguf'
        ? quantizeToGguf(input, output, format, o)
        : unsupported(format);
  if (o.json) process.stdout.write(JSON.stringify(report) + '\n');
  else
    process.stdout.write(
      `wrote ${report.output} (${report.format}, ${report.weights} weights): ${mb(report.outputBytes)} from ${mb(report.inputBytes)}\n`,
    );
}

function unsupported(format: string): never {
  throw new UnsupportedError(`kvt quantize reads llama2.c, GGUF and Hugging Face checkpoints; this is ${format}. Load it with --weights q8_0 to quantize at load.`);
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

function quantizeToGguf(input: string, output: string, format: 'llama2c' | 'gguf', o: QuantizeOptions): QuantizeReport {
  const bytes = readFileSync(input);
  const file = basename(input);
  let parsed;
  let tokenizer: ScoreBpeTokenizer | undefined;
  if (format === 'gguf') {
    const g = parseGguf(bytes, file);
    parsed = llamaFromGguf(g);
    tokenizer = g.metadata.has('tokenizer.ggml.tokens') ? tokenizerFromGguf(g) : undefined;
  } else {
    parsed = parseLlama2cCheckpoint(bytes, file);
    tokenizer = llama2cTokenizer(o.tokenizer, dirname(input), parsed.config.vocabSize);
  }
  const out = llamaToGguf(parsed.config, parsed.params, o.weights, tokenizer);
  writeFileSync(output, out);
  return { input, output, format: 'gguf', weights: o.weights, inputBytes: bytes.byteLength, outputBytes: out.byteLength };
}

/** The llama2.c tokenizer: --tokenizer, else a tok*.bin / tokenizer.bin beside the checkpoint of its vocabulary. */
function llama2cTokenizer(path: string | undefined, folder: string, vocabSize: number): ScoreBpeTokenizer | undefined {
  if (path !== undefined) return parseLlama2cTokenizer(readFileSync(path), basename(path), vocabSize);
  for (const name of readdirSync(folder).filter((n) => /^tok.*\.bin$/i.test(n) || n === 'tokenizer.bin').sort()) {
    try {
      return parseLlama2cTokenizer(readFileSync(join(folder, name)), name, vocabSize);
    } catch {
      // another vocabulary: try the next file
    }
  }
  return undefined;
}

/** Model types whose 2-D `.weight` tensors are rows `[out, in]` (GPT-2's Conv1D are `[in, out]`). */
const ROW_MAJOR_TYPES = ['llama', 'marian', 'bart', 'mbart'];

function quantizeHuggingFace(input: string, output: string, weights: WeightFormat): QuantizeReport {
  const config = JSON.parse(readFileSync(join(input, 'config.json'), 'utf8')) as { model_type?: string };
  if (weights === 'q4_k')
    throw new UnsupportedError("kvt quantize writes q4_k as GGUF (llama2.c and GGUF inputs); for a Hugging Face folder use --weights q8_0 or q4_0, or load it with --weights q4_k to quantize at load.");
  if (weights !== 'fp32' && !ROW_MAJOR_TYPES.includes(String(config.model_type)))
    throw new UnsupportedError(
      `kvt quantize writes quantized safetensors for ${ROW_MAJOR_TYPES.join(', ')} models; this is ${String(config.model_type)}. Load it with --weights ${weights} to quantize at load.`,
    );
  const shards = readdirSync(input).filter((n) => n.endsWith('.safetensors'));
  if (shards.length === 0) throw new InvalidInputError(`${input}: no .safetensors file.`);
  mkdirSync(output, { recursive: true });
  let inputBytes = 0;
  const tensors: Record<string, HostTensor | QuantizedHostTensor> = {};
  for (const shard of shards) {
    const bytes = readFileSync(join(input, shard));
    inputBytes += bytes.byteLength;
    const st = parseSafetensors(bytes, shard);
    for (const name of st.entries.keys()) {
      if (name.endsWith('_scale') && st.entries.has(name.slice(0, -'_scale'.length))) continue;
      const t = readSafetensor(st, name);
      tensors[name] = weights !== 'fp16' && quantizable(name, t, weights) ? quantized(t, weights as Exclude<WeightFormat, 'fp32'>) : t;
    }
  }
  // one file holds every tensor: the shards' index would point into files that are not written
  for (const name of readdirSync(input))
    if (!name.endsWith('.safetensors') && name !== 'model.safetensors.index.json' && statSync(join(input, name)).isFile())
      copyFileSync(join(input, name), join(output, name));
  // fp16: every float tensor as F16 (what Hugging Face's own fp16 checkpoints are)
  const out = writeSafetensors(tensors, weights === 'fp16' ? 'F16' : 'F32', { format: 'pt', 'kvt.weights': weights });
  writeFileSync(join(output, 'model.safetensors'), out);
  return { input, output: resolve(output), format: 'safetensors', weights, inputBytes, outputBytes: out.byteLength };
}

/** A matrix of rows along its input (a linear weight or an embedding), whose rows hold a multiple of 32 values. */
function quantizable(name: string, t: HostTensor, weights: WeightFormat): boolean {
  return weights !== 'fp32' && t.shape.length === 2 && t.shape[1]! % BLOCK === 0 && name.endsWith('.weight') && !name.includes('embed_positions');
}

function quantized(t: HostTensor, format: Exclude<WeightFormat, 'fp32'>): QuantizedHostTensor {
  const [rows, cols] = t.shape as [number, number];
  return { format, bytes: quantizeRows(t.data, rows, cols, format), rows, cols, transposed: false };
}
