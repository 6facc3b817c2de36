import { existsSync, readFileSync } from 'node:fs';
import { InvalidInputError, translate } from '@kvt/core';
import { loadModel, type WeightFormat } from '@kvt/loaders';
import { useBackend } from '../backends.js';
import { defined } from '../options.js';
import { corpusBleu, corpusChrf } from '../metrics/bleu.js';
import { loadingBar } from '../progress.js';
import { defaultTranslationModel } from './translate.js';

export interface EvaluateOptions {
  model?: string;
  dev?: string;
  beams: number;
  batchSize: number;
  limit?: number;
  maxNewTokens: number;
  backend: string;
  weights?: WeightFormat;
  json?: boolean;
}

/** The repository's English→Spanish dev set (`../shared/corpora/anki-spa-eng/dev.tsv` beside the kvt checkout). */
export function defaultTestSet(): string {
  return decodeURIComponent(new URL('../../../../../shared/corpora/anki-spa-eng/dev.tsv', import.meta.url).pathname);
}

/** Reads `source<TAB>reference` lines, grouping every reference of a source (first-seen order). */
export function readTestSet(path: string): { source: string; references: string[] }[] {
  if (!existsSync(path)) throw new InvalidInputError(`No test set at ${path}; pass --dev FILE (source<TAB>reference lines).`);
  const bySource = new Map<string, string[]>();
  for (const line of readFileSync(path, 'utf8').split(/\r?\n/)) {
    const [src, ref] = line.split('\t');
    if (!src?.trim() || !ref?.trim()) continue;
    const list = bySource.get(src.trim()) ?? [];
    list.push(ref.trim());
    bySource.set(src.trim(), list);
  }
  return [...bySource].map(([source, references]) => ({ source, references }));
}

/** `kvt evaluate`: corpus BLEU (13a, all references) and chrF of a model on a tab-separated test set, with speed. */
export async function runEvaluate(o: EvaluateOptions): Promise<void> {
  await useBackend(o.backend);
  const dev = o.dev ?? defaultTestSet();
  const set = readTestSet(dev).slice(0, o.limit ?? Infinity);
  const modelPath = o.model ?? defaultTranslationModel();
  const bar = loadingBar(!o.json);
  const loaded = await loadModel(modelPath, { onProgress: bar.onProgress, ...defined({ weights: o.weights }) }).finally(bar.stop);
  try {
    if (loaded.kind !== 'encoder-decoder' || !loaded.tokenizer) throw new InvalidInputError(`${modelPath} is not a translation model with a tokenizer.`);
    const hyps: string[] = [];
    const start = performance.now();
    for (let i = 0; i < set.length; i += o.batchSize) {
      const chunk = set.slice(i, i + o.batchSize);
      const r = await translate(loaded.model, {
        text: chunk.map((c) => c.source),
        tokenizer: loaded.tokenizer,
        ...(loaded.targetTokenizer ? { targetTokenizer: loaded.targetTokenizer } : {}),
        numBeams: o.beams,
        maxNewTokens: o.maxNewTokens,
      });
      hyps.push(...r.translations.map((t) => t.text ?? ''));
      if (!o.json && process.stderr.isTTY) process.stderr.write(`\r${hyps.length}/${set.length}`);
    }
    const seconds = (performance.now() - start) / 1000;
    const refs = set.map((s) => s.references);
    const bleu = corpusBleu(hyps, refs);
    const chrf = corpusChrf(hyps, refs);
    const result = {
      testSet: dev,
      sentences: set.length,
      beams: o.beams,
      backend: o.backend,
      bleu: +bleu.score.toFixed(2),
      chrf: +chrf.toFixed(2),
      precisions: bleu.precisions.map((p) => +p.toFixed(1)),
      brevityPenalty: +bleu.brevityPenalty.toFixed(3),
      seconds: +seconds.toFixed(1),
      sentencesPerSecond: +(set.length / seconds).toFixed(2),
    };
    if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
    else
      process.stdout.write(
        `${process.stderr.isTTY ? '\n' : ''}BLEU ${result.bleu} (13a, ${refs.flat().length} references; precisions ${result.precisions.join('/')}, BP ${result.brevityPenalty})  chrF ${result.chrf}\n` +
          `${set.length} sentences in ${result.seconds} s: ${result.sentencesPerSecond} sentences/s (${o.backend}, beams ${o.beams}, batch ${o.batchSize})\n`,
      );
  } finally {
    loaded.dispose();
  }
}
