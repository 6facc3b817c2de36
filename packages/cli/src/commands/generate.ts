import { InvalidInputError, InvalidOptionError, createSession, generateStream, tokensPerSecond, type DecoderOnlyModel, type KVDtype, type GenerateResult, type GenerationSession } from '@kvt/core';
import { loadModel, type WeightFormat } from '@kvt/loaders';
import { restoreSession, saveSession } from '@kvt/models';
import { readState, writeState } from './chat.js';
import { useBackend } from '../backends.js';
import { defined, samplingOptions, textOrStdin, type SamplingFlags } from '../options.js';
import { loadingBar } from '../progress.js';
import { drain } from '../stream.js';

export interface GenerateOptions extends SamplingFlags {
  model?: string;
  tokenizer?: string;
  prompt?: string;
  beams?: number;
  numReturn?: number;
  backend: string;
  weights?: WeightFormat;
  cache: 'backend' | 'concat' | 'none';
  kvDtype: KVDtype;
  slidingWindow?: number;
  sinkTokens?: number;
  loadState?: string;
  saveState?: string;
  json?: boolean;
}

/**
 * `kvt generate`: streams text to stdout, or prints one JSON object with `--json`. With `--load-state` /
 * `--save-state` it runs as a session (see `kvt chat`): the prompt continues a saved session, and the session is saved.
 */
export async function runGenerate(o: GenerateOptions): Promise<void> {
  if (o.model === undefined) throw new InvalidOptionError('--model', undefined, 'a model file or folder (--model PATH)');
  const prompt = o.prompt === undefined ? undefined : textOrStdin(o.prompt);
  const withState = o.loadState !== undefined || o.saveState !== undefined;
  if (o.sinkTokens !== undefined && o.slidingWindow === undefined) throw new InvalidOptionError('--sink-tokens', o.sinkTokens, 'a --sliding-window to go with it');
  if (withState && o.slidingWindow !== undefined) throw new InvalidOptionError('--sliding-window', o.slidingWindow, 'no --save-state / --load-state with it');
  if (withState && o.cache === 'none') throw new InvalidOptionError('--cache', 'none', "a cache to save or load ('backend' or 'concat') with --save-state / --load-state");
  const state = o.loadState === undefined ? undefined : readState(o.loadState);
  await useBackend(o.backend);
  const bar = loadingBar(!o.json);
  const t0 = performance.now();
  const loaded = await loadModel(o.model, { ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}), onProgress: bar.onProgress, ...defined({ weights: o.weights }) }).finally(bar.stop);
  const loadMs = performance.now() - t0;
  let session: GenerationSession | undefined;
  try {
    if (loaded.kind !== 'decoder-only') throw new InvalidInputError(`${o.model} is an encoder-decoder model; use kvt translate.`);
    const tokenizer = loaded.tokenizer;
    if (!tokenizer && prompt) throw new InvalidInputError(`No tokenizer found for ${o.model}; pass --tokenizer.`);
    const options = { ...samplingOptions(o), ...defined({ numBeams: o.beams, numReturnSequences: o.numReturn }) };
    let stream;
    if (withState) {
      // a session: --load-state continues a saved one (the prompt continues its text); --save-state saves it after
      const model = loaded.model as DecoderOnlyModel;
      const cache = o.cache as 'backend' | 'concat';
      const t = { ...(tokenizer ? { tokenizer } : {}), cache, kvDtype: o.kvDtype };
      session = state ? await restoreSession(model, state, t) : createSession(model, t);
      stream = session.generateStream({ ...options, ...(tokenizer && prompt ? { prompt } : {}) });
    } else {
      const input = tokenizer ? { tokenizer, prompt: prompt ?? '' } : { inputIds: [loaded.model.config.specialTokens.bos ?? 0] };
      const sliding = o.slidingWindow === undefined ? {} : { slidingWindow: { window: o.slidingWindow, ...defined({ sinkTokens: o.sinkTokens }) } };
      stream = generateStream(loaded.model, { ...options, cache: o.cache, ...(o.cache !== 'none' ? { kvDtype: o.kvDtype } : {}), ...sliding, ...input });
    }
    const streaming = !o.json && (o.numReturn ?? 1) === 1;
    // the prompt is echoed with the first token, so a request that fails prints nothing on stdout
    let echo = streaming && prompt ? prompt : '';
    const result = await drain<GenerateResult>(stream, (text) => {
      if (streaming) process.stdout.write(echo + text);
      echo = '';
    });
    if (session && o.saveState !== undefined) writeState(o.saveState, await saveSession(session));
    const seq = result.sequences[0]!;
    const decodeMs = result.timing.decodeMs;
    const speed = tokensPerSecond(decodeMs);
    if (o.json) {
      process.stdout.write(
        JSON.stringify({
          tokens: seq.tokens,
          text: seq.text ?? '',
          promptTokens: result.promptTokens[0],
          finishReason: seq.finishReason,
          seed: result.seed,
          backend: o.backend,
          config: result.config,
          timing: { loadMs, prefillMs: result.timing.prefillMs, firstTokenMs: result.timing.firstTokenMs, decodeMs, tokensPerSecond: speed },
          cache: session ? { length: session.cache.length, bytes: session.cache.bytes, capacity: session.cache.capacity, ...(session.cache.blocks ? { blocks: session.cache.blocks } : {}) } : result.cache,
          prefillTokens: result.prefillTokens,
          ...(session ? { sessionTokens: session.tokens.length } : {}),
          ...(seq.hypotheses ? { hypotheses: seq.hypotheses.map((h) => ({ tokens: h.tokens, text: h.text ?? '', score: h.score })) } : {}),
        }) + '\n',
      );
      return;
    }
    if (!streaming) for (const h of seq.hypotheses ?? []) process.stdout.write(`${h.score.toFixed(4)}\t${(prompt ?? '') + (h.text ?? '')}\n`);
    else if (result.config.numBeams > 1) process.stdout.write(seq.text ?? ''); // beam search prints its result
    process.stdout.write('\n');
    process.stderr.write(
      `\n${seq.tokens.length} tokens, ${speed.toFixed(1)} tokens/s (${o.backend}, load ${loadMs.toFixed(0)} ms, prefill ${result.timing.prefillMs.toFixed(1)} ms)\n`,
    );
  } finally {
    session?.dispose();
    loaded.dispose();
  }
}
