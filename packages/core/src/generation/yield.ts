/**
 * Gives the event loop one turn (a macrotask), so timers, clicks, `AbortSignal.timeout` and painting run between
 * decode steps. On a visible page, when a frame is due (16 ms since the last one this loop saw), it first lets the
 * browser paint one, then goes on right after it; otherwise it posts a task (`MessageChannel`: no 4 ms clamp as with
 * `setTimeout`). In Node, `setImmediate`. (`scheduler.yield()` is not used: its continuations run ahead of rendering,
 * and Chromium then paints only every ~100 ms.)
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
  if (visiblePage()) {
    if (performance.now() - lastFrame >= FRAME_MS) return nextFrame().then(postTask);
    return postTask();
  }
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  return postTask();
}

const FRAME_MS = 16;
/** The longest wait for a frame (a page the browser has stopped painting, such as an off-screen frame). */
const FRAME_TIMEOUT_MS = 100;
let lastFrame = -Infinity;

function visiblePage(): boolean {
  const doc = (globalThis as { document?: { visibilityState?: string } }).document;
  return typeof requestAnimationFrame === 'function' && doc?.visibilityState === 'visible';
}

/** Resolves at the next animation frame (the browser paints right after its callbacks). */
function nextFrame(): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, FRAME_TIMEOUT_MS);
    requestAnimationFrame(() => {
      lastFrame = performance.now();
      clearTimeout(timer);
      resolve();
    });
  });
}

const pending: (() => void)[] = [];
let port: MessagePort | undefined;

/** A macrotask: a message on one shared MessageChannel (each message releases the oldest waiting yield). */
function postTask(): Promise<void> {
  if (!port) {
    const c = new MessageChannel();
    c.port1.onmessage = () => pending.shift()?.();
    port = c.port2;
  }
  return new Promise((resolve) => {
    pending.push(resolve);
    port!.postMessage(null);
  });
}
