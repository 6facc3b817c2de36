import * as tf from '@tensorflow/tfjs-core';

/**
 * Shader programs tfjs's WebGL backend has compiled so far (its binary cache), or null on another backend. With the
 * bucket cache the count stays constant from the second decode step on.
 *
 * @example
 * ```ts
 * const before = compiledShaderPrograms();
 * await generate(model, { inputIds, maxNewTokens: 8 });
 * console.log(compiledShaderPrograms()! - before!);
 * ```
 */
export function compiledShaderPrograms(): number | null {
  const b = tf.backend() as unknown as { binaryCache?: Record<string, unknown> };
  return tf.getBackend() === 'webgl' && b.binaryCache ? Object.keys(b.binaryCache).length : null;
}
