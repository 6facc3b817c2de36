import { ModelFormatError, ShapeMismatchError } from '@kvt/core';

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
  private readonly map = new Map<string, HostTensor | { readonly shape: readonly number[]; readonly make: () => HostTensor }>();
  constructor(readonly source: string) {}
  set(name: string, t: HostTensor): this {
    this.map.set(name, t);
    return this;
  }
  /** An entry of `shape` built by `make` each time it is taken (and not kept). */
  setLazy(name: string, shape: readonly number[], make: () => HostTensor): this {
    this.map.set(name, { shape: [...shape], make });
    return this;
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  names(): string[] {
    return [...this.map.keys()];
  }
  take(name: string, shape: readonly number[]): HostTensor {
    const t = this.map.get(name);
    if (!t) throw new ModelFormatError(this.source, `missing tensor ${name} (expected shape [${shape.join(', ')}])`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new ShapeMismatchError(`${this.source}: ${name}`, shape, t.shape, 'the weights disagree with the config');
    return 'make' in t ? t.make() : t;
  }
  /** The tensor as stored, whatever its shape (throws when missing). */
  get(name: string): HostTensor {
    const t = this.map.get(name);
    if (!t) throw new ModelFormatError(this.source, `missing tensor ${name}`);
    return 'make' in t ? t.make() : t;
  }
  optional(name: string, shape: readonly number[]): HostTensor | undefined {
    return this.map.has(name) ? this.take(name, shape) : undefined;
  }
}
