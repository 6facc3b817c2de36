import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { closeSync, copyFileSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvtError, generate, type DecoderOnlyModel } from '@kvt/core';
import { randomLlamaParameters, transpose2d, type HostTensor, type LlamaConfig } from '@kvt/models';
import { loadModel, writeSafetensors } from './index.js';
import { fixture, haveFixtures } from './__tests__/fixtures.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'kvt-files-'));
  dirs.push(d);
  return d;
};
/** A sparse file: `size` bytes that take no disk and read as zeros (after `head`). */
function sparse(path: string, size: number, head = new Uint8Array(0)): string {
  writeFileSync(path, head);
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, size); // past the end: a hole
  } finally {
    closeSync(fd);
  }
  return path;
}

/** A tiny Hugging Face Llama folder with a 512-token vocabulary (the size of stories260K's tokenizer). */
function llamaFolder(dir: string): void {
  const V = 512;
  const c: LlamaConfig = { architecture: 'llama', vocabSize: V, hiddenSize: 16, intermediateSize: 24, numLayers: 1, numHeads: 2, numKvHeads: 2, maxPositions: 64, ropeStyle: 'half', specialTokens: { eos: [2] } };
  const p = randomLlamaParameters(c, 3, { tied: true });
  const t: Record<string, HostTensor> = { 'model.embed_tokens.weight': p.take('embedding', [V, 16]), 'model.norm.weight': p.take('finalNorm', [16]) };
  t['model.layers.0.input_layernorm.weight'] = p.take('layers.0.attentionNorm', [16]);
  t['model.layers.0.post_attention_layernorm.weight'] = p.take('layers.0.ffnNorm', [16]);
  for (const [k, n, shape] of [['q', 'q_proj', [16, 16]], ['k', 'k_proj', [16, 16]], ['v', 'v_proj', [16, 16]], ['o', 'o_proj', [16, 16]]] as const)
    t[`model.layers.0.self_attn.${n}.weight`] = transpose2d(p.take(`layers.0.${k}`, [...shape]));
  for (const [k, n, shape] of [['gate', 'gate_proj', [16, 24]], ['up', 'up_proj', [16, 24]], ['down', 'down_proj', [24, 16]]] as const)
    t[`model.layers.0.mlp.${n}.weight`] = transpose2d(p.take(`layers.0.${k}`, [...shape]));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', vocab_size: V, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 64, bos_token_id: 1, eos_token_id: 2, tie_word_embeddings: true }));
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(t));
}

describe('model files: bounded reads, linked files, tokenizers from elsewhere', () => {
  beforeAll(async () => {
    tf.env().set('IS_TEST', true);
    await tf.setBackend('wasm');
  });
  afterAll(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('a 1 TiB sparse file named .gguf, a 3 GiB non-model file and a 5 GiB safetensors are typed errors, read no further than their headers', async () => {
    const dir = tempDir();
    const rss = process.memoryUsage().rss;
    const cases: [string, string][] = [
      [sparse(join(dir, 'huge.gguf'), 2 ** 40), 'MODEL_FORMAT'],
      [sparse(join(dir, 'junk.gguf'), 3 * 2 ** 30, new TextEncoder().encode('not a model at all')), 'MODEL_FORMAT'],
      [sparse(join(dir, 'junk.bin'), 3 * 2 ** 30), 'MODEL_FORMAT'],
    ];
    const folder = join(dir, 'hf');
    mkdirSync(folder);
    writeFileSync(join(folder, 'config.json'), '{"model_type":"llama"}');
    sparse(join(folder, 'model.safetensors'), 5 * 2 ** 30);
    cases.push([folder, 'RESOURCE_LIMIT']);
    for (const [path, code] of cases) {
      const t0 = performance.now();
      const e = await loadModel(path).then((l) => (l.dispose(), undefined), (err: unknown) => err);
      expect(KvtError.isInstance(e), `${path}: ${String(e)}`).toBe(true);
      expect((e as KvtError).code, path).toBe(code);
      expect(performance.now() - t0, `${path}: read no more than its header`).toBeLessThan(2000);
    }
    expect(process.memoryUsage().rss - rss, 'memory held by reading them').toBeLessThan(200e6);
  });

  it("a folder in Hugging Face's cache layout (files are links into a blob store) loads", async () => {
    const store = tempDir();
    llamaFolder(store);
    const snapshot = tempDir();
    for (const f of ['config.json', 'model.safetensors']) {
      copyFileSync(join(store, f), join(store, `blob-${f}`));
      symlinkSync(join(store, `blob-${f}`), join(snapshot, f));
    }
    const loaded = await loadModel(snapshot);
    try {
      expect(loaded.files).toContain('model.safetensors');
      expect(loaded.kind).toBe('decoder-only');
    } finally {
      loaded.dispose();
    }
  });

  it.skipIf(!haveFixtures)('a llama2.c tokenizer file works with a Hugging Face model of its vocabulary size', async () => {
    const dir = tempDir();
    llamaFolder(dir);
    const loaded = await loadModel(dir, { tokenizer: fixture('stories260K', 'tok512.bin') });
    try {
      expect(loaded.tokenizer?.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
      const r = await generate(loaded.model as DecoderOnlyModel, { prompt: 'Once upon a time', tokenizer: loaded.tokenizer!, maxNewTokens: 4 });
      expect(r.sequences[0]!.tokens).toHaveLength(4);
    } finally {
      loaded.dispose();
    }
    const other = await loadModel(dir, { tokenizer: fixture('aren-transliteration', 'source_vocabulary.txt') }).catch((e: unknown) => e);
    expect(KvtError.isInstance(other)).toBe(true);
  });
});
