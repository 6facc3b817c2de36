import { InvalidOptionError } from '@kvt/core';

export const NODE_BACKENDS = ['cpu', 'wasm'] as const;
export type NodeBackend = (typeof NODE_BACKENDS)[number];

/** Loads a backend package (registering its kernels and KV cache) and makes it active. */
export async function useBackend(name: string): Promise<NodeBackend> {
  if (name === 'cpu') await (await import('@kvt/backend-cpu')).activate();
  else if (name === 'wasm') await (await import('@kvt/backend-wasm')).activate();
  else throw new InvalidOptionError('--backend', name, `one of ${NODE_BACKENDS.join(', ')} (webgl runs in the browser: see apps/translator)`);
  return name;
}
