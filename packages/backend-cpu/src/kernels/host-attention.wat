;; Attention over a host KV cache, WebAssembly SIMD (f32x4). Compiled by scripts/build-kernels.mjs into
;; host-attention-wasm.ts. The softmax between the two passes runs in JavaScript (Math.exp).
;; All pointers are byte offsets into the imported memory; hd is a multiple of 4.
(module
  (import "env" "memory" (memory 1))

  ;; scores[j] = q · K[j] for j in [start, end); K row j at k + j·hd·4
  (func (export "dots") (param $q i32) (param $k i32) (param $start i32) (param $end i32) (param $hd i32) (param $scores i32)
    (local $j i32) (local $d i32) (local $row i32) (local $acc0 v128) (local $acc1 v128) (local $bytes i32)
    (local.set $bytes (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $j (local.get $start))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_s (local.get $j) (local.get $end)))
        (local.set $row (i32.add (local.get $k) (i32.mul (local.get $j) (local.get $bytes))))
        (local.set $acc0 (v128.const f32x4 0 0 0 0))
        (local.set $acc1 (v128.const f32x4 0 0 0 0))
        (local.set $d (i32.const 0))
        ;; two vectors at a time while 8 floats remain
        (block $d8done
          (loop $d8
            (br_if $d8done (i32.gt_s (i32.add (local.get $d) (i32.const 32)) (local.get $bytes)))
            (local.set $acc0 (f32x4.add (local.get $acc0)
              (f32x4.mul (v128.load (i32.add (local.get $q) (local.get $d))) (v128.load (i32.add (local.get $row) (local.get $d))))))
            (local.set $acc1 (f32x4.add (local.get $acc1)
              (f32x4.mul (v128.load offset=16 (i32.add (local.get $q) (local.get $d))) (v128.load offset=16 (i32.add (local.get $row) (local.get $d))))))
            (local.set $d (i32.add (local.get $d) (i32.const 32)))
            (br $d8)))
        (block $d4done
          (loop $d4
            (br_if $d4done (i32.ge_s (local.get $d) (local.get $bytes)))
            (local.set $acc0 (f32x4.add (local.get $acc0)
              (f32x4.mul (v128.load (i32.add (local.get $q) (local.get $d))) (v128.load (i32.add (local.get $row) (local.get $d))))))
            (local.set $d (i32.add (local.get $d) (i32.const 16)))
            (br $d4)))
        (local.set $acc0 (f32x4.add (local.get $acc0) (local.get $acc1)))
        (f32.store (i32.add (local.get $scores) (i32.shl (local.get $j) (i32.const 2)))
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $acc0)) (f32x4.extract_lane 1 (local.get $acc0)))
            (f32.add (f32x4.extract_lane 2 (local.get $acc0)) (f32x4.extract_lane 3 (local.get $acc0)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $rows))))

  ;; out[0..hd) = Σ_{j in [start, end)} p[j] · V[j]
  (func (export "wsum") (param $p i32) (param $v i32) (param $start i32) (param $end i32) (param $hd i32) (param $out i32)
    (local $j i32) (local $d i32) (local $row i32) (local $pj v128) (local $bytes i32) (local $o i32)
    (local.set $bytes (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $d (i32.const 0))
    (block $zdone
      (loop $z
        (br_if $zdone (i32.ge_s (local.get $d) (local.get $bytes)))
        (v128.store (i32.add (local.get $out) (local.get $d)) (v128.const f32x4 0 0 0 0))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (br $z)))
    (local.set $j (local.get $start))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_s (local.get $j) (local.get $end)))
        (local.set $row (i32.add (local.get $v) (i32.mul (local.get $j) (local.get $bytes))))
        (local.set $pj (f32x4.splat (f32.load (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $d (i32.const 0))
        (block $ddone
          (loop $dl
            (br_if $ddone (i32.ge_s (local.get $d) (local.get $bytes)))
            (local.set $o (i32.add (local.get $out) (local.get $d)))
            (v128.store (local.get $o)
              (f32x4.add (v128.load (local.get $o)) (f32x4.mul (local.get $pj) (v128.load (i32.add (local.get $row) (local.get $d))))))
            (local.set $d (i32.add (local.get $d) (i32.const 16)))
            (br $dl)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $rows))))
)
