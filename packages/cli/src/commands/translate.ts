import { existsSync, readFileSync } from 'node:fs';
import { InvalidInputError, InvalidOptionError, tokensPerSecond, translate, translateStream } from '@kvt/core';
import { loadModel, type LoadedModel, type WeightFormat } from '@kvt/loaders';
import { modelFiles } from '@kvt/model-en-es';
import { useBackend } from '../backends.js';
import { defined, textOrStdin } from '../options.js';
import { loadingBar } from '../progress.js';
import { drain } from '../stream.js';

export interface TranslateOptions {
  model?: string;
  text?: string;
  input?: string;
  beams?: number;
  numReturn?: number;
  maxNewTokens?: number;
  lengthPenalty?: number;
  batchSize: number;
  backend: string;
  weights?: WeightFormat;
  cache: 'backend' | 'concat' | 'none';
  json?: boolean;
}

/** The model `kvt translate` uses without --model: the embedded English→Spanish model. */
export function defaultTranslationModel(): string {
  const path = modelFiles.path;
  if (!existsSync(`${path}/model.safetensors`))
    throw new InvalidInputError(`The default English→Spanish model is missing at ${path}; pass --model.`);
  return path;
}

/** `kvt translate`: one text (streamed), or a file of sentences (one a line, batched). */
export async function runTranslate(o: TranslateOptions): Promise<void> {
  if (o.text === undefined && o.input === undefined) throw new InvalidOptionError('--text', undefined, 'text to translate, or --input FILE');
  if (o.text !== undefined && o.input !== undefined) throw new InvalidOptionError('--input', o.input, 'either --text or --input, not both');
  await useBackend(o.backend);
  const modelPath = o.model ?? defaultTranslationModel();
  const bar = loadingBar(!o.json);
  const t0 = performance.now();
  const loaded = await loadModel(modelPath, { onProgress: bar.onProgress, ...defined({ weights: o.weights }) }).finally(bar.stop);
  const loadMs = performance.now() - t0;
  try {
    if (loaded.kind !== 'encoder-decoder') throw new InvalidInputError(`${modelPath} is a decoder-only model; use kvt generate.`);
    if (!loaded.tokenizer) throw new InvalidInputError(`No tokenizer found beside ${modelPath}.`);
    if (o.input !== undefined) await translateFile(loaded, o, loadMs);
    else await translateOne(loaded, o, loadMs);
  } finally {
    loaded.dispose();
  }
}

function request(loaded: Extract<LoadedModel, { kind: 'encoder-decoder' }>, o: TranslateOptions) {
  return {
    ...defined({ numBeams: o.beams, numReturnSequences: o.numReturn, maxNewTokens: o.maxNewTokens, lengthPenalty: o.lengthPenalty }),
    tokenizer: loaded.tokenizer!,
    ...(loaded.targetTokenizer ? { targetTokenizer: loaded.targetTokenizer } : {}),
    cache: o.cache,
  };
}

async function translateOne(loaded: Extract<LoadedModel, { kind: 'encoder-decoder' }>, o: TranslateOptions, loadMs: number): Promise<void> {
  const text = textOrStdin(o.text!);
  if (text.trim() === '') throw new InvalidInputError('Nothing to translate: the text is empty.');
  const stream = translateStream(loaded.model, { ...request(loaded, o), text });
  const result = await drain(stream, (text) => !o.json && process.stdout.write(text));
  const t = result.translations[0]!;
  const decodeMs = result.timing.decodeMs;
  const speed = tokensPerSecond(decodeMs);
  if (o.json) {
    process.stdout.write(
      JSON.stringify({
        tokens: t.tokens,
        text: t.text ?? '',
        promptTokens: result.sourceTokens[0],
        finishReason: t.finishReason,
        backend: o.backend,
        config: result.config,
        timing: { loadMs, encodeMs: result.timing.encodeMs, prefillMs: result.timing.prefillMs, firstTokenMs: result.timing.firstTokenMs, decodeMs, tokensPerSecond: speed },
        cache: result.cache,
        ...(t.hypotheses.length > 1 || (o.numReturn ?? 1) > 1 ? { hypotheses: t.hypotheses.map((h) => ({ tokens: h.tokens, text: h.text ?? '', score: h.score })) } : {}),
      }) + '\n',
    );
    return;
  }
  // beam search streams nothing: print the result (and the n-best)
  if (result.config.numBeams > 1) process.stdout.write(t.text ?? '');
  process.stdout.write('\n');
  if (t.hypotheses.length > 1) for (const h of t.hypotheses) process.stdout.write(`  ${h.score.toFixed(4)}\t${h.text ?? ''}\n`);
  process.stderr.write(`${t.tokens.length} tokens, ${speed.toFixed(1)} tokens/s (${o.backend}, load ${loadMs.toFixed(0)} ms)\n`);
}

async function translateFile(loaded: Extract<LoadedModel, { kind: 'encoder-decoder' }>, o: TranslateOptions, loadMs: number): Promise<void> {
  if (o.input !== '-' && !existsSync(o.input!)) throw new InvalidInputError(`No file at ${o.input}.`);
  const lines = readFileSync(o.input === '-' ? 0 : o.input!, 'utf8').split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  const start = performance.now();
  const batch = o.batchSize;
  let done = 0;
  for (let i = 0; i < lines.length; i += batch) {
    const chunk = lines.slice(i, i + batch);
    // empty lines stay empty (the model is never asked to translate nothing)
    const nonEmpty = chunk.map((l, k) => [l.trim(), k] as const).filter(([l]) => l.length > 0);
    const out: string[] = chunk.map(() => '');
    const hyps: { text: string; score: number }[][] = chunk.map(() => []);
    if (nonEmpty.length > 0) {
      const r = await translate(loaded.model, { ...request(loaded, o), text: nonEmpty.map(([l]) => l) });
      r.translations.forEach((t, j) => {
        out[nonEmpty[j]![1]] = t.text ?? '';
        hyps[nonEmpty[j]![1]] = t.hypotheses.map((h) => ({ text: h.text ?? '', score: h.score }));
      });
    }
    out.forEach((text, k) => {
      process.stdout.write(o.json ? JSON.stringify({ source: chunk[k], text, ...((o.numReturn ?? 1) > 1 ? { hypotheses: hyps[k] } : {}) }) + '\n' : `${text}\n`);
    });
    done += chunk.length;
    if (process.stderr.isTTY) process.stderr.write(`\r${done}/${lines.length} sentences`);
  }
  const seconds = (performance.now() - start) / 1000;
  process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}${lines.length} sentences in ${seconds.toFixed(1)} s: ${(lines.length / seconds).toFixed(2)} sentences/s (${o.backend}, batch ${batch}, load ${loadMs.toFixed(0)} ms)\n`);
}
