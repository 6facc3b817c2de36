import type { GPGPUProgram } from '@tensorflow/tfjs-backend-webgl';

/**
 * A decode step's K or V row written into the bucket: output = the cache `[rows, kvHeads, bucket, headDim]` with
 * position `position` replaced by the row `[rows, kvHeads, 1, headDim]`, in one pass over packed textures (tfjs's
 * WebGL programs render a whole new texture; this one writes the bucket once, where a one-hot mix wrote it three
 * times). The position is a uniform, so one program serves every step of a bucket.
 */
export class WriteRowProgram implements GPGPUProgram {
  // (not 'row': tfjs's sampler functions take a parameter of that name)
  readonly variableNames = ['cache', 'newRow'];
  readonly packedInputs = true;
  readonly packedOutput = true;
  readonly customUniforms = [{ name: 'position', type: 'int' as const }];
  readonly outputShape: number[];
  // a packed texel holds positions (p, p + 1) × dimensions (d, d + 1): .xy is position p, .zw position p + 1
  readonly userCode = `
    void main() {
      ivec4 c = getOutputCoords();
      vec4 result = getCache(c.x, c.y, c.z, c.w);
      vec4 written = getNewRow(c.x, c.y, 0, c.w);
      if (c.z == position) {
        result.xy = written.xy;
      } else if (c.z + 1 == position) {
        result.zw = written.xy;
      }
      setOutput(result);
    }
  `;

  constructor(cacheShape: readonly number[]) {
    this.outputShape = [...cacheShape];
  }
}
