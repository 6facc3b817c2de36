/**
 * Typed errors. Every error kvt throws is a {@link KvtError} with a stable `code` and a message that says what to
 * do. `KvtError.isInstance(e)` works across duplicated package copies (it checks a global marker, not `instanceof`).
 *
 * @example
 * ```ts
 * try { await generate(model, { inputIds: [[]] }); }
 * catch (e) { if (InvalidOptionError.isInstance(e)) console.error(e.option, e.message); }
 * ```
 */
const MARKER = Symbol.for('kvt.error');

export type KvtErrorCode =
  | 'INVALID_OPTION'
  | 'INVALID_INPUT'
  | 'TOKEN_OUT_OF_RANGE'
  | 'PROMPT_TOO_LONG'
  | 'SHAPE_MISMATCH'
  | 'MODEL_FORMAT'
  | 'UNSUPPORTED'
  | 'ABORTED'
  | 'CACHE_STATE'
  | 'DISPOSED'
  | 'RESOURCE_LIMIT'
  | 'NUMERICAL'
  | 'FILE_ACCESS';

/** Base class of every kvt error. */
export class KvtError extends Error {
  readonly [MARKER] = true;
  readonly code: KvtErrorCode;
  constructor(code: KvtErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
  /** True for any kvt error, even one thrown by another copy of this package. */
  static isInstance(e: unknown): e is KvtError {
    return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[MARKER] === true;
  }
}

function isCode<T extends KvtError>(e: unknown, code: KvtErrorCode): e is T {
  return KvtError.isInstance(e) && e.code === code;
}

/** An option is missing, of the wrong type or outside its range. */
export class InvalidOptionError extends KvtError {
  constructor(
    readonly option: string,
    readonly value: unknown,
    readonly expected: string,
  ) {
    super('INVALID_OPTION', `Invalid option ${option}: got ${describe(value)}; expected ${expected}.`);
  }
  static override isInstance(e: unknown): e is InvalidOptionError {
    return isCode(e, 'INVALID_OPTION');
  }
}

/** An input (prompt, ids, text) cannot be used as given. */
export class InvalidInputError extends KvtError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
  static override isInstance(e: unknown): e is InvalidInputError {
    return isCode(e, 'INVALID_INPUT');
  }
}

/** A token id lies outside `[0, vocabSize)`. */
export class TokenOutOfRangeError extends KvtError {
  constructor(
    readonly tokenId: number,
    readonly vocabSize: number,
    readonly where: string,
  ) {
    super(
      'TOKEN_OUT_OF_RANGE',
      `Token id ${tokenId} in ${where} is outside the vocabulary [0, ${vocabSize}); ` +
        `encode text with this model's tokenizer.`,
    );
  }
  static override isInstance(e: unknown): e is TokenOutOfRangeError {
    return isCode(e, 'TOKEN_OUT_OF_RANGE');
  }
}

/** Prompt plus requested new tokens do not fit the model's positions. */
export class PromptTooLongError extends KvtError {
  constructor(
    readonly promptTokens: number,
    readonly maxNewTokens: number,
    readonly maxPositions: number,
  ) {
    super(
      'PROMPT_TOO_LONG',
      promptTokens > maxPositions
        ? `The prompt has ${promptTokens} tokens but the model has ${maxPositions} positions; shorten the prompt to at most ${maxPositions} tokens.`
        : `The prompt has ${promptTokens} tokens and ${maxNewTokens} new tokens were asked for, but the model has ` +
            `${maxPositions} positions (the last new token is never fed back, so prompt + new tokens − 1 must fit); ` +
            `lower maxNewTokens to at most ${maxPositions - promptTokens + 1}, or shorten the prompt.`,
    );
  }
  static override isInstance(e: unknown): e is PromptTooLongError {
    return isCode(e, 'PROMPT_TOO_LONG');
  }
}

/** A tensor or array has the wrong shape. */
export class ShapeMismatchError extends KvtError {
  constructor(
    readonly tensor: string,
    readonly expected: readonly number[] | string,
    readonly actual: readonly number[] | string,
    hint = '',
  ) {
    super(
      'SHAPE_MISMATCH',
      `${tensor} has shape ${fmtShape(actual)}, expected ${fmtShape(expected)}${hint ? `; ${hint}` : ''}.`,
    );
  }
  static override isInstance(e: unknown): e is ShapeMismatchError {
    return isCode(e, 'SHAPE_MISMATCH');
  }
}

/** A model or tokenizer file is malformed, truncated, or disagrees with itself. */
export class ModelFormatError extends KvtError {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super('MODEL_FORMAT', `${file}: ${reason}`);
  }
  static override isInstance(e: unknown): e is ModelFormatError {
    return isCode(e, 'MODEL_FORMAT');
  }
}

/** A well-formed request for something kvt does not support. */
export class UnsupportedError extends KvtError {
  constructor(message: string) {
    super('UNSUPPORTED', message);
  }
  static override isInstance(e: unknown): e is UnsupportedError {
    return isCode(e, 'UNSUPPORTED');
  }
}

/** Generation was stopped through an `AbortSignal`; `partial` holds what was generated before the stop. */
export class AbortedError<TPartial = unknown> extends KvtError {
  constructor(
    readonly partial: TPartial,
    reason?: unknown,
  ) {
    super('ABORTED', 'Generation was aborted; the tokens generated before the abort are in `partial`.', {
      cause: reason,
    });
  }
  static override isInstance(e: unknown): e is AbortedError {
    return isCode(e, 'ABORTED');
  }
}

/** A cache operation that the cache's state does not allow (too long, wrong batch, reorder out of range). */
export class CacheStateError extends KvtError {
  constructor(message: string) {
    super('CACHE_STATE', message);
  }
  static override isInstance(e: unknown): e is CacheStateError {
    return isCode(e, 'CACHE_STATE');
  }
}

/** Use of a model, cache or encoder state after `dispose()`. */
export class DisposedError extends KvtError {
  constructor(what: string) {
    super('DISPOSED', `${what} was used after dispose(); create a new one.`);
  }
  static override isInstance(e: unknown): e is DisposedError {
    return isCode(e, 'DISPOSED');
  }
}

/** A request whose sizes (beams, samples, inputs, a file's declared lengths) would need more memory than kvt allows. */
export class ResourceLimitError extends KvtError {
  constructor(
    message: string,
    /** What the request would need (bytes, or the count named in the message). */
    readonly needed: number,
    /** The limit. */
    readonly limit: number,
  ) {
    super('RESOURCE_LIMIT', message);
  }
  static override isInstance(e: unknown): e is ResourceLimitError {
    return isCode(e, 'RESOURCE_LIMIT');
  }
}

/** The model produced non-finite logits (NaN or infinity): its weights or config are broken. */
export class NumericalError extends KvtError {
  constructor(
    /** 0-based index of the generated token whose logits were not finite. */
    readonly step: number,
    /** The row (sequence) whose logits were not finite. */
    readonly row: number,
    readonly value: number,
  ) {
    super(
      'NUMERICAL',
      `The model's logits are not finite (${value}) at generation step ${step}, row ${row}: check the weights ` +
        '(NaN or infinity in a tensor) and the config (norm epsilon, rope theta, scaling).',
    );
  }
  static override isInstance(e: unknown): e is NumericalError {
    return isCode(e, 'NUMERICAL');
  }
}

/**
 * A model file could not be read: it is not there (`'missing'`: no such file, HTTP 404, a server answering with its
 * HTML page), the server refused it (`'http'`: another status), or the network failed (`'network'`).
 */
export class FileAccessError extends KvtError {
  constructor(
    readonly file: string,
    readonly reason: 'missing' | 'http' | 'network',
    message: string,
    readonly status?: number,
  ) {
    super('FILE_ACCESS', message);
  }
  static override isInstance(e: unknown): e is FileAccessError {
    return isCode(e, 'FILE_ACCESS');
  }
}

function fmtShape(s: readonly number[] | string): string {
  return typeof s === 'string' ? s : `[${s.join(', ')}]`;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.slice(0, 8).map(describe).join(', ')}${v.length > 8 ? ', …' : ''}]`;
  return String(v);
}
