import type { GenerationEvent } from '@kvt/core';

/**
 * Runs a generation stream to its end, handing each token's new text to `onText` (beam search's best-so-far events
 * are not text to append: the caller prints the result); resolves to the stream's result.
 */
export async function drain<R>(stream: AsyncGenerator<GenerationEvent, R>, onText: (text: string) => void): Promise<R> {
  for (;;) {
    const next = await stream.next();
    if (next.done) return next.value;
    if (next.value.kind === 'token') onText(next.value.text);
  }
}
