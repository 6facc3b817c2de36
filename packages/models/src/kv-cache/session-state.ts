import { CacheStateError, InvalidOptionError, resumeSession, type DecoderOnlyModel, type GenerationSession, type KVDtype, type SessionCacheMode, type Tokenizer } from '@kvt/core';
import { KVCacheContainer, decodeCacheState, encodeCacheState } from '@kvt/kernels';

/** Logits a model gives for the first token alone: its fingerprint in a saved state (the first 16 values at most). */
const PROBE_VALUES = 16;

/** The model facts a saved state records and a restore checks. */
async function identity(model: DecoderOnlyModel, firstToken: number): Promise<Record<string, unknown>> {
  const { architecture, numLayers, numHeads, numKvHeads, headDim, vocabSize, maxPositions } = model.config;
  const logits = await model.forward([[firstToken]], null);
  return { architecture, numLayers, numHeads, numKvHeads, headDim, vocabSize, maxPositions, probe: Array.from(logits.data.subarray(0, PROBE_VALUES)) };
}

/**
 * A session's state as bytes (kvt's cache-state format, version 1: the tokens, the cache's K/V, the model's shape
 * and a fingerprint of its outputs, a checksum). {@link restoreSession} continues it on the same backend or another.
 *
 * @example
 * ```ts
 * const bytes = await saveSession(session);
 * const again = await restoreSession(model, bytes, { tokenizer });
 * ```
 */
export async function saveSession(session: GenerationSession): Promise<Uint8Array> {
  if (session.disposed) throw new InvalidOptionError('session', 'disposed', 'a session that is not disposed');
  if (!(session.cache instanceof KVCacheContainer))
    throw new InvalidOptionError('session', 'its cache', "a session whose cache is kvt's (createSession's cache 'auto', 'backend' or 'concat')");
  return await encodeCacheState(session.cache, await identity(session.model, session.tokens[0]!), session.tokens);
}

/**
 * Continues a session saved by {@link saveSession}, in a new cache of the active backend (storing K/V as
 * `options.kvDtype`, whatever the saved session stored: the state holds float32 values). A corrupt state, a state
 * of another model (shape or outputs), or one that is not a session's is a typed {@link CacheStateError}, raised
 * before the cache is allocated.
 *
 * @example
 * ```ts
 * const session = await restoreSession(model, await readFile('chat.kvts'), { tokenizer });
 * await session.generate({ prompt: ' And then', maxNewTokens: 20 });
 * ```
 */
export async function restoreSession(
  model: DecoderOnlyModel,
  bytes: Uint8Array,
  options: { tokenizer?: Tokenizer; cache?: SessionCacheMode; kvDtype?: KVDtype } = {},
): Promise<GenerationSession> {
  const { header, layers } = decodeCacheState(bytes);
  const tokens = header.tokens;
  if (!tokens || header.rows !== 1 || tokens.length === 0) throw new CacheStateError('This cache state is not a session (one row with its tokens); restore it with KVCacheContainer.write.');
  const want = await identity(model, tokens[0]!);
  const saved = header.model as Record<string, unknown>;
  const shapes = Object.keys(want).filter((k) => k !== 'probe' && saved[k] !== want[k]);
  const probe = saved.probe as number[] | undefined;
  const wantProbe = want.probe as number[];
  const scale = Math.max(1e-6, ...wantProbe.map(Math.abs));
  const outputsDiffer = !Array.isArray(probe) || probe.length !== wantProbe.length || probe.some((x, i) => !(Math.abs(x - wantProbe[i]!) <= 1e-3 * scale));
  if (shapes.length > 0 || outputsDiffer)
    throw new CacheStateError(
      `This session was saved from another model (${shapes.length > 0 ? `it differs in ${shapes.join(', ')}` : 'its outputs differ'}); restore it with the model it was saved from.`,
    );
  const cache = model.createCache({ batchSize: 1, capacityHint: tokens.length + 64, kind: options.cache ?? 'auto', ...(options.kvDtype ? { kvDtype: options.kvDtype } : {}) });
  try {
    if (!(cache instanceof KVCacheContainer)) throw new CacheStateError("The model's cache cannot be written from a saved state.");
    cache.write(layers, header.length, header.padding);
    return resumeSession(model, cache, tokens, options.tokenizer ? { tokenizer: options.tokenizer } : {});
  } catch (e) {
    cache.dispose();
    throw e;
  }
}
