import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '@kvt/backend-wasm';
import { AbortedError, FileAccessError, InvalidOptionError, generate, type GenerationEvent } from '@kvt/core';
import { loadModel } from '@kvt/loaders';
import { modelFiles } from '@kvt/model-en-es';
import { createWorkerRuntime, type WorkerRuntime } from './index.js';

// The worker side runs from the built package (a worker thread runs plain JavaScript).
const entry = new URL('../dist/node-worker-entry.js', import.meta.url);
const FIXTURES = process.env.KVT_FIXTURES ?? join(modelFiles.path, '../../../../shared/fixtures');
const stories = join(FIXTURES, 'stories260K', 'stories260K.bin');

describe.skipIf(!existsSync(entry) || !existsSync(stories))('the worker runtime in a Node worker thread', () => {
  let runtime: WorkerRuntime;
  beforeAll(async () => {
    // without the test runner's flags (its 'source' export condition): the thread loads the built packages
    runtime = createWorkerRuntime({ worker: new Worker(entry, { execArgv: [] }) });
    expect(await runtime.activate('wasm')).toBe('wasm');
  });
  afterAll(() => runtime?.terminate());

  it('streams the same tokens and text as generate in this thread, and frees the model', async () => {
    const before = await runtime.tensors();
    const model = await runtime.load(stories);
    expect(model.kind).toBe('decoder-only');
    expect(model.hasTokenizer).toBe(true);
    const events: GenerationEvent[] = [];
    const stream = runtime.generate(model, { prompt: 'Once upon a time', maxNewTokens: 24 });
    let result;
    for (;;) {
      const next = await stream.next();
      if (next.done) {
        result = next.value;
        break;
      }
      events.push(next.value);
    }
    const local = await loadModel(stories);
    try {
      if (local.kind !== 'decoder-only') throw new Error('decoder-only expected');
      const here = await generate(local.model, { prompt: 'Once upon a time', tokenizer: local.tokenizer!, maxNewTokens: 24 });
      expect(result.sequences[0]!.tokens).toEqual(here.sequences[0]!.tokens);
      expect(events.map((e) => (e.kind === 'token' ? e.text : '')).join('')).toBe(here.sequences[0]!.text);
    } finally {
      local.dispose();
    }
    await model.dispose();
    expect(await runtime.tensors()).toBe(before);
  });

  it('an AbortSignal stops the worker within a step, with the partial result', async () => {
    const model = await runtime.load(stories);
    const controller = new AbortController();
    let tokens = 0;
    const err = await (async () => {
      for await (const e of runtime.generate(model, { prompt: 'Once', maxNewTokens: 400, stopTokenIds: [], signal: controller.signal })) {
        if (e.kind === 'token' && ++tokens === 5) controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(AbortedError.isInstance(err)).toBe(true);
    const partial = (err as AbortedError<{ sequences: { tokens: number[] }[] }>).partial;
    expect(partial.sequences[0]!.tokens.length).toBeGreaterThanOrEqual(5);
    expect(partial.sequences[0]!.tokens.length).toBeLessThan(400);
    await model.dispose();
  });

  it('translates with beam search, streaming the best hypothesis (the default en-es model)', async () => {
    const model = await runtime.load(modelFiles.path);
    const beams: string[] = [];
    const stream = runtime.translate(model, { text: 'Where is the train station?', numBeams: 4 });
    let result;
    for (;;) {
      const next = await stream.next();
      if (next.done) {
        result = next.value;
        break;
      }
      if (next.value.kind === 'beam') beams.push(next.value.text ?? '');
    }
    expect(beams.length).toBeGreaterThan(0);
    expect(beams[beams.length - 1]).toBe(result.translations[0]!.text);
    await model.dispose();
  });

  it('errors cross as typed kvt errors; functions in options are refused before sending', async () => {
    const missing = await runtime.load(join(FIXTURES, 'no-such-model.bin')).catch((e: unknown) => e);
    expect(FileAccessError.isInstance(missing)).toBe(true);
    expect((missing as FileAccessError).reason).toBe('missing');
    const model = await runtime.load(stories);
    const bad = await runtime.generate(model, { prompt: 'x', topP: 2 }).next().catch((e: unknown) => e);
    expect(InvalidOptionError.isInstance(bad)).toBe(true);
    expect((bad as InvalidOptionError).option).toBe('topP');
    expect(() => runtime.generate(model, { prompt: 'x', logitsProcessors: [() => undefined] } as never)).toThrow(/no functions/);
    await model.dispose();
  });
});
