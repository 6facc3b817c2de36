// kvt's WebAssembly SIMD kernels for tfjs's wasm backend. They import tfjs-wasm's own memory, so every pointer below
// is a byte offset into that heap: tensors are read and written where tfjs keeps them (no copy through JavaScript),
// and the KV cache lives in the same heap. Built by scripts/build-kernels.mjs (clang --target=wasm32 -msimd128) into
// kvt-kernels-wasm.ts; the build checks the module has no data segments and no stack (it must never write into
// memory it does not own).
//
// Layouts: Linear weights are kvt's [in, out] row-major (or rows in blocks, below). The KV cache is paged: blocks of
// 2^shift positions (per cache), each block holding every layer's K and V as [kvHeads, block, hd]; a row is a table of blocks.
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
typedef unsigned int usize;

static inline float hsum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

// e^x for float32 (Cephes expf: range reduction by ln 2, degree-6 polynomial; about 1 ulp).
static inline float kvt_expf(float x) {
  if (x < -87.33654f) return 0.0f; // below the smallest normal (and -inf)
  if (x > 88.0f) x = 88.0f;        // the caller never needs more (softmax inputs are ≤ 0)
  float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  float y = p * r * r + r + 1.0f;
  return y * __builtin_bit_cast(float, ((int)n + 127) << 23);
}

static inline int imin(int a, int b) { return a < b ? a : b; }

// y[out] += x[in] · w[in, out] for one row: eight weight rows at a time, swept over the full width (eight sequential
// streams: this is what keeps a decode step's matrix-vector products near the memory bandwidth).
static void axpy_rows(const float* x, const float* w, float* y, int in, int out) {
  int i0 = 0;
  for (; i0 + 8 <= in; i0 += 8) {
    const float* w0 = w + (usize)i0 * out;
    const float *w1 = w0 + out, *w2 = w1 + out, *w3 = w2 + out, *w4 = w3 + out, *w5 = w4 + out, *w6 = w5 + out, *w7 = w6 + out;
    const v128_t x0 = wasm_f32x4_splat(x[i0]), x1 = wasm_f32x4_splat(x[i0 + 1]);
    const v128_t x2 = wasm_f32x4_splat(x[i0 + 2]), x3 = wasm_f32x4_splat(x[i0 + 3]);
    const v128_t x4 = wasm_f32x4_splat(x[i0 + 4]), x5 = wasm_f32x4_splat(x[i0 + 5]);
    const v128_t x6 = wasm_f32x4_splat(x[i0 + 6]), x7 = wasm_f32x4_splat(x[i0 + 7]);
    int j = 0;
    for (; j + 4 <= out; j += 4) {
      v128_t a = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(w0 + j)), wasm_f32x4_mul(x1, wasm_v128_load(w1 + j)));
      v128_t b = wasm_f32x4_add(wasm_f32x4_mul(x2, wasm_v128_load(w2 + j)), wasm_f32x4_mul(x3, wasm_v128_load(w3 + j)));
      v128_t e = wasm_f32x4_add(wasm_f32x4_mul(x4, wasm_v128_load(w4 + j)), wasm_f32x4_mul(x5, wasm_v128_load(w5 + j)));
      v128_t f = wasm_f32x4_add(wasm_f32x4_mul(x6, wasm_v128_load(w6 + j)), wasm_f32x4_mul(x7, wasm_v128_load(w7 + j)));
      wasm_v128_store(y + j, wasm_f32x4_add(wasm_v128_load(y + j), wasm_f32x4_add(wasm_f32x4_add(a, b), wasm_f32x4_add(e, f))));
    }
    for (; j < out; j++)
      y[j] += ((x[i0] * w0[j] + x[i0 + 1] * w1[j]) + (x[i0 + 2] * w2[j] + x[i0 + 3] * w3[j])) +
              ((x[i0 + 4] * w4[j] + x[i0 + 5] * w5[j]) + (x[i0 + 6] * w6[j] + x[i0 + 7] * w7[j]));
  }
  for (; i0 < in; i0++) {
    const float* c = w + (usize)i0 * out;
    const v128_t xv = wasm_f32x4_splat(x[i0]);
    int j = 0;
    for (; j + 4 <= out; j += 4) wasm_v128_store(y + j, wasm_f32x4_add(wasm_v128_load(y + j), wasm_f32x4_mul(xv, wasm_v128_load(c + j))));
    for (; j < out; j++) y[j] += x[i0] * c[j];
  }
}

// y[4, 8 columns at j] += x[4 rows, k0…k1) · w[k0…k1, j…j+8]: a register tile (8 accumulators), so each weight
// vector loaded serves four rows.
static void tile4x8(const float* x, const float* w, float* y, int in, int out, int j, int k0, int k1) {
  const float *x0 = x, *x1 = x + in, *x2 = x + 2 * in, *x3 = x + 3 * in;
  v128_t a0 = wasm_f32x4_splat(0.0f), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  const float* c = w + (usize)k0 * out + j;
  for (int k = k0; k < k1; k++, c += out) {
    const v128_t lo = wasm_v128_load(c), hi = wasm_v128_load(c + 4);
    v128_t s = wasm_f32x4_splat(x0[k]);
    a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(s, lo));
    b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(s, hi));
    s = wasm_f32x4_splat(x1[k]);
    a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(s, lo));
    b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(s, hi));
    s = wasm_f32x4_splat(x2[k]);
    a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(s, lo));
    b2 = wasm_f32x4_add(b2, wasm_f32x4_mul(s, hi));
    s = wasm_f32x4_splat(x3[k]);
    a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(s, lo));
    b3 = wasm_f32x4_add(b3, wasm_f32x4_mul(s, hi));
  }
  float* y0 = y + j;
  wasm_v128_store(y0, wasm_f32x4_add(wasm_v128_load(y0), a0));
  wasm_v128_store(y0 + 4, wasm_f32x4_add(wasm_v128_load(y0 + 4), b0));
  y0 += out;
  wasm_v128_store(y0, wasm_f32x4_add(wasm_v128_load(y0), a1));
  wasm_v128_store(y0 + 4, wasm_f32x4_add(wasm_v128_load(y0 + 4), b1));
  y0 += out;
  wasm_v128_store(y0, wasm_f32x4_add(wasm_v128_load(y0), a2));
  wasm_v128_store(y0 + 4, wasm_f32x4_add(wasm_v128_load(y0 + 4), b2));
  y0 += out;
  wasm_v128_store(y0, wasm_f32x4_add(wasm_v128_load(y0), a3));
  wasm_v128_store(y0 + 4, wasm_f32x4_add(wasm_v128_load(y0 + 4), b3));
}

// y[m, out] (+)= x[m, in] · w[in, out]; accumulate != 0 adds to y (a residual), else y is overwritten. Rows in
// groups of four by register tiles (prefill, beams), the rest (a decode step) by full-width row sweeps.
EXPORT(linear)
void linear(const float* x, const float* w, float* y, int m, int in, int out, int accumulate) {
  if (!accumulate)
    for (int i = 0; i < m * out; i++) y[i] = 0.0f;
  const int groups = m / 4, out8 = out & ~7;
  // blocks of 64 inner rows (a strip then spans 64 pages at most), column strips of 8 inside them, row groups
  // innermost: a strip of w (64 × 8 floats) stays in L1 while every group of four rows passes over it
  for (int k0 = 0; k0 < in && groups > 0; k0 += 64) {
    const int k1 = imin(k0 + 64, in);
    for (int j = 0; j < out8; j += 8)
      for (int g = 0; g < groups; g++) tile4x8(x + (usize)g * 4 * in, w, y + (usize)g * 4 * out, in, out, j, k0, k1);
  }
  for (int t = 0; t < groups * 4 && out8 < out; t++)
    for (int k = 0; k < in; k++) {
      const float xv = x[(usize)t * in + k];
      const float* c = w + (usize)k * out;
      for (int j = out8; j < out; j++) y[(usize)t * out + j] += xv * c[j];
    }
  int t = groups * 4;
  for (; t < m; t++) axpy_rows(x + (usize)t * in, w, y + (usize)t * out, in, out);
}

// ---- Quantized weights (GGUF layouts, rows [out] of blocks of 32 along in) ---------------------------------------
// Q8_0: per block an fp16 scale d and 32 int8 q: w = d·q (34 bytes). Q4_0: d and 16 bytes of nibbles, the low nibbles
// holding values 0…15 and the high ones 16…31, w = d·(nibble − 8) (18 bytes).
// The input rows are quantized to int16 per block of 32 (scale s = max|x| / 32767, relative error ≤ 1.5e-5), so a
// block's dot product is integer (i32x4.dot_i16x8_s: no overflow, |q·x| ≤ 127·32767·32 < 2³¹) times d·s in float.
// Q4_K: super-blocks of 256 (144 bytes, see the Q4_K section below).
// FMT_F32: float32 [in, out] (kvt's column layout); FMT_F32_ROWS: float32 rows [out, in] in blocks of 16 (64 bytes).
enum { FMT_F32 = 0, FMT_Q8_0 = 1, FMT_Q4_0 = 2, FMT_F16 = 3, FMT_F32_ROWS = 4, FMT_Q4_K = 5 };
// A quantized weight's format code may carry FMT_GROUP4: its rows are in groups of four whose blocks interleave
// (block b of rows 4g…4g+3 side by side; the last out % 4 rows one after another), weight-formats.ts's RowGroup 4.
enum { FMT_GROUP4 = 16, FMT_MASK = 15 };

// fp16 → fp32, exact (subnormals included): the bits moved into place, scaled by 2^112 for the exponent bias.
static inline float half_to_float(unsigned short h) {
  const unsigned int magnitude = (unsigned int)(h & 0x7fff) << 13;
  float f = __builtin_bit_cast(float, magnitude) * 5.192296858534828e+33f; // 2^112
  if ((h & 0x7c00) == 0x7c00) f = __builtin_bit_cast(float, magnitude | 0x7f800000u); // inf, nan
  return (h & 0x8000) ? -f : f;
}

// xq[t, in] int16, xs[t, in/32] scales and xsum[t, in/32] (Σ xq per block: Q4_K's mins) for m rows of x[t, in]
// (in a multiple of 32).
static void quantize_i16(const float* x, int m, int in, short* xq, float* xs, int* xsum) {
  const int nb = in / 32;
  for (int t = 0; t < m; t++)
    for (int b = 0; b < nb; b++) {
      const float* v = x + (usize)t * in + b * 32;
      v128_t mx = wasm_f32x4_splat(0.0f);
      for (int i = 0; i < 32; i += 4) mx = wasm_f32x4_max(mx, wasm_f32x4_abs(wasm_v128_load(v + i)));
      float amax = wasm_f32x4_extract_lane(mx, 0);
      for (int k = 1; k < 4; k++) {
        const float lane = k == 1 ? wasm_f32x4_extract_lane(mx, 1) : k == 2 ? wasm_f32x4_extract_lane(mx, 2) : wasm_f32x4_extract_lane(mx, 3);
        if (lane > amax) amax = lane;
      }
      const float s = amax / 32767.0f;
      const float inv = amax > 0.0f ? 32767.0f / amax : 0.0f;
      xs[(usize)t * nb + b] = s;
      short* q = xq + (usize)t * in + b * 32;
      const v128_t k = wasm_f32x4_splat(inv);
      v128_t sum = wasm_i32x4_splat(0);
      for (int i = 0; i < 32; i += 8) {
        const v128_t lo = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(v + i), k)));
        const v128_t hi = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(v + i + 4), k)));
        wasm_v128_store(q + i, wasm_i16x8_narrow_i32x4(lo, hi));
        sum = wasm_i32x4_add(sum, wasm_i32x4_add(lo, hi));
      }
      xsum[(usize)t * nb + b] = wasm_i32x4_extract_lane(sum, 0) + wasm_i32x4_extract_lane(sum, 1) + wasm_i32x4_extract_lane(sum, 2) + wasm_i32x4_extract_lane(sum, 3);
    }
}

#define INLINE static inline __attribute__((always_inline))

// A block's 32 weights as four i16x8 (values 0…7, 8…15, 16…23, 24…31), for Q8_0 or Q4_0. Called with a constant
// fmt, so each format gets its own loop without a branch.
INLINE void load_block(int fmt, const unsigned char* blk, v128_t* w0, v128_t* w1, v128_t* w2, v128_t* w3) {
  if (fmt == FMT_Q8_0) {
    const v128_t a = wasm_v128_load(blk + 2), b = wasm_v128_load(blk + 18);
    *w0 = wasm_i16x8_extend_low_i8x16(a);
    *w1 = wasm_i16x8_extend_high_i8x16(a);
    *w2 = wasm_i16x8_extend_low_i8x16(b);
    *w3 = wasm_i16x8_extend_high_i8x16(b);
  } else {
    // Q4_0: byte i holds value i in its low nibble and value i + 16 in its high nibble, both offset by 8
    const v128_t p = wasm_v128_load(blk + 2), eight = wasm_i8x16_splat(8);
    const v128_t lo = wasm_i8x16_sub(wasm_v128_and(p, wasm_i8x16_splat(0x0f)), eight);
    const v128_t hi = wasm_i8x16_sub(wasm_u8x16_shr(p, 4), eight);
    *w0 = wasm_i16x8_extend_low_i8x16(lo);
    *w1 = wasm_i16x8_extend_high_i8x16(lo);
    *w2 = wasm_i16x8_extend_low_i8x16(hi);
    *w3 = wasm_i16x8_extend_high_i8x16(hi);
  }
}

INLINE float block_scale(const unsigned char* blk) {
  return half_to_float((unsigned short)(blk[0] | (blk[1] << 8)));
}

// Σ over a block of w·x (x: the block's 32 int16 inputs as four i16x8), as an i32x4 whose lanes sum to it.
INLINE v128_t block_dot(v128_t w0, v128_t w1, v128_t w2, v128_t w3, v128_t x0, v128_t x1, v128_t x2, v128_t x3) {
  const v128_t d01 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(w0, x0), wasm_i32x4_dot_i16x8(w1, x1));
  const v128_t d23 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(w2, x2), wasm_i32x4_dot_i16x8(w3, x3));
  return wasm_i32x4_add(d01, d23);
}

// acc + dot · scale, in float (the block's integer dot product is exact).
INLINE v128_t scaled(v128_t acc, v128_t dot, float scale) {
  return wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot), wasm_f32x4_splat(scale)));
}

INLINE v128_t dot_block(int fmt, const unsigned char* blk, const short* xq) {
  v128_t w0, w1, w2, w3;
  load_block(fmt, blk, &w0, &w1, &w2, &w3);
  return block_dot(w0, w1, w2, w3, wasm_v128_load(xq), wasm_v128_load(xq + 8), wasm_v128_load(xq + 16), wasm_v128_load(xq + 24));
}

static inline void store_out(float* y, float v, int accumulate) {
  *y = accumulate ? *y + v : v;
}

// Four finite fp16 scales (the first two bytes of blocks at r0…r3 + at) as an f32x4, exactly (subnormals too): each
// half lands in the top of its lane, an arithmetic shift by 3 puts its exponent and mantissa where float32's are
// (bits 28…30, copies of the sign, are cleared), so the bits read as the value × 2^-112. Models reject quantized
// weights whose scales hold inf or NaN at load (linear-weights.ts).
INLINE v128_t block_scales4(const unsigned char* r0, const unsigned char* r1, const unsigned char* r2, const unsigned char* r3, usize at) {
  v128_t h = wasm_i32x4_splat(0);
  h = wasm_v128_load16_lane(r0 + at, h, 1);
  h = wasm_v128_load16_lane(r1 + at, h, 3);
  h = wasm_v128_load16_lane(r2 + at, h, 5);
  h = wasm_v128_load16_lane(r3 + at, h, 7);
  return wasm_f32x4_mul(wasm_v128_and(wasm_i32x4_shr(h, 3), wasm_i32x4_splat((int)0x8fffffff)), wasm_f32x4_splat(5.192296858534828e+33f)); // × 2^112
}

// [Σ lanes of a, Σ b, Σ c, Σ d] of four i32x4.
INLINE v128_t lane_sums4(v128_t a, v128_t b, v128_t c, v128_t d) {
  const v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  const v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// Row o of a weight [out, in] of nb blocks per row: its first block, and the bytes from one block to the next.
INLINE const unsigned char* row_start(const unsigned char* w, int o, int out, int nb, int bytes, int grouped, usize* step) {
  const int full = grouped ? out & ~3 : 0;
  if (o < full) {
    *step = (usize)4 * bytes;
    return w + (usize)(o & ~3) * nb * bytes + (usize)(o & 3) * bytes;
  }
  *step = bytes;
  return w + (usize)o * nb * bytes;
}

// y[o] (+)= Σ_in x · W[o, ·] for one input row (a decode step). Grouped rows: four at a time, reading memory strictly
// in order; each input block is loaded once for the four, their integer dot products are summed across lanes into
// one i32x4 (a lane per row), and one convert, scale and add per block serves all four rows. Other rows one at a time.
INLINE void matvec_quantized(int fmt, int grouped, const short* xq, const float* xs, const unsigned char* w, float* y, int in, int out,
                             int accumulate) {
  const int nb = in / 32, bytes = fmt == FMT_Q8_0 ? 34 : 18;
  const int full = grouped ? out & ~3 : 0;
  for (int o = 0; o < full; o += 4) {
    const unsigned char *r0 = w + (usize)o * nb * bytes, *r1 = r0 + bytes, *r2 = r1 + bytes, *r3 = r2 + bytes;
    v128_t acc = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < nb; b++) {
      const short* q = xq + b * 32;
      const v128_t x0 = wasm_v128_load(q), x1 = wasm_v128_load(q + 8), x2 = wasm_v128_load(q + 16), x3 = wasm_v128_load(q + 24);
      const usize at = (usize)b * 4 * bytes;
      v128_t w0, w1, w2, w3;
      load_block(fmt, r0 + at, &w0, &w1, &w2, &w3);
      const v128_t d0 = block_dot(w0, w1, w2, w3, x0, x1, x2, x3);
      load_block(fmt, r1 + at, &w0, &w1, &w2, &w3);
      const v128_t d1 = block_dot(w0, w1, w2, w3, x0, x1, x2, x3);
      load_block(fmt, r2 + at, &w0, &w1, &w2, &w3);
      const v128_t d2 = block_dot(w0, w1, w2, w3, x0, x1, x2, x3);
      load_block(fmt, r3 + at, &w0, &w1, &w2, &w3);
      const v128_t d3 = block_dot(w0, w1, w2, w3, x0, x1, x2, x3);
      const v128_t scale = wasm_f32x4_mul(block_scales4(r0, r1, r2, r3, at), wasm_f32x4_splat(xs[b]));
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(lane_sums4(d0, d1, d2, d3)), scale));
    }
    if (accumulate) acc = wasm_f32x4_add(acc, wasm_v128_load(y + o));
    wasm_v128_store(y + o, acc);
  }
  for (int o = full; o < out; o++) {
    const unsigned char* row = w + (usize)o * nb * bytes;
    v128_t a = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < nb; b++) a = scaled(a, dot_block(fmt, row + (usize)b * bytes, xq + b * 32), block_scale(row + (usize)b * bytes) * xs[b]);
    store_out(y + o, hsum(a), accumulate);
  }
}

// y[t, o] (+)= Σ_in x[t, ·] · W[o, ·] for m input rows (prefill, beams): each weight block is read and widened once
// and serves four input rows at a time.
INLINE void matmul_quantized(int fmt, int grouped, const short* xq, const float* xs, const unsigned char* w, float* y, int m, int in,
                             int out, int accumulate) {
  const int nb = in / 32, bytes = fmt == FMT_Q8_0 ? 34 : 18;
  for (int o = 0; o < out; o++) {
    usize step;
    const unsigned char* row = row_start(w, o, out, nb, bytes, grouped, &step);
    int t = 0;
    for (; t + 4 <= m; t += 4) {
      v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
      const short *q0 = xq + (usize)t * in, *q1 = q0 + in, *q2 = q1 + in, *q3 = q2 + in;
      const float *s0 = xs + (usize)t * nb, *s1 = s0 + nb, *s2 = s1 + nb, *s3 = s2 + nb;
      for (int b = 0; b < nb; b++) {
        const unsigned char* blk = row + (usize)b * step;
        const float d = block_scale(blk);
        v128_t w0, w1, w2, w3;
        load_block(fmt, blk, &w0, &w1, &w2, &w3);
        const int k = b * 32;
        a0 = scaled(a0, block_dot(w0, w1, w2, w3, wasm_v128_load(q0 + k), wasm_v128_load(q0 + k + 8), wasm_v128_load(q0 + k + 16), wasm_v128_load(q0 + k + 24)), d * s0[b]);
        a1 = scaled(a1, block_dot(w0, w1, w2, w3, wasm_v128_load(q1 + k), wasm_v128_load(q1 + k + 8), wasm_v128_load(q1 + k + 16), wasm_v128_load(q1 + k + 24)), d * s1[b]);
        a2 = scaled(a2, block_dot(w0, w1, w2, w3, wasm_v128_load(q2 + k), wasm_v128_load(q2 + k + 8), wasm_v128_load(q2 + k + 16), wasm_v128_load(q2 + k + 24)), d * s2[b]);
        a3 = scaled(a3, block_dot(w0, w1, w2, w3, wasm_v128_load(q3 + k), wasm_v128_load(q3 + k + 8), wasm_v128_load(q3 + k + 16), wasm_v128_load(q3 + k + 24)), d * s3[b]);
      }
      store_out(y + (usize)t * out + o, hsum(a0), accumulate);
      store_out(y + (usize)(t + 1) * out + o, hsum(a1), accumulate);
      store_out(y + (usize)(t + 2) * out + o, hsum(a2), accumulate);
      store_out(y + (usize)(t + 3) * out + o, hsum(a3), accumulate);
    }
    for (; t < m; t++) {
      v128_t a = wasm_f32x4_splat(0.0f);
      const short* q = xq + (usize)t * in;
      const float* sc = xs + (usize)t * nb;
      for (int b = 0; b < nb; b++) a = scaled(a, dot_block(fmt, row + (usize)b * step, q + b * 32), block_scale(row + (usize)b * step) * sc[b]);
      store_out(y + (usize)t * out + o, hsum(a), accumulate);
    }
  }
}

// ---- Q4_K (GGUF): super-blocks of 256 values in 144 bytes: fp16 d and dmin, 12 bytes packing eight 6-bit scales sc
// and eight 6-bit mins m (one each per sub-block of 32), then 128 bytes of nibbles: bytes 32k…32k+31 hold sub-block 2k
// in their low nibbles and 2k+1 in their high ones. w = d·sc·q − dmin·m, so against the int16 input of a sub-block
// (xq, its scale xs, xsum = Σ xq): Σ w·x = xs·(d·sc·Σ q·xq − dmin·m·xsum).

// Sub-block j's 6-bit scale and min from the 12 packed bytes (llama.cpp's get_scale_min_k4).
INLINE void q4k_scale_min(const unsigned char* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Σ over one super-block (blk) of w·x for one input row: xq [256], xs [8] and xsum [8] of that stretch of the row.
INLINE float q4k_block_dot(const unsigned char* blk, const short* xq, const float* xs, const int* xsum) {
  const float d = block_scale(blk), dmin = block_scale(blk + 2);
  const unsigned char* q = blk + 16;
  const v128_t low = wasm_i8x16_splat(0x0f);
  // nibbles are 0…15: widened as signed bytes (the same values; V8 lowers the signed widening in fewer instructions)
  v128_t acc = wasm_f32x4_splat(0.0f);
  float mins = 0.0f;
  for (int k = 0; k < 4; k++, q += 32) {
    const v128_t a = wasm_v128_load(q), b = wasm_v128_load(q + 16);
    const v128_t la = wasm_v128_and(a, low), lb = wasm_v128_and(b, low), ha = wasm_u8x16_shr(a, 4), hb = wasm_u8x16_shr(b, 4);
    const short *x0 = xq + 64 * k, *x1 = x0 + 32;
    const v128_t d0 = block_dot(wasm_i16x8_extend_low_i8x16(la), wasm_i16x8_extend_high_i8x16(la), wasm_i16x8_extend_low_i8x16(lb),
                                wasm_i16x8_extend_high_i8x16(lb), wasm_v128_load(x0), wasm_v128_load(x0 + 8), wasm_v128_load(x0 + 16), wasm_v128_load(x0 + 24));
    const v128_t d1 = block_dot(wasm_i16x8_extend_low_i8x16(ha), wasm_i16x8_extend_high_i8x16(ha), wasm_i16x8_extend_low_i8x16(hb),
                                wasm_i16x8_extend_high_i8x16(hb), wasm_v128_load(x1), wasm_v128_load(x1 + 8), wasm_v128_load(x1 + 16), wasm_v128_load(x1 + 24));
    int sc0, m0, sc1, m1;
    q4k_scale_min(blk + 4, 2 * k, &sc0, &m0);
    q4k_scale_min(blk + 4, 2 * k + 1, &sc1, &m1);
    acc = scaled(acc, d0, d * (float)sc0 * xs[2 * k]);
    acc = scaled(acc, d1, d * (float)sc1 * xs[2 * k + 1]);
    mins += dmin * (float)m0 * xs[2 * k] * (float)xsum[2 * k] + dmin * (float)m1 * xs[2 * k + 1] * (float)xsum[2 * k + 1];
  }
  return hsum(acc) - mins;
}

// y[t, o] (+)= Σ_in x[t, ·] · W[o, ·] for Q4_K rows W [out, in] (maybe in row groups of four), x already quantized:
// one row at a time. (Four rows at a time with their dot products summed across lanes, as Q8_0 and Q4_0 do, measured
// 1.6–1.8× slower here: 440–480 µs against 262–276 µs for a 768 × 4096 matrix held in L2.)
static void linear_q4k(int grouped, const short* xq, const float* xs, const int* xsum, const unsigned char* w, float* y, int m, int in,
                       int out, int accumulate) {
  const int nb = in / 256, sub = in / 32;
  for (int o = 0; o < out; o++) {
    usize step;
    const unsigned char* row = row_start(w, o, out, nb, 144, grouped, &step);
    for (int t = 0; t < m; t++) {
      const short* q = xq + (usize)t * in;
      float sum = 0.0f;
      for (int b = 0; b < nb; b++) sum += q4k_block_dot(row + (usize)b * step, q + b * 256, xs + (usize)t * sub + b * 8, xsum + (usize)t * sub + b * 8);
      store_out(y + (usize)t * out + o, sum, accumulate);
    }
  }
}

// The 256 values of a Q4_K super-block: d·sc·q − dmin·m (each product rounded to float, as the reference dequantizes).
static void q4k_dequantize(const unsigned char* blk, float* out) {
  const float d = block_scale(blk), dmin = block_scale(blk + 2);
  for (int j = 0; j < 8; j++) {
    int sc, m;
    q4k_scale_min(blk + 4, j, &sc, &m);
    const float step = d * (float)sc, offset = dmin * (float)m;
    const unsigned char* q = blk + 16 + 32 * (j >> 1);
    for (int k = 0; k < 32; k++) out[32 * j + k] = step * (float)((j & 1) ? q[k] >> 4 : q[k] & 15) - offset;
  }
}

// y[t, o] (+)= Σ_in x[t, ·] · W[o, ·] for quantized rows W [out, in] (format code: FMT_Q8_0 or FMT_Q4_0, maybe with
// FMT_GROUP4), x already quantized (xq, xs).
// Each format gets its own specialized loops (fmt is a constant in each call below).
static void linear_quantized(int code, const short* xq, const float* xs, const unsigned char* w, float* y, int m, int in, int out,
                             int accumulate) {
  const int fmt = code & FMT_MASK, grouped = (code & FMT_GROUP4) != 0;
  if (m == 1) {
    if (fmt == FMT_Q8_0) matvec_quantized(FMT_Q8_0, grouped, xq, xs, w, y, in, out, accumulate);
    else matvec_quantized(FMT_Q4_0, grouped, xq, xs, w, y, in, out, accumulate);
  } else if (fmt == FMT_Q8_0) {
    matmul_quantized(FMT_Q8_0, grouped, xq, xs, w, y, m, in, out, accumulate);
  } else {
    matmul_quantized(FMT_Q4_0, grouped, xq, xs, w, y, m, in, out, accumulate);
  }
}

// acc + x[0…15] · w[0…15] lane-wise (four products summed pairwise: short dependency chains).
INLINE v128_t f32_dot16(v128_t acc, const float* w, v128_t x0, v128_t x1, v128_t x2, v128_t x3) {
  const v128_t s = wasm_f32x4_add(wasm_f32x4_mul(x0, wasm_v128_load(w)), wasm_f32x4_mul(x1, wasm_v128_load(w + 4)));
  const v128_t t = wasm_f32x4_add(wasm_f32x4_mul(x2, wasm_v128_load(w + 8)), wasm_f32x4_mul(x3, wasm_v128_load(w + 12)));
  return wasm_f32x4_add(acc, wasm_f32x4_add(s, t));
}

// y[o] (+)= x · W[o, ·] for float32 rows W [out, in] in blocks of 16 (64 bytes, a cache line; row groups of four when
// grouped), one input row (a decode step). Grouped rows four at a time: the weight is read strictly in order, one
// stream (measured 28 GB/s on the 110M shape's matrices, against 19 for the column sweep of `linear` and 10–17 for
// blocks of 32 floats).
static void matvec_f32_rows(const float* x, const float* w, float* y, int in, int out, int accumulate, int grouped) {
  const int full = grouped ? out & ~3 : 0;
  for (int o = 0; o < full; o += 4) {
    const float* p = w + (usize)o * in; // block b of row r at p + (4b + r)·16
    v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
    for (int i = 0; i < in; i += 16, p += 64) {
      const v128_t x0 = wasm_v128_load(x + i), x1 = wasm_v128_load(x + i + 4), x2 = wasm_v128_load(x + i + 8), x3 = wasm_v128_load(x + i + 12);
      a0 = f32_dot16(a0, p, x0, x1, x2, x3);
      a1 = f32_dot16(a1, p + 16, x0, x1, x2, x3);
      a2 = f32_dot16(a2, p + 32, x0, x1, x2, x3);
      a3 = f32_dot16(a3, p + 48, x0, x1, x2, x3);
    }
    store_out(y + o, hsum(a0), accumulate);
    store_out(y + o + 1, hsum(a1), accumulate);
    store_out(y + o + 2, hsum(a2), accumulate);
    store_out(y + o + 3, hsum(a3), accumulate);
  }
  for (int o = full; o < out; o++) {
    const float* row = w + (usize)o * in;
    v128_t a = wasm_f32x4_splat(0.0f);
    for (int i = 0; i < in; i += 16) a = f32_dot16(a, row + i, wasm_v128_load(x + i), wasm_v128_load(x + i + 4), wasm_v128_load(x + i + 8), wasm_v128_load(x + i + 12));
    store_out(y + o, hsum(a), accumulate);
  }
}

// y[t, o] (+)= Σ_in x[t, ·] · W[o, ·] for float32 rows (see matvec_f32_rows) and m input rows (prefill, beams): a
// register tile of four weight rows × two input rows, each weight vector loaded once for both input rows, the group's
// rows (4 × in floats) staying in L1 while the input rows pass.
static void matmul_f32_rows(const float* x, const float* w, float* y, int m, int in, int out, int accumulate, int grouped) {
  const int full = grouped ? out & ~3 : 0;
  for (int o = 0; o < full; o += 4) {
    const float* g = w + (usize)o * in;
    int t = 0;
    for (; t + 2 <= m; t += 2) {
      const float *x0 = x + (usize)t * in, *x1 = x0 + in;
      v128_t a00 = wasm_f32x4_splat(0.0f), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
      const float* p = g;
      for (int i = 0; i < in; i += 16, p += 64)
        for (int k = 0; k < 16; k += 4) {
          const v128_t u = wasm_v128_load(x0 + i + k), v = wasm_v128_load(x1 + i + k);
          v128_t c = wasm_v128_load(p + k);
          a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(u, c));
          a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(v, c));
          c = wasm_v128_load(p + 16 + k);
          a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(u, c));
          a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(v, c));
          c = wasm_v128_load(p + 32 + k);
          a02 = wasm_f32x4_add(a02, wasm_f32x4_mul(u, c));
          a12 = wasm_f32x4_add(a12, wasm_f32x4_mul(v, c));
          c = wasm_v128_load(p + 48 + k);
          a03 = wasm_f32x4_add(a03, wasm_f32x4_mul(u, c));
          a13 = wasm_f32x4_add(a13, wasm_f32x4_mul(v, c));
        }
      float* y0 = y + (usize)t * out + o;
      float* y1 = y0 + out;
      store_out(y0, hsum(a00), accumulate), store_out(y0 + 1, hsum(a01), accumulate);
      store_out(y0 + 2, hsum(a02), accumulate), store_out(y0 + 3, hsum(a03), accumulate);
      store_out(y1, hsum(a10), accumulate), store_out(y1 + 1, hsum(a11), accumulate);
      store_out(y1 + 2, hsum(a12), accumulate), store_out(y1 + 3, hsum(a13), accumulate);
    }
    if (t < m) matvec_f32_rows(x + (usize)t * in, g, y + (usize)t * out + o, in, 4, accumulate, 1);
  }
  for (int t = 0; t < m && full < out; t++) matvec_f32_rows(x + (usize)t * in, w + (usize)full * in, y + (usize)t * out + full, in, out - full, accumulate, 0);
}

// Eight finite fp16 values (an i16x8) as two f32x4, exactly (subnormals too), in four operations each: sign-extended
// and shifted, the half's sign lands in bit 31 (bits 28…30, copies of it, are cleared) and its exponent and mantissa
// where float32's are, so the bits read as the value × 2^-112. Models reject fp16 weights holding inf or NaN at load.
INLINE void halves8(v128_t h, v128_t* lo, v128_t* hi) {
  const v128_t keep = wasm_i32x4_splat((int)0x8fffffff), scale = wasm_f32x4_splat(5.192296858534828e+33f); // 2^112
  *lo = wasm_f32x4_mul(wasm_v128_and(wasm_i32x4_shl(wasm_i32x4_extend_low_i16x8(h), 13), keep), scale);
  *hi = wasm_f32x4_mul(wasm_v128_and(wasm_i32x4_shl(wasm_i32x4_extend_high_i16x8(h), 13), keep), scale);
}

// acc + Σ over a block of 32 fp16 weights (64 bytes at blk) × x[0…31], lane-wise.
INLINE v128_t f16_block(v128_t acc, const unsigned char* blk, const float* x) {
  for (int i = 0; i < 32; i += 8) {
    v128_t lo, hi;
    halves8(wasm_v128_load(blk + 2 * i), &lo, &hi);
    acc = wasm_f32x4_add(acc, wasm_f32x4_add(wasm_f32x4_mul(lo, wasm_v128_load(x + i)), wasm_f32x4_mul(hi, wasm_v128_load(x + i + 4))));
  }
  return acc;
}

// Rows o…o+3 of fp16 rows in a group of four (nb blocks of 32 halves, interleaved) as float32 rows in a group of four
// in blocks of 16 (matvec_f32_rows' layout): f[(4·k + r)·16 …] for block k of 16 of row r.
static void widen_f16_group(const unsigned char* g, int nb, float* f) {
  for (int b = 0; b < nb; b++)
    for (int r = 0; r < 4; r++) {
      const unsigned char* blk = g + (usize)(4 * b + r) * 64;
      float* lo = f + (usize)(8 * b + r) * 16;     // values 0…15 of the block: block 2b of 16
      float* hi = f + (usize)(8 * b + 4 + r) * 16; // values 16…31: block 2b + 1
      for (int i = 0; i < 32; i += 8) {
        v128_t a, c;
        halves8(wasm_v128_load(blk + 2 * i), &a, &c);
        float* dst = i < 16 ? lo + i : hi + i - 16;
        wasm_v128_store(dst, a);
        wasm_v128_store(dst + 4, c);
      }
    }
}

// y[t, o] (+)= Σ_in x[t, ·] · W[o, ·] for fp16 rows W [out, in] (blocks of 32 halves, 64 bytes; row groups of four
// when grouped), x float32: no input quantization. A decode step widens in registers, four grouped rows at a time (one
// stream, as matvec_f32_rows); more input rows widen each group of four rows once into `scratch` (4·in floats) and
// multiply it as float32 rows. Other rows one at a time.
static void linear_f16(const float* x, const unsigned char* w, float* y, int m, int in, int out, int accumulate, int grouped, float* scratch) {
  const int nb = in / 32, full = grouped ? out & ~3 : 0;
  for (int o = 0; o < full; o += 4) {
    const unsigned char* g = w + (usize)o * nb * 64;
    if (m > 1) {
      widen_f16_group(g, nb, scratch);
      for (int t = 0; t < m; t++) {
        matvec_f32_rows(x + (usize)t * in, scratch, y + (usize)t * out + o, in, 4, accumulate, 1);
      }
      continue;
    }
    v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
    const unsigned char* p = g;
    for (int b = 0; b < nb; b++, p += 256) {
      const float* xb = x + b * 32;
      a0 = f16_block(a0, p, xb);
      a1 = f16_block(a1, p + 64, xb);
      a2 = f16_block(a2, p + 128, xb);
      a3 = f16_block(a3, p + 192, xb);
    }
    store_out(y + o, hsum(a0), accumulate);
    store_out(y + o + 1, hsum(a1), accumulate);
    store_out(y + o + 2, hsum(a2), accumulate);
    store_out(y + o + 3, hsum(a3), accumulate);
  }
  for (int o = full; o < out; o++) {
    const unsigned char* row = w + (usize)o * nb * 64;
    for (int t = 0; t < m; t++) {
      const float* xt = x + (usize)t * in;
      v128_t a = wasm_f32x4_splat(0.0f);
      for (int b = 0; b < nb; b++) a = f16_block(a, row + (usize)b * 64, xt + b * 32);
      store_out(y + (usize)t * out + o, hsum(a), accumulate);
    }
  }
}

// y[m, out] (+)= x[m, in] · W for a weight of format fmt: fp32 [in, out] (kvt's column layout), or rows [out, in]
// (float32, fp16 or quantized).
// scratch: int16 [m·in] and floats [m·in/32] for the quantized input.
static void linear_any(int fmt, const float* x, const void* w, float* y, int m, int in, int out, int accumulate, void* scratch) {
  if (fmt == FMT_F32) {
    linear(x, (const float*)w, y, m, in, out, accumulate);
    return;
  }
  if ((fmt & FMT_MASK) == FMT_F32_ROWS) {
    if (m == 1) matvec_f32_rows(x, (const float*)w, y, in, out, accumulate, (fmt & FMT_GROUP4) != 0);
    else matmul_f32_rows(x, (const float*)w, y, m, in, out, accumulate, (fmt & FMT_GROUP4) != 0);
    return;
  }
  if ((fmt & FMT_MASK) == FMT_F16) {
    linear_f16(x, (const unsigned char*)w, y, m, in, out, accumulate, (fmt & FMT_GROUP4) != 0, (float*)scratch);
    return;
  }
  short* xq = (short*)scratch;
  float* xs = (float*)(xq + (usize)m * in);
  int* xsum = (int*)(xs + (usize)m * (in / 32));
  quantize_i16(x, m, in, xq, xs, xsum);
  if ((fmt & FMT_MASK) == FMT_Q4_K) linear_q4k((fmt & FMT_GROUP4) != 0, xq, xs, xsum, (const unsigned char*)w, y, m, in, out, accumulate);
  else linear_quantized(fmt, xq, xs, (const unsigned char*)w, y, m, in, out, accumulate);
}

// y[m, out] (+)= x[m, in] · W (see linear_any); the KvtLinear kernel for quantized weights.
EXPORT(linear_q)
void linear_q(int fmt, const float* x, const unsigned char* w, float* y, int m, int in, int out, int accumulate, void* scratch) {
  linear_any(fmt, x, w, y, m, in, out, accumulate, scratch);
}

// Rows `ids[t]` of a quantized, fp16 or float32-rows table [rows, dim] (format code, maybe FMT_GROUP4) as floats: out[t, dim] (an embedding
// lookup).
EXPORT(dequantize_rows)
void dequantize_rows(int code, const unsigned char* table, const int* ids, int n, int rows, int dim, float* out) {
  const int fmt = code & FMT_MASK, nb = dim / (fmt == FMT_F32_ROWS ? 16 : fmt == FMT_Q4_K ? 256 : 32);
  const int bytes = fmt == FMT_Q8_0 ? 34 : fmt == FMT_F16 || fmt == FMT_F32_ROWS ? 64 : fmt == FMT_Q4_K ? 144 : 18;
  for (int t = 0; t < n; t++) {
    usize step;
    const unsigned char* row = row_start(table, ids[t], rows, nb, bytes, (code & FMT_GROUP4) != 0, &step);
    for (int b = 0; b < nb; b++) {
      const unsigned char* blk = row + (usize)b * step;
      if (fmt == FMT_Q4_K) {
        q4k_dequantize(blk, out + (usize)t * dim + b * 256);
        continue;
      }
      if (fmt == FMT_F32_ROWS) {
        const float* f = (const float*)blk;
        for (int i = 0; i < 16; i++) out[(usize)t * dim + b * 16 + i] = f[i];
        continue;
      }
      const float d = half_to_float((unsigned short)(blk[0] | (blk[1] << 8))); // the scale (Q8_0, Q4_0)
      float* o = out + (usize)t * dim + b * 32;
      for (int i = 0; i < 32; i++) {
        if (fmt == FMT_F16) {
          o[i] = half_to_float((unsigned short)(blk[2 * i] | (blk[2 * i + 1] << 8)));
          continue;
        }
        const int q = fmt == FMT_Q8_0 ? (int)(signed char)blk[2 + i] : (i < 16 ? (blk[2 + i] & 15) : (blk[2 + i - 16] >> 4)) - 8;
        o[i] = d * (float)q;
      }
    }
  }
}

// y[t] = x[t] · rsqrt(mean(x[t]²) + eps) · w, for t < m rows of d.
EXPORT(rms_norm)
void rms_norm(const float* x, const float* w, float* y, int m, int d, float eps) {
  for (int t = 0; t < m; t++) {
    const float* xr = x + (usize)t * d;
    float* yr = y + (usize)t * d;
    v128_t acc = wasm_f32x4_splat(0.0f);
    int i = 0;
    for (; i + 4 <= d; i += 4) {
      v128_t v = wasm_v128_load(xr + i);
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(v, v));
    }
    float ss = hsum(acc);
    for (; i < d; i++) ss += xr[i] * xr[i];
    const float r = 1.0f / __builtin_sqrtf(ss / (float)d + eps);
    for (i = 0; i < d; i++) yr[i] = (xr[i] * r) * w[i];
  }
}

static inline float dot(const float* a, const float* b, int n) {
  v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4)));
  }
  for (; i + 4 <= n; i += 4) acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  float s = hsum(wasm_f32x4_add(acc0, acc1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// ---- K/V storage: paged blocks of float32, fp16, or int8 ------------------------------------------------------------
// A block holds 2^shift positions. For a layer, a row's table gives the block's K (or V) region of that layer; head g
// is at + g·stride, holding the block's positions of hd values (4, 2 or 1 bytes each).
// An int8 cache (KV_I8) keeps two kinds of block: a row's blocks before `sealed` are int8 (each head region: the
// block's positions of hd int8 values, then one scale byte per position), the rest (the block being filled) fp16, as
// KIVI and Hugging Face's QuantizedCache keep the recent positions in higher precision. Keys are stored less an offset
// per (layer, head): the layer's first key (fp16), so the rotary models' large constant channels cost no int8 range;
// q·(k − μ) differs from q·k by the same q·μ at every position, which softmax cancels, so attention never adds it back.
// An int8 position: x = fp16(v − μ), scale = max|x| / 127 rounded up to a scale byte (below), value = round(x / scale).
enum { KV_F32 = 0, KV_F16 = 1, KV_I8 = 2 };
// The K/V format code: the type (KV_*) | shift << 8 (2^shift positions per block).
enum { KV_TYPE_MASK = 255, KV_SHIFT_BITS = 8 };

// How a layer's K/V are laid out, for the kernels that write and read them (kv-cache.ts writes it into scratch).
typedef struct {
  int format;     // KV_* | shift << 8
  int stride;     // bytes between heads' regions in a block (an int8 cache's sealed blocks)
  int sealed;     // int8 caches: blocks before this are int8, the rest fp16
  int openStride; // int8 caches: bytes between heads' regions in an fp16 block
  int keyOffsets; // int8 caches: this layer's key offsets μ, fp16 [kvHeads, hd]; 0: none
  int offsetsFrom; // ≥ 0: this write sets μ from the key of cache row 0 at new position offsetsFrom
} KvLayout;

// An int8 position's scale in one byte, an unsigned float of 5 exponent and 3 mantissa bits: the float32 whose bits
// are byte << 20 + 105 << 23, from 2^-22 to 960 (every finite fp16 / 127 fits).
enum { KV_SCALE_BIAS = 105 };
INLINE float kv_scale(unsigned char s) { return __builtin_bit_cast(float, ((unsigned int)s << 20) + ((unsigned int)KV_SCALE_BIAS << 23)); }
// Four consecutive scale bytes as float32 lanes.
INLINE v128_t kv_scale4(const unsigned char* s) {
  const v128_t b = wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(s)));
  return wasm_i32x4_add(wasm_i32x4_shl(b, 20), wasm_i32x4_splat(KV_SCALE_BIAS << 23));
}

// float32 → fp16 bits, round to nearest even (overflow to inf; subnormals exact): models/src/weights/quantize.ts's rule.
static unsigned short float_to_half(float f) {
  const unsigned int x = __builtin_bit_cast(unsigned int, f), sign = (x >> 16) & 0x8000, ax = x & 0x7fffffff;
  if (ax >= 0x7f800000) return (unsigned short)(sign | 0x7c00 | (ax > 0x7f800000 ? 0x200 : 0));
  if (ax >= 0x477ff000) return (unsigned short)(sign | 0x7c00); // ≥ 65520 rounds to inf
  if (ax < 0x38800000) { // below 2^-14: a subnormal half (or zero), |f| · 2^24 rounded to nearest even
    const float m = __builtin_nearbyintf(__builtin_bit_cast(float, ax) * 16777216.0f);
    return (unsigned short)(sign | (unsigned int)m);
  }
  unsigned int h = ((((ax >> 23) - 127 + 15)) << 10) | ((ax & 0x7fffff) >> 13);
  const unsigned int rest = ax & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
  return (unsigned short)(sign | h);
}

// Value i of a row as an int8 cache stores it before quantizing: fp16(v − μ) (halves: the row already as fp16).
INLINE float kv_input(const float* v, const unsigned short* mu, const unsigned short* halves, int i) {
  if (halves) return half_to_float(halves[i]);
  return half_to_float(float_to_half(mu ? v[i] - half_to_float(mu[i]) : v[i]));
}

// Stores one position of hd values as int8 at `slot` of a head region of an int8 block of `block` positions.
static void kv_store_i8(unsigned char* head, int slot, const float* v, const unsigned short* mu, const unsigned short* halves, int hd, int block) {
  float amax = 0.0f;
  for (int i = 0; i < hd; i++) {
    const float a = __builtin_fabsf(kv_input(v, mu, halves, i));
    if (a > amax) amax = a;
  }
  unsigned char code = 0; // amax 0: every value 0
  if (amax > 0.0f) {
    int c = (int)((__builtin_bit_cast(unsigned int, amax / 127.0f) + 0xfffffu) >> 20) - (KV_SCALE_BIAS << 3); // rounded up
    code = (unsigned char)(c < 0 ? 0 : c > 255 ? 255 : c);
  }
  const float inv = 1.0f / kv_scale(code);
  signed char* d = (signed char*)head + (usize)slot * hd;
  for (int i = 0; i < hd; i++) {
    float r = __builtin_nearbyintf(kv_input(v, mu, halves, i) * inv);
    d[i] = (signed char)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
  }
  head[(usize)block * hd + slot] = code;
}

// Stores hd values at slot `slot` (< block) of a head's region in a block of `block` positions, as `dtype` (less μ
// where given: an int8 cache's keys).
static void kv_store(unsigned char* head, int slot, const float* v, const unsigned short* mu, int hd, int block, int dtype) {
  if (dtype == KV_F32) {
    float* d = (float*)head + (usize)slot * hd;
    for (int i = 0; i < hd; i++) d[i] = v[i];
  } else if (dtype == KV_F16) {
    unsigned short* d = (unsigned short*)head + (usize)slot * hd;
    for (int i = 0; i < hd; i++) d[i] = float_to_half(mu ? v[i] - half_to_float(mu[i]) : v[i]);
  } else kv_store_i8(head, slot, v, mu, 0, hd, block);
}

// Four stored values at i of a position's row as float32 (int8: before its scale).
INLINE v128_t kv_load4(const unsigned char* row, int i, int dtype) {
  if (dtype == KV_F32) return wasm_v128_load(row + 4 * i);
  if (dtype == KV_F16) {
    // finite halves (sign-extended, shifted, bits 28…30 cleared, × 2^112; see halves8)
    const v128_t h = wasm_i32x4_extend_low_i16x8(wasm_v128_load64_zero(row + 2 * i));
    return wasm_f32x4_mul(wasm_v128_and(wasm_i32x4_shl(h, 13), wasm_i32x4_splat((int)0x8fffffff)), wasm_f32x4_splat(5.192296858534828e+33f));
  }
  return wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(wasm_i16x8_extend_low_i8x16(wasm_v128_load32_zero(row + i))));
}

// Head `head` of position j in a row's table (its block's region + head offset + slot).
INLINE const unsigned char* kv_head(const int* tab, int j, int shift, usize head) {
  return (const unsigned char*)(usize)tab[j >> shift] + head;
}

// Writes n new rows per cache row: src(r, g, t) = src + r·sr + g·sg + t·st (floats), a row of hd, goes to position
// at + t of head g of cache row r; tabs [b, nb]: each row's blocks (this layer's K or V region of each). isKey: an
// int8 cache subtracts the key offsets (and sets them first where the layout says this write does).
EXPORT(cache_write)
void cache_write(const float* src, int sr, int sg, int st, const int* tabs, int b, int n, int kvHeads, int hd, int nb, int at,
                 const KvLayout* L, int isKey) {
  const int dtype = L->format & KV_TYPE_MASK, shift = L->format >> KV_SHIFT_BITS, block = 1 << shift;
  unsigned short* mu = isKey && dtype == KV_I8 && L->keyOffsets ? (unsigned short*)(usize)L->keyOffsets : 0;
  if (mu && L->offsetsFrom >= 0)
    for (int g = 0; g < kvHeads; g++)
      for (int i = 0; i < hd; i++) mu[g * hd + i] = float_to_half(src[(usize)g * sg + (usize)L->offsetsFrom * st + i]);
  for (int r = 0; r < b; r++)
    for (int g = 0; g < kvHeads; g++)
      for (int t = 0; t < n; t++) {
        const int j = at + t;
        const float* v = src + (usize)r * sr + (usize)g * sg + (usize)t * st;
        const unsigned short* m = mu ? mu + g * hd : 0;
        if (dtype == KV_I8 && (j >> shift) >= L->sealed) // the block being filled: fp16
          kv_store((unsigned char*)kv_head(tabs + (usize)r * nb, j, shift, (usize)g * L->openStride), j & (block - 1), v, m, hd, block, KV_F16);
        else kv_store((unsigned char*)kv_head(tabs + (usize)r * nb, j, shift, (usize)g * L->stride), j & (block - 1), v, m, hd, block, dtype);
      }
}

// Seals a block of an int8 cache: its `filled` first positions in each of `regions` head regions of an fp16 block
// (src, openStride apart) become int8 in dst (stride apart), by the same rule as a direct int8 write.
EXPORT(kv_seal)
void kv_seal(const unsigned char* src, unsigned char* dst, int regions, int filled, int hd, int shift, int stride, int openStride) {
  for (int g = 0; g < regions; g++)
    for (int s = 0; s < filled; s++)
      kv_store_i8(dst + (usize)g * stride, s, 0, 0, (const unsigned short*)(src + (usize)g * openStride) + (usize)s * hd, hd, 1 << shift);
}

// e^x for four lanes: kvt_expf's operations lane-wise (the same results, bit for bit).
INLINE v128_t kvt_expf4(v128_t x) {
  const v128_t under = wasm_f32x4_lt(x, wasm_f32x4_splat(-87.33654f));
  x = wasm_f32x4_min(x, wasm_f32x4_splat(88.0f));
  const v128_t n = wasm_f32x4_floor(wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)), wasm_f32x4_splat(0.5f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t p = wasm_f32x4_splat(1.9875691500E-4f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.3981999507E-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(8.3334519073E-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(4.1665795894E-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.6666665459E-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(5.0000001201E-1f));
  const v128_t y = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, r), r), r), wasm_f32x4_splat(1.0f));
  const v128_t pow2n = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_v128_andnot(wasm_f32x4_mul(y, pow2n), under);
}

// [Σ lanes of a, Σ b, Σ c, Σ d] of four f32x4 (pairs added first: a0 + a2 + (a1 + a3)).
INLINE v128_t f32_lane_sums4(v128_t a, v128_t b, v128_t c, v128_t d) {
  const v128_t ab = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  const v128_t cd = wasm_f32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// q·K of one position (kr: its stored row), int8 scaled.
INLINE float key_score(const float* qv, const unsigned char* head, const unsigned char* kr, int slot, usize scales, int hd, int dtype) {
  if (dtype == KV_F32) return dot(qv, (const float*)kr, hd);
  v128_t acc = wasm_f32x4_splat(0.0f);
  for (int i = 0; i < hd; i += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(qv + i), kv_load4(kr, i, dtype)));
  const float s = hsum(acc);
  return dtype == KV_I8 ? s * kv_scale(head[scales + slot]) : s;
}

// Where positions go four at a time: [g0, g1), g0 the first multiple of 4 at or after start (blocks of ≥ 16 positions
// start at multiples of 4, so four such slots share a block); none where hd % 4 != 0.
INLINE int group_start(int start, int end, int hd) { return (hd & 3) == 0 ? imin((start + 3) & ~3, end) : end; }
INLINE int group_end(int g0, int end, int hd) { return (hd & 3) == 0 ? g0 + ((end - g0) & ~3) : end; }

// scores[j] = q·K[j] for j in [start, end) of storage type dtype; returns their max. kt: the row's blocks of 2^shift
// positions, headOff: the head's offset in a block region. One q load serves four keys.
INLINE float key_scores(const float* qv, const int* kt, usize headOff, int shift, int start, int end, int hd, float* scores, int dtype) {
  const int esize = dtype == KV_F32 ? 4 : dtype == KV_F16 ? 2 : 1, mask = (1 << shift) - 1, row = hd * esize;
  const usize scales = ((usize)1 << shift) * hd; // int8: the block's scale bytes after its values
  const int g0 = group_start(start, end, hd), g1 = group_end(g0, end, hd);
  float mx = -__builtin_inff();
  for (int j = start; j < g0; j++) {
    const unsigned char* head = kv_head(kt, j, shift, headOff);
    const float s = key_score(qv, head, head + (usize)(j & mask) * row, j & mask, scales, hd, dtype);
    scores[j] = s;
    if (s > mx) mx = s;
  }
  v128_t mx4 = wasm_f32x4_splat(-__builtin_inff());
  for (int j = g0; j < g1; j += 4) {
    const unsigned char* head = kv_head(kt, j, shift, headOff);
    const unsigned char* k0 = head + (usize)(j & mask) * row;
    v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
    for (int i = 0; i < hd; i += 4) {
      const v128_t qi = wasm_v128_load(qv + i);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(qi, kv_load4(k0, i, dtype)));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(qi, kv_load4(k0 + row, i, dtype)));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(qi, kv_load4(k0 + 2 * row, i, dtype)));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(qi, kv_load4(k0 + 3 * row, i, dtype)));
    }
    v128_t s4 = f32_lane_sums4(a0, a1, a2, a3);
    if (dtype == KV_I8) s4 = wasm_f32x4_mul(s4, kv_scale4(head + scales + (j & mask)));
    wasm_v128_store(scores + j, s4);
    mx4 = wasm_f32x4_max(mx4, s4);
  }
  for (int j = g1; j < end; j++) {
    const unsigned char* head = kv_head(kt, j, shift, headOff);
    const float s = key_score(qv, head, head + (usize)(j & mask) * row, j & mask, scales, hd, dtype);
    scores[j] = s;
    if (s > mx) mx = s;
  }
  for (int l = 0; l < 4 && g0 < g1; l++) {
    const float m = l == 0 ? wasm_f32x4_extract_lane(mx4, 0) : l == 1 ? wasm_f32x4_extract_lane(mx4, 1) : l == 2 ? wasm_f32x4_extract_lane(mx4, 2) : wasm_f32x4_extract_lane(mx4, 3);
    if (m > mx) mx = m;
  }
  return mx;
}

// o += Σ_j scores[j] · inv · V[j] for j in [start, end) of storage type dtype (vt, headOff as key_scores'), four
// positions at a time where they share a block: one o update serves four values.
INLINE void value_sum(const int* vt, usize headOff, int shift, int start, int end, int hd, const float* scores, float inv, float* o, int dtype) {
  const int esize = dtype == KV_F32 ? 4 : dtype == KV_F16 ? 2 : 1, mask = (1 << shift) - 1, row = hd * esize;
  const usize scales = ((usize)1 << shift) * hd;
  const int g0 = group_start(start, end, hd), g1 = group_end(g0, end, hd);
  for (int j = start; j < end; j++) {
    if (j == g0 && g0 < g1) { // the groups of four
      for (; j < g1; j += 4) {
        const unsigned char* head = kv_head(vt, j, shift, headOff);
        const unsigned char* v0 = head + (usize)(j & mask) * row;
        v128_t p = wasm_f32x4_mul(wasm_v128_load(scores + j), wasm_f32x4_splat(inv));
        if (dtype == KV_I8) p = wasm_f32x4_mul(p, kv_scale4(head + scales + (j & mask)));
        const v128_t p0 = wasm_i32x4_shuffle(p, p, 0, 0, 0, 0), p1 = wasm_i32x4_shuffle(p, p, 1, 1, 1, 1);
        const v128_t p2 = wasm_i32x4_shuffle(p, p, 2, 2, 2, 2), p3 = wasm_i32x4_shuffle(p, p, 3, 3, 3, 3);
        for (int i = 0; i < hd; i += 4) {
          const v128_t a = wasm_f32x4_add(wasm_f32x4_mul(p0, kv_load4(v0, i, dtype)), wasm_f32x4_mul(p1, kv_load4(v0 + row, i, dtype)));
          const v128_t b = wasm_f32x4_add(wasm_f32x4_mul(p2, kv_load4(v0 + 2 * row, i, dtype)), wasm_f32x4_mul(p3, kv_load4(v0 + 3 * row, i, dtype)));
          wasm_v128_store(o + i, wasm_f32x4_add(wasm_v128_load(o + i), wasm_f32x4_add(a, b)));
        }
      }
      if (j >= end) break;
    }
    const unsigned char* head = kv_head(vt, j, shift, headOff);
    const unsigned char* vr = head + (usize)(j & mask) * row;
    const float p = scores[j] * inv * (dtype == KV_I8 ? kv_scale(head[scales + (j & mask)]) : 1.0f);
    const v128_t pv = wasm_f32x4_splat(p);
    int i = 0;
    for (; i + 4 <= hd; i += 4) wasm_v128_store(o + i, wasm_f32x4_add(wasm_v128_load(o + i), wasm_f32x4_mul(pv, kv_load4(vr, i, dtype))));
    for (; i < hd; i++) o[i] += p * ((const float*)vr)[i]; // float32 only (others have hd % 4 == 0)
  }
}

// e^(s − max) over scores[start, end), in place; returns their sum (in position order).
INLINE float softmax_weights(float* scores, int start, int end, float mx) {
  float sum = 0.0f;
  int j = start;
  const v128_t mxv = wasm_f32x4_splat(mx);
  for (; j + 4 <= end; j += 4) {
    const v128_t e = kvt_expf4(wasm_f32x4_sub(wasm_v128_load(scores + j), mxv));
    wasm_v128_store(scores + j, e);
    sum += wasm_f32x4_extract_lane(e, 0);
    sum += wasm_f32x4_extract_lane(e, 1);
    sum += wasm_f32x4_extract_lane(e, 2);
    sum += wasm_f32x4_extract_lane(e, 3);
  }
  for (; j < end; j++) {
    const float e = kvt_expf(scores[j] - mx);
    scores[j] = e;
    sum += e;
  }
  return sum;
}

// One (row, head, new position) of attention: softmax(q·K[j]) over j in [start, end), times V, into o. An int8
// cache's positions before sealed · 2^shift are int8 (head g at g·stride), the rest fp16 (g·openStride).
INLINE void attend_one(const float* qv, const int* kt, const int* vt, int g, const KvLayout* L, float* o, int start, int end, int hd,
                       float* scores, int dtype) {
  const int shift = L->format >> KV_SHIFT_BITS;
  for (int i = 0; i < hd; i++) o[i] = 0.0f;
  if (dtype != KV_I8) {
    const usize headOff = (usize)g * L->stride;
    const float inv = 1.0f / softmax_weights(scores, start, end, key_scores(qv, kt, headOff, shift, start, end, hd, scores, dtype));
    value_sum(vt, headOff, shift, start, end, hd, scores, inv, o, dtype);
    return;
  }
  const int c = imin(end, start > (L->sealed << shift) ? start : (L->sealed << shift)); // [start, c) int8, [c, end) fp16
  const usize sealedOff = (usize)g * L->stride, openOff = (usize)g * L->openStride;
  const float m8 = key_scores(qv, kt, sealedOff, shift, start, c, hd, scores, KV_I8);
  const float m16 = key_scores(qv, kt, openOff, shift, c, end, hd, scores, KV_F16);
  const float inv = 1.0f / softmax_weights(scores, start, end, m8 > m16 ? m8 : m16);
  value_sum(vt, sealedOff, shift, start, c, hd, scores, inv, o, KV_I8);
  value_sum(vt, openOff, shift, c, end, hd, scores, inv, o, KV_F16);
}

// Causal attention of n new positions over a cache: for row r, head h, new position t (absolute len + t), softmax of
// q·K[j] over j in [pads[r], len + t] (left padding masked), times V. q is already scaled by 1/√hd.
// q(r, h, t) at q + r·qr + h·qh + t·qt, out the same with its own strides; heads share K/V in groups of heads/kvHeads.
// kTabs/vTabs [b, nb]: each row's blocks (this layer's K, V region of each).
EXPORT(attend)
void attend(const float* q, int qr, int qh, int qt, const int* kTabs, const int* vTabs, const int* pads, float* out, int or_,
            int oh, int ot, int b, int n, int heads, int kvHeads, int hd, int nb, int len, float* scores, const KvLayout* L) {
  const int group = heads / kvHeads, dtype = L->format & KV_TYPE_MASK;
  for (int r = 0; r < b; r++)
    for (int h = 0; h < heads; h++) {
      const int* kt = kTabs + (usize)r * nb;
      const int* vt = vTabs + (usize)r * nb;
      for (int t = 0; t < n; t++) {
        const float* qv = q + (usize)r * qr + (usize)h * qh + (usize)t * qt;
        float* o = out + (usize)r * or_ + (usize)h * oh + (usize)t * ot;
        // each storage type gets its own loops (dtype a constant in each call)
        if (dtype == KV_F32) attend_one(qv, kt, vt, h / group, L, o, pads[r], len + t + 1, hd, scores, KV_F32);
        else if (dtype == KV_F16) attend_one(qv, kt, vt, h / group, L, o, pads[r], len + t + 1, hd, scores, KV_F16);
        else attend_one(qv, kt, vt, h / group, L, o, pads[r], len + t + 1, hd, scores, KV_I8);
      }
    }
}

// Rotates `heads` heads of one position in place. half == 0: pairs (2i, 2i+1) (llama2.c, GGUF); else (i, i + hd/2).
static void rotate(float* v, int heads, int hd, const float* cs, const float* sn, int half) {
  const int hh = hd / 2;
  for (int h = 0; h < heads; h++) {
    float* x = v + (usize)h * hd;
    if (!half) {
      for (int i = 0; i < hh; i++) {
        const float a = x[2 * i], b = x[2 * i + 1], c = cs[i], s = sn[i];
        x[2 * i] = a * c - b * s;
        x[2 * i + 1] = a * s + b * c;
      }
    } else {
      for (int i = 0; i < hh; i++) {
        const float a = x[i], b = x[i + hh], c = cs[i], s = sn[i];
        x[i] = a * c - b * s;
        x[i + hh] = b * c + a * s;
      }
    }
  }
}

// One Llama block (pre-norm attention and SwiGLU) for b rows of n new positions, x [b·n, d] updated in place:
//   h = rmsnorm(x)·[Wq Wk Wv]; rotary on q, k; q ·= 1/√hd; K/V rows appended to the cache at len…len+n−1;
//   x += attention(q, cache)·Wo; x += (silu(rmsnorm(x)·Wgate) ⊙ rmsnorm(x)·Wup)·Wdown.
// kTabs/vTabs [b, nb]: each cache row's blocks, this layer's K and V region of each (L: their layout); pads [b]: left padding; cos/sin [positions, hd/2]; fmts: the format codes of wqkv, wo, wgu, wdown;
// scratch: floats for h [m·d], qkv [m·(H+2KV)·hd], att [m·H·hd], gu [m·2F], act [m·F], scores [len + n] (m = b·n), then
// for quantized weights the quantized input (int16 [m·max(d, H·hd, F)] and its scales).
EXPORT(llama_block)
void llama_block(float* x, const float* attnNorm, const void* wqkv, const void* wo, const float* ffnNorm, const void* wgu,
                 const void* wdown, const float* cosT, const float* sinT, const int* kTabs, const int* vTabs, const int* pads,
                 int b, int n, int len, int nb, int d, int heads, int kvHeads, int hd, int F, float eps, int ropeHalf,
                 const int* fmts, float* scratch, const KvLayout* L) {
  const int m = b * n, qd = heads * hd, kvd = kvHeads * hd, qkvd = qd + 2 * kvd, hh = hd / 2;
  float* h = scratch;
  float* qkv = h + (usize)m * d;
  float* att = qkv + (usize)m * qkvd;
  float* gu = att + (usize)m * qd;
  float* act = gu + (usize)m * 2 * F;
  float* scores = act + (usize)m * F;
  void* quantized = scores + ((len + n + 3) & ~3); // after scores [len + n]
  const float scale = 1.0f / __builtin_sqrtf((float)hd);

  rms_norm(x, attnNorm, h, m, d, eps);
  linear_any(fmts[0], h, wqkv, qkv, m, d, qkvd, 0, quantized);
  for (int r = 0; r < b; r++)
    for (int t = 0; t < n; t++) {
      float* row = qkv + (usize)(r * n + t) * qkvd;
      int pos = len + t - pads[r];
      if (pos < 0) pos = 0;
      rotate(row, heads, hd, cosT + (usize)pos * hh, sinT + (usize)pos * hh, ropeHalf);
      rotate(row + qd, kvHeads, hd, cosT + (usize)pos * hh, sinT + (usize)pos * hh, ropeHalf);
      for (int i = 0; i < qd; i++) row[i] *= scale;
    }
  // k(r, g, t) at qkv + (r·n + t)·qkvd + qd + g·hd; v the same + kvd
  cache_write(qkv + qd, n * qkvd, hd, qkvd, kTabs, b, n, kvHeads, hd, nb, len, L, 1);
  cache_write(qkv + qd + kvd, n * qkvd, hd, qkvd, vTabs, b, n, kvHeads, hd, nb, len, L, 0);
  attend(qkv, n * qkvd, hd, qkvd, kTabs, vTabs, pads, att, n * qd, hd, qd, b, n, heads, kvHeads, hd, nb, len, scores, L);
  linear_any(fmts[1], att, wo, x, m, qd, d, 1, quantized);

  rms_norm(x, ffnNorm, h, m, d, eps);
  linear_any(fmts[2], h, wgu, gu, m, d, 2 * F, 0, quantized);
  for (int t = 0; t < m; t++) {
    const float* g = gu + (usize)t * 2 * F;
    const float* u = g + F;
    float* a = act + (usize)t * F;
    for (int i = 0; i < F; i++) a[i] = (g[i] / (1.0f + kvt_expf(-g[i]))) * u[i];
  }
  linear_any(fmts[3], act, wdown, x, m, F, d, 1, quantized);
}
