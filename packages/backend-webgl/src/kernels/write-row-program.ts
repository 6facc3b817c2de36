import type { GPGPUProgram } from '@tensorflow/tfjs-backend-webgl';

/**
 * Positions `[first, first + outputShape[2])` of the cache `[rows, kvHeads, bucket, headDim]` with position `position`
 * replaced by a decode step's row `[rows, kvHeads, 1, headDim]`, in one pass over packed textures. Two uses: the
 * whole bucket (`first` 0, output the cache's shape: a new cache tensor) and the packed texel row holding the position
 * (`first` = the position rounded down to even, 2 positions: what the in-place write copies into the cache's own
 * texture, `write-rows-in-place.ts`). Both positions are uniforms, so one program per shape serves every step.
 */
export class WriteRowProgram implements GPGPUProgram {
  // (not 'row': tfjs's sampler functions take a parameter of that name)
  readonly variableNames = ['cache', 'newRow'];
  readonly packedInputs = true;
  readonly packedOutput = true;
  readonly customUniforms = [
    { name: 'first', type: 'int' as const },
    { name: 'position', type: 'int' as const },
  ];
  readonly outputShape: number[];
  // a packed texel holds positions (p, p + 1) × dimensions (d, d + 1): .xy is position p, .zw position p + 1
  readonly userCode = `
    void main() {
      ivec4 c = getOutputCoords();
      int at = first + c.z;
      vec4 result = getCache(c.x, c.y, at, c.w);
      vec4 written = getNewRow(c.x, c.y, 0, c.w);
      if (at == position) {
        result.xy = written.xy;
      } else if (at + 1 == position) {
        result.zw = written.xy;
      }
      setOutput(result);
    }
  `;

  constructor(outputShape: readonly number[]) {
    this.outputShape = [...outputShape];
  }
}
