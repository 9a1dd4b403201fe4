//! AVX2 + FMA: the explicit kernels, `f32` (8 lanes) and the `f64` convolution (4 lanes) in
//! blocks of [`OBLOCK`] = 4 output channels, and the portable convolution loops compiled for
//! AVX2 + FMA (fused multiply-adds), for the channels the blocks leave and for the `f64` weight
//! gradient.
//!
//! Bounds: each explicit kernel asserts at entry that its slices hold the image geometry it is
//! given (`pad (cin, hp, wp)` with `hp >= h + K - 1` and rows of `wp >= round_up(w, 16) + K - 1`
//! columns, or `wg + K - 1` for the weight gradient; `wt`, `g`, `out`, `dw` of their full sizes).
//! Every raw pointer read and write then stays inside those slices: a row chunk starts at a
//! column `x0 < w` that is a multiple of the chunk width, so it ends at most at
//! `round_up(w, 16) + K - 1 <= wp` after a tap offset `kw < K`.

use super::super::conv;
use super::super::{Real, CHUNK, OBLOCK, WCHUNK};
use std::arch::x86_64::*;

/// [`conv::conv_block`] of the single output channel `o`, compiled for AVX2 + FMA (fused
/// multiply-adds).
///
/// # Safety
/// The CPU must run AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(in crate::backend::cpu) unsafe fn conv_block<T: Real, const K: usize>(
    pad: &[T],
    cin: usize,
    hp: usize,
    wp: usize,
    wt: &[T],
    o: usize,
    h: usize,
    w: usize,
    out: &mut [T],
) {
    conv::conv_block::<T, K, 1, true>(pad, cin, hp, wp, wt, o, h, w, out)
}

/// [`conv::wgrad_block`] of the single output channel `o`, compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU must run AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(in crate::backend::cpu) unsafe fn wgrad_block<T: Real, const K: usize>(
    pad: &[T],
    cin: usize,
    hp: usize,
    wp: usize,
    g: &[T],
    o: usize,
    h: usize,
    wg: usize,
    dw: &mut [T],
) {
    conv::wgrad_block::<T, K, 1, true>(pad, cin, hp, wp, g, o, h, wg, dw)
}

/// [`conv::wgrad_image`] with fused multiply-adds, compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU must run AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(in crate::backend::cpu) unsafe fn wgrad_image<T: Real, const K: usize>(
    pad: &[T],
    cin: usize,
    hp: usize,
    wp: usize,
    g: &[T],
    cout: usize,
    h: usize,
    wg: usize,
    dw: &mut [T],
) {
    conv::wgrad_image::<T, K, true>(pad, cin, hp, wp, g, cout, h, wg, dw)
}

/// Output channels `0..cout` (a multiple of 4) of one image; see [`conv::conv_block`].
///
/// # Safety
/// The CPU must run AVX2 and FMA. (Slice bounds are checked at entry; see the module
/// documentation.)
#[target_feature(enable = "avx2,fma")]
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
    assert!(cout % OBLOCK == 0);
    let kk = K * K;
    // Every read below stays inside these bounds (rows of `wp >= round_up(w, 16) + K - 1`).
    assert!(
        pad.len() >= cin * hp * wp && hp >= h + K - 1 && wp >= w.div_ceil(CHUNK) * CHUNK + K - 1
    );
    assert!(wt.len() >= cout * cin * kk && out.len() >= cout * h * w);
    let cstride = cin * kk;
    for o0 in (0..cout).step_by(OBLOCK) {
        for y in 0..h {
            let mut x0 = 0;
            while x0 < w {
                let mut acc = [_mm256_setzero_ps(); 2 * OBLOCK];
                for i in 0..cin {
                    // SAFETY: `o0 * cstride + i * kk < cout * cin * kk <= wt.len()`.
                    let wb = unsafe { wt.as_ptr().add(o0 * cstride + i * kk) };
                    for kh in 0..K {
                        // SAFETY: row `i * hp + y + kh < cin * hp` of `pad`, column `x0 < wp`.
                        let rp = unsafe { pad.as_ptr().add((i * hp + y + kh) * wp + x0) };
                        for kw in 0..K {
                            // SAFETY: columns `x0 + kw .. x0 + kw + 16` of the row, inside it
                            // (module documentation).
                            let (s0, s1) = unsafe {
                                (_mm256_loadu_ps(rp.add(kw)), _mm256_loadu_ps(rp.add(kw + 8)))
                            };
                            let t = kh * K + kw;
                            for ob in 0..OBLOCK {
                                // SAFETY: weight `(o0 + ob, i, t)`, `o0 + ob < cout`.
                                let wv = _mm256_broadcast_ss(unsafe { &*wb.add(ob * cstride + t) });
                                acc[2 * ob] = _mm256_fmadd_ps(wv, s0, acc[2 * ob]);
                                acc[2 * ob + 1] = _mm256_fmadd_ps(wv, s1, acc[2 * ob + 1]);
                            }
                        }
                    }
                }
                let n = CHUNK.min(w - x0);
                for ob in 0..OBLOCK {
                    let dst = &mut out[((o0 + ob) * h + y) * w + x0..][..n];
                    if n == CHUNK {
                        // SAFETY: `dst` holds 16 floats.
                        unsafe {
                            _mm256_storeu_ps(dst.as_mut_ptr(), acc[2 * ob]);
                            _mm256_storeu_ps(dst.as_mut_ptr().add(8), acc[2 * ob + 1]);
                        }
                    } else {
                        let mut tmp = [0f32; CHUNK];
                        // SAFETY: `tmp` holds 16 floats.
                        unsafe {
                            _mm256_storeu_ps(tmp.as_mut_ptr(), acc[2 * ob]);
                            _mm256_storeu_ps(tmp.as_mut_ptr().add(8), acc[2 * ob + 1]);
                        }
                        dst.copy_from_slice(&tmp[..n]);
                    }
                }
                x0 += CHUNK;
            }
        }
    }
}

/// `f64` version of [`conv_f32`]: the 16-column chunk in two halves of 8 (2 x 4 lanes) so
/// that the 4 output channels' accumulators stay in registers (the generic loop held 16
/// and spilled). Per output element the same FMAs in the same order as the generic
/// [`conv::conv_block`] with FMA: the same results bit for bit.
///
/// # Safety
/// The CPU must run AVX2 and FMA. (Slice bounds are checked at entry; see the module
/// documentation.)
#[target_feature(enable = "avx2,fma")]
pub(in crate::backend::cpu) unsafe fn conv_f64<const K: usize>(
    pad: &[f64],
    cin: usize,
    hp: usize,
    wp: usize,
    wt: &[f64],
    cout: usize,
    h: usize,
    w: usize,
    out: &mut [f64],
) {
    assert!(cout % OBLOCK == 0);
    let kk = K * K;
    assert!(
        pad.len() >= cin * hp * wp && hp >= h + K - 1 && wp >= w.div_ceil(CHUNK) * CHUNK + K - 1
    );
    assert!(wt.len() >= cout * cin * kk && out.len() >= cout * h * w);
    let cstride = cin * kk;
    for o0 in (0..cout).step_by(OBLOCK) {
        for y in 0..h {
            let mut x0 = 0;
            while x0 < w {
                let mut acc = [_mm256_setzero_pd(); 2 * OBLOCK];
                for i in 0..cin {
                    // SAFETY: `o0 * cstride + i * kk < cout * cin * kk <= wt.len()`.
                    let wb = unsafe { wt.as_ptr().add(o0 * cstride + i * kk) };
                    for kh in 0..K {
                        // SAFETY: row `i * hp + y + kh < cin * hp` of `pad`, column `x0 < wp`.
                        let rp = unsafe { pad.as_ptr().add((i * hp + y + kh) * wp + x0) };
                        for kw in 0..K {
                            // SAFETY: columns `x0 + kw .. x0 + kw + 8` of the row (`x0` a
                            // multiple of 8 below `w`), inside it.
                            let (s0, s1) = unsafe {
                                (_mm256_loadu_pd(rp.add(kw)), _mm256_loadu_pd(rp.add(kw + 4)))
                            };
                            let t = kh * K + kw;
                            for ob in 0..OBLOCK {
                                // SAFETY: weight `(o0 + ob, i, t)`, `o0 + ob < cout`.
                                let wv = _mm256_broadcast_sd(unsafe { &*wb.add(ob * cstride + t) });
                                acc[2 * ob] = _mm256_fmadd_pd(wv, s0, acc[2 * ob]);
                                acc[2 * ob + 1] = _mm256_fmadd_pd(wv, s1, acc[2 * ob + 1]);
                            }
                        }
                    }
                }
                let n = 8.min(w - x0);
                for ob in 0..OBLOCK {
                    let dst = &mut out[((o0 + ob) * h + y) * w + x0..][..n];
                    let mut tmp = [0f64; 8];
                    // SAFETY: `tmp` holds 8 doubles.
                    unsafe {
                        _mm256_storeu_pd(tmp.as_mut_ptr(), acc[2 * ob]);
                        _mm256_storeu_pd(tmp.as_mut_ptr().add(4), acc[2 * ob + 1]);
                    }
                    dst.copy_from_slice(&tmp[..n]);
                }
                x0 += 8;
            }
        }
    }
}

/// Sum of the 8 lanes: (lo + hi) of the 128-bit halves, then pairs, then the last two.
///
/// # Safety
/// The CPU must run AVX2.
#[target_feature(enable = "avx2,fma")]
pub(in crate::backend::cpu) unsafe fn hsum(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// Output channels `0..cout` (a multiple of 4) of one image's weight gradient; see
/// [`conv::wgrad_block`].
///
/// # Safety
/// The CPU must run AVX2 and FMA. (Slice bounds are checked at entry; see the module
/// documentation.)
#[target_feature(enable = "avx2,fma")]
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
    assert!(cout % OBLOCK == 0 && wg % WCHUNK == 0);
    let kk = K * K;
    assert!(pad.len() >= cin * hp * wp && wp >= wg + K - 1 && hp >= h + K - 1);
    assert!(g.len() >= cout * h * wg && dw.len() >= cout * cin * kk);
    for o0 in (0..cout).step_by(OBLOCK) {
        for i in 0..cin {
            for kh in 0..K {
                let mut acc = [[_mm256_setzero_ps(); K]; OBLOCK];
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
                        let mut p = [_mm256_setzero_ps(); K];
                        for (kw, pv) in p.iter_mut().enumerate() {
                            // SAFETY: columns `x0 + kw .. x0 + kw + 8 <= wg + K - 1 <= wp`.
                            *pv = unsafe { _mm256_loadu_ps(prow.add(x0 + kw)) };
                        }
                        for (ob, acc_o) in acc.iter_mut().enumerate() {
                            // SAFETY: columns `x0 .. x0 + 8 <= wg` of row
                            // `(o0 + ob) * h + y` of `g`, `o0 + ob < cout`.
                            let gv = unsafe { _mm256_loadu_ps(grow.add(ob * h * wg + x0)) };
                            for kw in 0..K {
                                acc_o[kw] = _mm256_fmadd_ps(gv, p[kw], acc_o[kw]);
                            }
                        }
                        x0 += WCHUNK;
                    }
                }
                for (ob, acc_o) in acc.iter().enumerate() {
                    for (kw, a) in acc_o.iter().enumerate() {
                        // SAFETY: this function's own features include hsum's.
                        dw[((o0 + ob) * cin + i) * kk + kh * K + kw] += unsafe { hsum(*a) };
                    }
                }
            }
        }
    }
}
