import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { FileAccessError, InvalidInputError, InvalidOptionError, createSession, tokensPerSecond, type DecoderOnlyModel, type KVDtype, type GenerationSession } from '@kvt/core';
import { loadModel, type WeightFormat } from '@kvt/loaders';
import { restoreSession, saveSession } from '@kvt/models';
import { useBackend } from '../backends.js';
import { defined, samplingOptions, type SamplingFlags } from '../options.js';
import { loadingBar } from '../progress.js';
import { drain } from '../stream.js';

export interface ChatOptions extends SamplingFlags {
  model?: string;
  tokenizer?: string;
  backend: string;
  weights?: WeightFormat;
  cache: 'backend' | 'concat';
  kvDtype: KVDtype;
  loadState?: string;
  saveState?: string;
  json?: boolean;
}

/**
 * `kvt chat`: a session that keeps its KV cache across turns. Each line of standard input (typed at a terminal, or
 * piped) is a turn: its text continues the conversation, the model continues it, and only the new tokens are
 * prefilled. `--load-state` continues a saved session; `--save-state` saves it at the end. `--json`: one JSON line
 * per turn (text, tokens, prefill tokens computed, cache bytes).
 */
export async function runChat(o: ChatOptions): Promise<void> {
  if (o.model === undefined) throw new InvalidOptionError('--model', undefined, 'a model file or folder (--model PATH)');
  const state = o.loadState === undefined ? undefined : readState(o.loadState);
  await useBackend(o.backend);
  const bar = loadingBar(!o.json && process.stdin.isTTY === true);
  const loaded = await loadModel(o.model, { ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}), onProgress: bar.onProgress, ...defined({ weights: o.weights }) }).finally(bar.stop);
  let session: GenerationSession | undefined;
  try {
    if (loaded.kind !== 'decoder-only') throw new InvalidInputError(`${o.model} is an encoder-decoder model; use kvt translate.`);
    const tokenizer = loaded.tokenizer;
    if (!tokenizer) throw new InvalidInputError(`No tokenizer found for ${o.model}; pass --tokenizer.`);
    const model = loaded.model as DecoderOnlyModel;
    const how = { tokenizer, cache: o.cache, kvDtype: o.kvDtype };
    session = state ? await restoreSession(model, state, how) : createSession(model, how);
    const options = samplingOptions({ ...o, maxNewTokens: o.maxNewTokens ?? 64 });
    const interactive = process.stdin.isTTY === true && !o.json;
    const lines = createInterface({ input: process.stdin, ...(interactive ? { output: process.stderr, prompt: '> ' } : {}), terminal: interactive });
    if (interactive) lines.prompt();
    let turn = 0;
    for await (const line of lines) {
      const result = await drain(session.generateStream({ ...options, prompt: line }), (text) => !o.json && process.stdout.write(text));
      const seq = result.sequences[0]!;
      if (o.json)
        process.stdout.write(
          JSON.stringify({
            turn: turn++,
            prompt: line,
            text: seq.text ?? '',
            tokens: seq.tokens,
            finishReason: seq.finishReason,
            prefillTokens: result.prefillTokens,
            sessionTokens: session.tokens.length,
            cache: { length: session.cache.length, bytes: session.cache.bytes, ...(session.cache.blocks ? { blocks: session.cache.blocks } : {}) },
            timing: { prefillMs: result.timing.prefillMs, tokensPerSecond: tokensPerSecond(result.timing.decodeMs) },
          }) + '\n',
        );
      else process.stdout.write('\n');
      if (interactive) lines.prompt();
    }
    if (o.saveState !== undefined) writeState(o.saveState, await saveSession(session));
  } finally {
    session?.dispose();
    loaded.dispose();
  }
}

/** A saved session's bytes (`--load-state`). */
export function readState(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new FileAccessError(path, 'missing', `${path}: cannot read the saved state (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give a file written by --save-state.`);
  }
}

/** Writes a session's bytes (`--save-state`). */
export function writeState(path: string, bytes: Uint8Array): void {
  try {
    writeFileSync(path, bytes);
  } catch (e) {
    throw new FileAccessError(path, 'missing', `${path}: cannot write the session state (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
  }
}
