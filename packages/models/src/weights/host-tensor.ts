import { ModelFormatError, ShapeMismatchError } from '@kvt/core';
import { dequantize, type QuantizedHostTensor } from './quantize.js';

/** A tensor in host memory: float32 data, row-major, with its shape. What loaders produce and models upload. */
export interface HostTensor {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

export function hostTensor(data: Float32Array, shape: readonly number[]): HostTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) throw new ShapeMismatchError('host tensor', [size], [data.length], 'data length ≠ product of shape');
  return { data, shape: [...shape] };
}

/** A transposed copy of a 2-D host tensor: `[rows, cols]` → `[cols, rows]`. */
export function transpose2d(t: HostTensor): HostTensor {
  const [r, c] = t.shape as [number, number];
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j]!;
  return { data: out, shape: [c, r] };
}

/** An entry read when taken: `make` builds it in kvt's layout, `makeTransposed` (where given) as the file stores it. */
interface Lazy {
  readonly shape: readonly number[];
  readonly make: () => HostTensor;
  readonly makeTransposed?: () => HostTensor;
}

/**
 * Named parameters in kvt's layout (Linear weights `[in, out]`), as a loader or a random initializer hands them to an
 * architecture. `take` checks the shape and says which file lacks what.
 *
 * @example
 * ```ts
 * const params = new ParameterSet('model.safetensors');
 * params.set('finalNorm', hostTensor(new Float32Array(64).fill(1), [64]));
 * params.take('finalNorm', [64]);
 * ```
 */
export class ParameterSet {
  // a tensor, or how to make it: lazy entries (a transpose, a conversion) are built when taken and not kept, so a
  // loader never holds every converted copy at once (peak memory ≈ the file + one tensor)
  private readonly map = new Map<string, HostTensor | QuantizedHostTensor | Lazy>();
  constructor(readonly source: string) {}
  set(name: string, t: HostTensor): this {
    this.map.set(name, t);
    return this;
  }
  /** A quantized entry, kept as stored (a GGUF Q8_0 or Q4_0 tensor). */
  setQuantized(name: string, q: QuantizedHostTensor): this {
    this.map.set(name, q);
    return this;
  }
  /**
   * The entry as a quantized matrix where it is stored so (rows, cols and whether kvt's layout is its transpose), else
   * undefined: an architecture that multiplies quantized weights takes these as they are.
   */
  quantized(name: string): QuantizedHostTensor | undefined {
    const t = this.map.get(name);
    return t && 'format' in t ? t : undefined;
  }
  /**
   * An entry of `shape` built by `make` each time it is taken (and not kept). `makeTransposed`: where the file stores
   * the transpose (a linear weight `[out, in]`), how to read it as stored, so {@link takeTransposed} copies nothing.
   */
  setLazy(name: string, shape: readonly number[], make: () => HostTensor, makeTransposed?: () => HostTensor): this {
    this.map.set(name, { shape: [...shape], make, ...(makeTransposed ? { makeTransposed } : {}) });
    return this;
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  names(): string[] {
    return [...this.map.keys()];
  }
  /** The entry in kvt's layout, as float32 (a quantized entry is dequantized), checked against `shape`. */
  take(name: string, shape: readonly number[]): HostTensor {
    const t = this.map.get(name);
    if (!t) throw new ModelFormatError(this.source, `missing tensor ${name} (expected shape [${shape.join(', ')}])`);
    const stored = 'format' in t ? (t.transposed ? [t.cols, t.rows] : [t.rows, t.cols]) : t.shape;
    if (stored.length !== shape.length || stored.some((d, i) => d !== shape[i]))
      throw new ShapeMismatchError(`${this.source}: ${name}`, shape, stored, 'the weights disagree with the config');
    return this.get(name);
  }
  /** The tensor as stored, whatever its shape, as float32 (throws when missing). */
  get(name: string): HostTensor {
    const t = this.map.get(name);
    if (!t) throw new ModelFormatError(this.source, `missing tensor ${name}`);
    return 'format' in t ? dequantize(t) : 'make' in t ? t.make() : t;
  }
  /**
   * The transpose of a 2-D entry of `shape` (a linear weight `[in, out]` as rows `[out, in]`): read as the file
   * stores it where it can be, else transposed.
   */
  takeTransposed(name: string, shape: readonly [number, number]): HostTensor {
    const t = this.map.get(name);
    if (!t || !('makeTransposed' in t) || !t.makeTransposed) return transpose2d(this.take(name, shape));
    if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1])
      throw new ShapeMismatchError(`${this.source}: ${name}`, shape, t.shape, 'the weights disagree with the config');
    return t.makeTransposed();
  }
  optional(name: string, shape: readonly number[]): HostTensor | undefined {
    return this.map.has(name) ? this.take(name, shape) : undefined;
  }
}
