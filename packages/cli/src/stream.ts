/** Runs a generation stream to its end, handing each token's text to `onText`; resolves to the stream's result. */
export async function drain<R>(stream: AsyncGenerator<{ text: string }, R>, onText: (text: string) => void): Promise<R> {
  for (;;) {
    const next = await stream.next();
    if (next.done) return next.value;
    onText(next.value.text);
  }
}
