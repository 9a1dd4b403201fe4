//! AVX-512: the 512-bit variant of [`super::avx2`]'s f32 convolution (8 output channels at a
//! time, two 16-wide column chunks per step where the row has them: 16 accumulators, weights
//! broadcast per tap) and weight gradient, and the batch-norm element loops
//! ([`crate::backend::cpu::batch_norm::loops`]) compiled for AVX-512.
//!
//! Bounds: as in [`super::avx2`] (asserted at entry, every raw pointer access inside them).

use super::super::batch_norm::loops;
use super::super::{Real, CHUNK, WCHUNK};
use std::arch::x86_64::*;

/// Output channels per block.
pub(in crate::backend::cpu) const OBLOCK: usize = 8;

/// Output channels `0..cout` (a multiple of [`OBLOCK`]) of one image; same layout and
/// padding contract as [`super::avx2::conv_f32`] (rows of `wp >= round_up(w, 16) + K - 1`).
///
/// # Safety
/// The CPU must run AVX-512F. (Slice bounds are checked at entry.)
#[target_feature(enable = "avx512f")]
pub(in crate::backend::cpu) unsafe fn conv_f32<const K: usize>(
    pad: &[f32],
    cin: usize,
    hp: usize,
    wp: usize,
    wt: &[f32],
    cout: usize,
    h: usize,
    w: usize,
    out: &mut [f32],
) {
    assert!(cout % OBLOCK == 0 && CHUNK == 16);
    let kk = K * K;
    assert!(
        pad.len() >= cin * hp * wp && hp >= h + K - 1 && wp >= w.div_ceil(CHUNK) * CHUNK + K - 1
    );
    assert!(wt.len() >= cout * cin * kk && out.len() >= cout * h * w);
    let cstride = cin * kk;
    let store = |out: &mut [f32], o: usize, y: usize, x0: usize, v: __m512| {
        let n = CHUNK.min(w - x0);
        let dst = &mut out[(o * h + y) * w + x0..][..n];
        if n == CHUNK {
            // SAFETY: `dst` holds 16 floats.
            unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), v) };
        } else {
            let mut tmp = [0f32; CHUNK];
            // SAFETY: `tmp` holds 16 floats.
            unsafe { _mm512_storeu_ps(tmp.as_mut_ptr(), v) };
            dst.copy_from_slice(&tmp[..n]);
        }
    };
    for o0 in (0..cout).step_by(OBLOCK) {
        for y in 0..h {
            let mut x0 = 0;
            while x0 < w {
                if x0 + CHUNK < w {
                    // Two chunks: x0 and x0 + 16 (both inside the padded row).
                    let mut a = [_mm512_setzero_ps(); OBLOCK];
                    let mut b = [_mm512_setzero_ps(); OBLOCK];
                    for i in 0..cin {
                        // SAFETY: `o0 * cstride + i * kk < cout * cin * kk <= wt.len()`.
                        let wb = unsafe { wt.as_ptr().add(o0 * cstride + i * kk) };
                        for kh in 0..K {
                            // SAFETY: row `i * hp + y + kh < cin * hp` of `pad`, column
                            // `x0 < wp`.
                            let rp = unsafe { pad.as_ptr().add((i * hp + y + kh) * wp + x0) };
                            for kw in 0..K {
                                // SAFETY: columns `x0 + kw .. x0 + kw + 32` of the row: `x0` is
                                // a multiple of 16 and `x0 + 16 < w`, so they end at most at
                                // `round_up(w, 16) + K - 1 <= wp`.
                                let (s0, s1) = unsafe {
                                    (
                                        _mm512_loadu_ps(rp.add(kw)),
                                        _mm512_loadu_ps(rp.add(kw + CHUNK)),
                                    )
                                };
                                let t = kh * K + kw;
                                for ob in 0..OBLOCK {
                                    // SAFETY: weight `(o0 + ob, i, t)`, `o0 + ob < cout`.
                                    let wv = _mm512_set1_ps(unsafe { *wb.add(ob * cstride + t) });
                                    a[ob] = _mm512_fmadd_ps(wv, s0, a[ob]);
                                    b[ob] = _mm512_fmadd_ps(wv, s1, b[ob]);
                                }
                            }
                        }
                    }
                    for ob in 0..OBLOCK {
                        store(out, o0 + ob, y, x0, a[ob]);
                        store(out, o0 + ob, y, x0 + CHUNK, b[ob]);
                    }
                    x0 += 2 * CHUNK;
                } else {
                    let mut a = [_mm512_setzero_ps(); OBLOCK];
                    for i in 0..cin {
                        // SAFETY: as above.
                        let wb = unsafe { wt.as_ptr().add(o0 * cstride + i * kk) };
                        for kh in 0..K {
                            // SAFETY: as above.
                            let rp = unsafe { pad.as_ptr().add((i * hp + y + kh) * wp + x0) };
                            for kw in 0..K {
                                // SAFETY: columns `x0 + kw .. x0 + kw + 16` of the row, inside
                                // it (`x0` a multiple of 16 below `w`).
                                let s0 = unsafe { _mm512_loadu_ps(rp.add(kw)) };
                                let t = kh * K + kw;
                                for ob in 0..OBLOCK {
                                    // SAFETY: weight `(o0 + ob, i, t)`, `o0 + ob < cout`.
                                    let wv = _mm512_set1_ps(unsafe { *wb.add(ob * cstride + t) });
                                    a[ob] = _mm512_fmadd_ps(wv, s0, a[ob]);
                                }
                            }
                        }
                    }
                    for ob in 0..OBLOCK {
                        store(out, o0 + ob, y, x0, a[ob]);
                    }
                    x0 += CHUNK;
                }
            }
        }
    }
}

/// `[lo[0..8], hi[0..8]]` as one vector (AVX-512F only: the 256-bit insert is done on
/// f64 lanes, the f32 insert needs AVX-512DQ).
///
/// # Safety
/// The CPU must run AVX-512F and AVX2, and `lo` and `hi` must each be valid for reading 8
/// `f32`s.
#[inline]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn both(lo: *const f32, hi: *const f32) -> __m512 {
    // SAFETY: both pointers are valid for 8 floats (the caller's contract).
    let (lo, hi) = unsafe { (_mm256_loadu_ps(lo), _mm256_loadu_ps(hi)) };
    let lo = _mm512_castps_pd(_mm512_castps256_ps512(lo));
    let hi = _mm256_castps_pd(hi);
    _mm512_castpd_ps(_mm512_insertf64x4::<1>(lo, hi))
}

/// Weight gradient of output channels `0..cout` (a multiple of [`OBLOCK`]) of one image; see
/// [`crate::backend::cpu::conv::wgrad_block`] and [`super::avx2::wgrad_f32`]. A 512-bit vector
/// holds the 8-lane accumulators of two output channels (lanes 0-7 and 8-15) for the same input
/// row chunk, which is broadcast to both halves: every lane sums the same products in the same
/// order as the AVX2 kernel, and the halves are reduced by its [`super::avx2::hsum`], so the
/// results are identical.
///
/// # Safety
/// The CPU must run AVX-512F, AVX2 and FMA. (Slice bounds are checked at entry.)
#[target_feature(enable = "avx512f,avx2,fma")]
pub(in crate::backend::cpu) unsafe fn wgrad_f32<const K: usize>(
    pad: &[f32],
    cin: usize,
    hp: usize,
    wp: usize,
    g: &[f32],
    cout: usize,
    h: usize,
    wg: usize,
    dw: &mut [f32],
) {
    assert!(cout % OBLOCK == 0 && wg % WCHUNK == 0 && WCHUNK == 8);
    let kk = K * K;
    assert!(pad.len() >= cin * hp * wp && wp >= wg + K - 1 && hp >= h + K - 1);
    assert!(g.len() >= cout * h * wg && dw.len() >= cout * cin * kk);
    const PAIRS: usize = OBLOCK / 2;
    let plane = h * wg;
    for o0 in (0..cout).step_by(OBLOCK) {
        for i in 0..cin {
            for kh in 0..K {
                let mut acc = [[_mm512_setzero_ps(); K]; PAIRS];
                for y in 0..h {
                    // SAFETY: row `i * hp + y + kh < cin * hp` of `pad`; row `o0 * h + y` of
                    // `g`, `o0 < cout`.
                    let (prow, grow) = unsafe {
                        (
                            pad.as_ptr().add((i * hp + y + kh) * wp),
                            g.as_ptr().add((o0 * h + y) * wg),
                        )
                    };
                    let mut x0 = 0;
                    while x0 < wg {
                        let mut p = [_mm512_setzero_ps(); K];
                        for (kw, pv) in p.iter_mut().enumerate() {
                            // SAFETY: columns `x0 + kw .. x0 + kw + 8 <= wg + K - 1 <= wp` of
                            // the row; this function's features include `both`'s.
                            *pv = unsafe { both(prow.add(x0 + kw), prow.add(x0 + kw)) };
                        }
                        for (pr, acc_p) in acc.iter_mut().enumerate() {
                            // SAFETY: columns `x0 .. x0 + 8 <= wg` of rows `(o + 0|1) * h + y`
                            // of `g`, `o = o0 + 2 pr`, `o + 1 < cout`; features as above.
                            let gv = unsafe {
                                let a = grow.add(2 * pr * plane + x0);
                                both(a, a.add(plane))
                            };
                            for kw in 0..K {
                                acc_p[kw] = _mm512_fmadd_ps(gv, p[kw], acc_p[kw]);
                            }
                        }
                        x0 += WCHUNK;
                    }
                }
                for (pr, acc_p) in acc.iter().enumerate() {
                    for (kw, a) in acc_p.iter().enumerate() {
                        let mut t = [0f32; 16];
                        // SAFETY: `t` holds 16 floats.
                        unsafe { _mm512_storeu_ps(t.as_mut_ptr(), *a) };
                        let (o, tap) = (o0 + 2 * pr, kh * K + kw);
                        // SAFETY: `t` holds 16 floats; this function's features include
                        // `hsum`'s (AVX2).
                        let (lo, hi) = unsafe {
                            (
                                super::avx2::hsum(_mm256_loadu_ps(t.as_ptr())),
                                super::avx2::hsum(_mm256_loadu_ps(t.as_ptr().add(8))),
                            )
                        };
                        dw[(o * cin + i) * kk + tap] += lo;
                        dw[((o + 1) * cin + i) * kk + tap] += hi;
                    }
                }
            }
        }
    }
}

/// [`loops::sum_plain`] compiled for AVX-512.
///
/// # Safety
/// The CPU must run AVX-512 F, VL and DQ, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
pub(in crate::backend::cpu) unsafe fn sum_plain<T: Real>(x: &[T]) -> f64 {
    loops::sum_plain(x)
}

/// [`loops::sum_sq_dev`] compiled for AVX-512.
///
/// # Safety
/// As [`sum_plain`].
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
pub(in crate::backend::cpu) unsafe fn sum_sq_dev<T: Real>(x: &[T], mean: f64) -> f64 {
    loops::sum_sq_dev(x, mean)
}

/// [`loops::sum_bn_back`] compiled for AVX-512.
///
/// # Safety
/// As [`sum_plain`].
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
pub(in crate::backend::cpu) unsafe fn sum_bn_back<T: Real>(
    g: &[T],
    x: &[T],
    mu: f64,
    inv: f64,
) -> (f64, f64) {
    loops::sum_bn_back(g, x, mu, inv)
}

/// [`loops::affine_run`] compiled for AVX-512.
///
/// # Safety
/// As [`sum_plain`].
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
pub(in crate::backend::cpu) unsafe fn affine_run<T: Real>(
    o: &mut [T],
    x: &[T],
    a: T,
    b: T,
    c: T,
    d: T,
) {
    loops::affine_run(o, x, a, b, c, d)
}

/// [`loops::bn_dx_run`] compiled for AVX-512.
///
/// # Safety
/// As [`sum_plain`].
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
pub(in crate::backend::cpu) unsafe fn bn_dx_run<T: Real>(o: &mut [T], x: &[T], g: &[T], p: [T; 5]) {
    loops::bn_dx_run(o, x, g, p)
}
