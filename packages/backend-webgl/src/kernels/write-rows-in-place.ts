import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendWebGL } from '@tensorflow/tfjs-backend-webgl';
import { WriteRowProgram } from './write-row-program.js';

/** What tfjs-webgl keeps per tensor that the in-place write reads (`MathBackendWebGL.texData`). */
interface TexData {
  isPacked?: boolean;
  texture?: { texture: WebGLTexture } | null;
  texShape?: number[];
  values?: unknown;
  refCount: number;
}

const readFramebuffers = new WeakMap<WebGLRenderingContext, WebGLFramebuffer>();
/** Per context: whether its first in-place copy raised no GL error (a context that cannot copy these textures). */
const copyWorks = new WeakMap<WebGLRenderingContext, boolean>();

/**
 * Writes a decode step's row `[rows, kvHeads, 1, headDim]` at `position` into the cache tensor `[rows, kvHeads, bucket,
 * headDim]` in place: {@link WriteRowProgram} renders the texel row holding the position (2 positions per row
 * and head), and `copyTexSubImage2D` copies it into the cache's own texture, one texel row per row and head. Bytes
 * written per step: 2 × 2 positions per row and head, whatever the bucket. Returns false, having written nothing, where
 * the cache is not a packed texture of tfjs's `[rows · kvHeads · bucket, headDim]` layout held by this tensor alone
 * (a clone shares it; a read moved it to the CPU), or on a context whose first copy raised a GL error: the caller then
 * writes a new tensor.
 */
export function writeRowInPlace(cache: tf.Tensor4D, row: tf.Tensor4D, position: number): boolean {
  const backend = tf.backend() as unknown as MathBackendWebGL & { texData: { get(id: object): TexData } };
  const [R, H, B, D] = cache.shape;
  if (D % 2 !== 0 || B % 2 !== 0 || position >= B) return false;
  const data = backend.texData.get(cache.dataId);
  const texShape = data.texShape ?? [];
  if (!data.isPacked || !data.texture || data.values != null || data.refCount !== 1 || texShape[0] !== R * H * B || texShape[1] !== D) return false;
  const pairShape = [R, H, 2, D]; // the texel row: positions (first, first + 1), first = the position rounded down to even
  const pairInfo = backend.runWebGLProgram(new WriteRowProgram(pairShape), [cache, row], 'float32', [[position & ~1], [position]], true);
  try {
    const pair = backend.texData.get(pairInfo.dataId);
    if (!pair.isPacked || !pair.texture || pair.texShape?.[0] !== R * H * 2 || pair.texShape[1] !== D) return false;
    const gl = backend.gpgpu.gl;
    if (copyWorks.get(gl) === false) return false;
    const first = !copyWorks.has(gl);
    if (first) while (gl.getError() !== gl.NO_ERROR); // earlier errors are not this copy's
    let fbo = readFramebuffers.get(gl);
    if (!fbo) {
      fbo = gl.createFramebuffer()!;
      readFramebuffers.set(gl, fbo);
    }
    const boundTexture = gl.getParameter(gl.TEXTURE_BINDING_2D) as WebGLTexture | null;
    gl.bindFramebuffer(gl.FRAMEBUFFER, fbo);
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, pair.texture.texture, 0);
    gl.bindTexture(gl.TEXTURE_2D, data.texture.texture);
    // texel row i of the pair (row r, head h: i = r·H + h) → texel row i·B/2 + ⌊position/2⌋ of the cache
    for (let i = 0; i < R * H; i++) gl.copyTexSubImage2D(gl.TEXTURE_2D, 0, 0, i * (B / 2) + (position >> 1), 0, i, D / 2, 1);
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, null, 0);
    gl.bindTexture(gl.TEXTURE_2D, boundTexture);
    gl.bindFramebuffer(gl.FRAMEBUFFER, backend.gpgpu.framebuffer);
    // the first copy on a context is checked once (a failed copy writes nothing: the caller then writes a new tensor)
    if (first) copyWorks.set(gl, gl.getError() === gl.NO_ERROR);
    return copyWorks.get(gl)!;
  } finally {
    backend.disposeIntermediateTensorInfo(pairInfo);
  }
}
