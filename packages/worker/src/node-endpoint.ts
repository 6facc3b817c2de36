import type { Endpoint } from 'comlink';

/** The message side of a Node worker thread or its `parentPort`. */
export interface NodeMessenger {
  postMessage(message: unknown, transfer?: readonly unknown[]): void;
  on(event: 'message', listener: (data: unknown) => void): unknown;
  off(event: 'message', listener: (data: unknown) => void): unknown;
}

/**
 * A Node `worker_threads` Worker (or `parentPort`) as a comlink endpoint: what comlink's own node adapter does,
 * written here so browser bundles never see it.
 */
export function nodeEndpoint(messenger: NodeMessenger): Endpoint {
  const listeners = new WeakMap<object, (data: unknown) => void>();
  return {
    postMessage: (message, transfer) => messenger.postMessage(message, transfer),
    addEventListener: (_type, handler) => {
      const listener = (data: unknown) => {
        const event = { data } as MessageEvent;
        if ('handleEvent' in handler) handler.handleEvent(event);
        else handler(event);
      };
      messenger.on('message', listener);
      listeners.set(handler, listener);
    },
    removeEventListener: (_type, handler) => {
      const listener = listeners.get(handler);
      if (listener) messenger.off('message', listener);
    },
  };
}
