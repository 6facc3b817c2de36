import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/** Threads per workgroup of both programs. */
const THREADS = 64;

/**
 * Writes a forward pass's new K or V rows `[rows, kvHeads, n, headDim]` into the cache tensor
 * `[rows, kvHeads, capacity, headDim]` at positions `[start, start + n)`, in place: run with the cache tensor as the
 * output, it touches those rows only. One thread per value written.
 */
export class WriteRowsProgram implements WebGPUProgram {
  readonly variableNames = ['newRows'];
  readonly uniforms = 'start : i32, n : i32, count : i32,';
  readonly workgroupSize: [number, number, number] = [THREADS, 1, 1];
  readonly outputShape: number[];
  readonly shaderKey = 'kvtWriteRows';
  readonly dispatchLayout: { x: number[] };
  dispatch: [number, number, number];

  constructor(cacheShape: readonly number[], count: number) {
    this.outputShape = [...cacheShape];
    this.dispatchLayout = { x: [0, 1, 2, 3] };
    this.dispatch = [Math.ceil(count / THREADS), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.count) {
          let hd = uniforms.outShape.w;
          let d = index % hd;
          let p = (index / hd) % uniforms.n;
          let rowHead = index / (hd * uniforms.n);
          setOutputAtIndex((rowHead * uniforms.outShape.z + uniforms.start + p) * hd + d, newRows[index]);
        }
      }`;
  }
}

/**
 * Attention of queries `[rows, heads, n, headDim]` (already scaled) over the cache's K and V
 * `[rows, kvHeads, capacity, headDim]`, reading positions `[0, start + n)` only: query i of row r sees keys
 * `pads[r] ≤ j ≤ start + i` (causal, left padding masked). One workgroup per query row and head: its threads split
 * the positions in tiles of {@link TILE}, with an online softmax (running max and sum) across tiles; each thread
 * accumulates its own output dimensions. Output `[rows, heads, n, headDim]`.
 */
export class CacheAttentionProgram implements WebGPUProgram {
  readonly variableNames = ['queries', 'keys', 'values', 'pads'];
  readonly uniforms = 'start : i32, n : i32, valid : i32, groups : i32, queryCount : i32,';
  readonly workgroupSize: [number, number, number] = [THREADS, 1, 1];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  private readonly headDim: number;

  constructor(queryShape: readonly number[]) {
    this.outputShape = [...queryShape];
    this.headDim = queryShape[3]!;
    this.shaderKey = `kvtCacheAttention_${this.headDim}`;
    this.dispatchLayout = { x: [0, 1, 2, 3] };
    this.dispatch = [queryShape[0]! * queryShape[1]! * queryShape[2]!, 1, 1];
  }

  getUserCode(): string {
    const hd = this.headDim;
    const perThread = Math.ceil(hd / THREADS);
    return `
      const TILE = ${TILE};
      var<workgroup> q : array<f32, ${hd}>;
      var<workgroup> weights : array<f32, ${TILE}>;
      var<workgroup> partial : array<f32, ${THREADS}>;

      // the workgroup's sum (sum = true) or max of each thread's x
      fn workgroupReduce(x : f32, sum : bool, lid : i32) -> f32 {
        partial[lid] = x;
        workgroupBarrier();
        for (var s = ${THREADS / 2}; s > 0; s = s / 2) {
          if (lid < s) {
            partial[lid] = select(max(partial[lid], partial[lid + s]), partial[lid] + partial[lid + s], sum);
          }
          workgroupBarrier();
        }
        let r = partial[0];
        workgroupBarrier();
        return r;
      }

      fn main(index : i32) {
        let lid = i32(localId.x);
        // one workgroup per (row, head, query): [rows, heads, n]
        let query = i32(workgroupId.x + workgroupId.y * numWorkgroups.x + workgroupId.z * numWorkgroups.x * numWorkgroups.y);
        let live = query < uniforms.queryCount;
        let qi = query % uniforms.n;
        let head = (query / uniforms.n) % uniforms.outShape.y;
        let row = query / (uniforms.n * uniforms.outShape.y);
        let kvHead = head / uniforms.groups;
        let capacity = uniforms.keysShape.z;
        let base = (row * uniforms.keysShape.y + kvHead) * capacity * ${hd};
        var first = 0;
        if (live) { first = pads[row]; }
        let last = uniforms.start + qi; // inclusive

        for (var d = lid; d < ${hd}; d = d + ${THREADS}) {
          q[d] = select(0.0, queries[query * ${hd} + d], live);
        }
        workgroupBarrier();

        var runMax = -3.4e38;
        var runSum = 0.0;
        var acc : array<f32, ${perThread}>;
        for (var t0 = 0; t0 < uniforms.valid; t0 = t0 + TILE) {
          // scores of this tile's positions (−inf outside the query's range)
          var tileMax = -3.4e38;
          for (var j = t0 + lid; j < t0 + TILE; j = j + ${THREADS}) {
            var s = -3.4e38;
            if (live && j >= first && j <= last) {
              s = 0.0;
              for (var d = 0; d < ${hd}; d = d + 1) { s = s + q[d] * keys[base + j * ${hd} + d]; }
            }
            weights[j - t0] = s;
            tileMax = max(tileMax, s);
          }
          let newMax = max(runMax, workgroupReduce(tileMax, false, lid));
          let rescale = select(exp(runMax - newMax), 0.0, runMax <= -3.4e38);
          var tileSum = 0.0;
          for (var j = t0 + lid; j < t0 + TILE; j = j + ${THREADS}) {
            let s = weights[j - t0];
            let e = select(exp(s - newMax), 0.0, s <= -3.4e38);
            weights[j - t0] = e;
            tileSum = tileSum + e;
          }
          runSum = runSum * rescale + workgroupReduce(tileSum, true, lid);
          runMax = newMax;
          // each thread: its output dimensions, over the tile's positions
          let end = min(t0 + TILE, uniforms.valid);
          for (var k = 0; k < ${perThread}; k = k + 1) {
            let d = lid + k * ${THREADS};
            if (d < ${hd}) {
              var a = acc[k] * rescale;
              for (var j = t0; j < end; j = j + 1) {
                let w = weights[j - t0];
                if (w != 0.0) { a = a + w * values[base + j * ${hd} + d]; }
              }
              acc[k] = a;
            }
          }
          workgroupBarrier();
        }
        for (var k = 0; k < ${perThread}; k = k + 1) {
          let d = lid + k * ${THREADS};
          if (live && d < ${hd}) { setOutputAtIndex(query * ${hd} + d, acc[k] / runSum); }
        }
      }`;
  }
}

/** Positions a workgroup scores at once (workgroup memory: one float each). */
export const TILE = 256;
