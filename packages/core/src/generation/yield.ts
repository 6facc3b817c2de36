/**
 * Gives the event loop one turn (a macrotask), so timers, clicks, `AbortSignal.timeout` and painting run between
 * decode steps: a posted task (`MessageChannel`: no 4 ms clamp as with `setTimeout`), between which the browser
 * paints at its frame rate; after a step longer than a frame, on a visible page, it first lets the browser paint the
 * frame that is due. In Node, `setImmediate`. (`scheduler.yield()` is not used: its continuations run ahead of
 * rendering, and Chromium then paints only every ~100 ms.)
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
    const now = performance.now();
    const longStep = now - lastYield >= FRAME_MS;
    lastYield = now;
    const turn = longStep ? nextFrame().then(postTask) : postTask();
    return turn.then(() => void (lastYield = performance.now()));
  }
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  return postTask();
}

const FRAME_MS = 16;
/** The longest wait for a frame (a page the browser has stopped painting, such as an off-screen frame). */
const FRAME_TIMEOUT_MS = 100;
/** When the last yield on this page returned (the step since then is what the next yield measures). */
let lastYield = Infinity;

function visiblePage(): boolean {
  const doc = (globalThis as { document?: { visibilityState?: string } }).document;
  return typeof requestAnimationFrame === 'function' && doc?.visibilityState === 'visible';
}

/** Resolves at the next animation frame (the browser paints right after its callbacks). */
function nextFrame(): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, FRAME_TIMEOUT_MS);
    requestAnimationFrame(() => {
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
