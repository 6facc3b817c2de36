import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userEvent } from 'vitest/browser';
import { AbortedError, generate, type DecoderOnlyModel } from '@kvt/core';
import { LlamaModel, randomLlamaParameters, type LlamaConfig } from '@kvt/models';

// Generation on the page's main thread stays live on the WASM backend: the loop yields between decode steps, so the
// page paints and a click on Stop is handled within one step. The model is a seeded random Llama big enough that a
// decode step takes longer than a frame (about 21–25 ms here), so "one paint per step" is something the loop must earn.
describe('a live page while generating on WASM (main thread)', () => {
  let model: DecoderOnlyModel;
  beforeAll(async () => {
    const m = await import('./index.js');
    await m.activate(); // the package finds its own .wasm files
    const config: LlamaConfig = {
      architecture: 'llama', vocabSize: 8000, hiddenSize: 1024, intermediateSize: 2816, numLayers: 11, numHeads: 16, numKvHeads: 16,
      maxPositions: 512, specialTokens: { bos: 1, eos: [2] },
    };
    model = LlamaModel.fromParameters(config, randomLlamaParameters(config, 7, { tied: true }));
  });
  afterAll(() => model?.dispose());

  /** The model as the loop sees it, recording when each model call starts. */
  const watched = (starts: number[]): DecoderOnlyModel => ({
    kind: 'decoder-only',
    config: model.config,
    createCache: (o) => model.createCache(o),
    forward: (ids, cache, options) => (starts.push(performance.now()), model.forward(ids, cache, options)),
    dispose: () => undefined,
  });

  it('paints at least once per decode step on average (requestAnimationFrame)', async () => {
    const before = tf.memory().numTensors;
    const starts: number[] = [];
    const frames: number[] = [];
    let counting = true;
    const onFrame = (t: number) => {
      frames.push(t);
      if (counting) requestAnimationFrame(onFrame);
    };
    requestAnimationFrame(onFrame);
    await new Promise((r) => setTimeout(r, 100)); // frames are running
    const from = frames.length;
    const r = await generate(watched(starts), { inputIds: [1, 17, 42], maxNewTokens: 40, stopTokenIds: [] });
    const painted = frames.length - from;
    counting = false;
    const steps = r.timing.decodeMs.length;
    const stepMs = r.timing.decodeMs.reduce((a, b) => a + b, 0) / steps;
    expect(steps).toBe(39);
    expect(stepMs, 'a decode step takes longer than a frame').toBeGreaterThan(17);
    expect(painted / steps, `${painted} frames painted over ${steps} decode steps of ${stepMs.toFixed(1)} ms`).toBeGreaterThanOrEqual(1);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a click on Stop stops generation within one decode step', async () => {
    const before = tf.memory().numTensors;
    const button = document.createElement('button');
    button.textContent = 'Stop';
    document.body.append(button);
    const controller = new AbortController();
    let clickedAt = Infinity;
    button.addEventListener('click', () => {
      clickedAt = performance.now();
      controller.abort();
    });
    const starts: number[] = [];
    let tokens = 0;
    let clicked: Promise<void> | undefined;
    const err = await generate(watched(starts), {
      inputIds: [1, 17, 42], maxNewTokens: 200, stopTokenIds: [], signal: controller.signal,
      onToken: () => {
        // a real click, dispatched by the browser (vitest sends the command once the promise is awaited or then'd)
        if (++tokens === 5) clicked = userEvent.click(button).then(() => undefined);
      },
    }).catch((e: unknown) => e);
    await clicked;
    button.remove();
    expect(AbortedError.isInstance(err)).toBe(true);
    expect(clickedAt).toBeLessThan(Infinity);
    const late = starts.filter((t) => t > clickedAt).length;
    expect(late, 'model calls started after the click was handled').toBeLessThanOrEqual(1);
    expect(starts.length, 'stopped part way').toBeLessThan(200);
    expect(tf.memory().numTensors).toBe(before);
  });
});
