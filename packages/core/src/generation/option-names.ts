import { InvalidOptionError } from '../errors.js';

/** The option names of `GenerationOptions`, shared by `generate` and `translate`. */
export const GENERATION_OPTIONS = [
  'maxNewTokens', 'minNewTokens', 'maxLength', 'minLength', 'temperature', 'topK', 'topP', 'minP', 'repetitionPenalty',
  'noRepeatNgramSize', 'badWordsIds', 'suppressTokens', 'beginSuppressTokens', 'forcedBosTokenId', 'forcedEosTokenId',
  'seed', 'stopTokenIds', 'stopStrings', 'maxTimeMs', 'numBeams', 'lengthPenalty', 'earlyStopping', 'numReturnSequences',
  'logprobs', 'topLogprobs', 'logitsProcessors', 'stoppingCriteria',
] as const;

/** Every option `generate` / `generateStream` accepts. */
export const GENERATE_OPTIONS: readonly string[] = [...GENERATION_OPTIONS, 'inputIds', 'prompt', 'tokenizer', 'signal', 'onToken', 'cache', 'kvDtype', 'slidingWindow', 'prefixCache'];
/** Every option `translate` / `translateStream` accepts. */
export const TRANSLATE_OPTIONS: readonly string[] = [
  ...GENERATION_OPTIONS, 'sourceIds', 'text', 'tokenizer', 'targetTokenizer', 'targetPrefix', 'alternatives', 'signal', 'onToken', 'cache',
];

/** Names other libraries use for kvt's options (Hugging Face, OpenAI, llama.cpp), and common slips. */
const ALIASES: Readonly<Record<string, string>> = {
  maxTokens: 'maxNewTokens', nPredict: 'maxNewTokens', numPredict: 'maxNewTokens',
  beams: 'numBeams', beamSize: 'numBeams', beamWidth: 'numBeams', numBeam: 'numBeams',
  stop: 'stopStrings', stopSequences: 'stopStrings', eosTokenId: 'stopTokenIds', eosTokenIds: 'stopTokenIds',
  randomSeed: 'seed', numReturn: 'numReturnSequences', maxTime: 'maxTimeMs', eosTokenIdList: 'stopTokenIds', bannedTokens: 'suppressTokens', badWords: 'badWordsIds', logitBias: 'logitsProcessors', nBest: 'numReturnSequences', abortSignal: 'signal',
  repeatPenalty: 'repetitionPenalty', input: 'prompt', inputs: 'prompt', sourceText: 'text',
};

const camel = (name: string) => name.replace(/[_-]+([a-z0-9])/gi, (_, c: string) => c.toUpperCase());

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The option a user most likely meant by `name`, if any. */
export function suggestOption(name: string, known: readonly string[]): string | undefined {
  const c = camel(name);
  for (const candidate of [name, c]) {
    const alias = ALIASES[candidate];
    if (alias && known.includes(alias)) return alias;
  }
  if (known.includes(c)) return c;
  const lower = c.toLowerCase();
  const sameCase = known.find((k) => k.toLowerCase() === lower);
  if (sameCase) return sameCase;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(c.length / 4)) + 1;
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/**
 * Throws {@link InvalidOptionError} for the first option name `call` does not know (a misspelt or snake_case name
 * would otherwise be ignored silently), suggesting the name meant. Keys whose value is `undefined` are let through.
 */
export function rejectUnknownOptions(request: object, known: readonly string[], call: string): void {
  for (const [name, value] of Object.entries(request)) {
    if (value === undefined || known.includes(name)) continue;
    const meant = suggestOption(name, known);
    throw new InvalidOptionError(
      name,
      value,
      meant ? `no such option of ${call}: did you mean '${meant}'?` : `one of ${call}'s options (${known.join(', ')})`,
    );
  }
}
