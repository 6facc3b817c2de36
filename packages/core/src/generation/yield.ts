/**
 * Gives the event loop one turn (a macrotask), so timers, clicks, `AbortSignal.timeout` and painting run between
 * decode steps: `scheduler.yield()` where the platform has it, else `setImmediate` (Node), else a `MessageChannel`
 * message (browsers and workers; no 4 ms clamp as with `setTimeout`).
 *
 * @example
 * ```ts
 * for (let step = 0; step < n; step++) {
 *   await yieldToEventLoop(); // an abort from a timer is seen before the next step
 *   signal?.throwIfAborted();
 * }
 * ```
 */
export function yieldToEventLoop(): Promise<void> {
  const scheduler = (globalThis as { scheduler?: { yield?: () => Promise<void> } }).scheduler;
  if (typeof scheduler?.yield === 'function') return scheduler.yield();
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => {
    pending.push(resolve);
    channel().postMessage(null);
  });
}

const pending: (() => void)[] = [];
let port: MessagePort | undefined;

/** One MessageChannel for every yield: each message releases the oldest waiting yield. */
function channel(): MessagePort {
  if (!port) {
    const c = new MessageChannel();
    c.port1.onmessage = () => pending.shift()?.();
    port = c.port2;
  }
  return port;
}
