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

/// Widest image (columns) that the output-channel-vectorised convolution [`conv_f32_narrow`]
/// takes (it runs at any `w`): at 8 columns and below [`conv_f32`] leaves half the lanes of its
/// 16-column chunks idle or more. Measured 64 -> 64 channels, 3 x 3, one thread, on a 2-core AMD
/// EPYC (AVX2), with the weights in one row of all channels per tap: 0.9x as fast at 8 x 8,
/// 1.2x at 6 x 6, 1.5-1.6x at 4 x 4, 1.8-2.3x at 2 x 2; with the tile-major packing of
/// [`pack_narrow`], 8 x 8 is taken too (see `ConvPath::conv_gemm` for 256 channels).
pub(in crate::backend::cpu) const NARROW_W: usize = 8;

/// Widest image that the output-channel-vectorised weight gradient [`wgrad_f32_narrow`] takes:
/// its cost per weight (the lane sums, the addition to `dw`) is about that of [`wgrad_f32`],
/// so it wins only where [`wgrad_f32`] leaves a quarter of its 8 lanes idle or more (as
/// [`NARROW_W`]: 0.8-0.9x as fast at 8 x 8, 1.0-1.2x at 6 x 6, 1.15x at 4 x 4, 1.1-1.5x at
/// 2 x 2).
pub(in crate::backend::cpu) const NARROW_WG_W: usize = 6;

/// Output channels of a narrow kernel's packed weights: `cout` rounded up to 8 (one vector).
pub(in crate::backend::cpu) fn narrow_channels(cout: usize) -> usize {
    cout.div_ceil(8) * 8
}

/// The weights `wt (cout, cin, K, K)` packed for [`conv_f32_narrow`], tile by tile: the output
/// channels in tiles of 16 (the last tile 8 when `cp` is not a multiple of 16), each tile
/// `(cin, K, K, 16 or 8)` with its channels contiguous and the tile's rows following each other
/// (a tile's weights are read as one stream: with a row of all `cp` channels per tap, each tap
/// of a tile was a different cache line `cp` floats away). `cp =` [`narrow_channels`]`(cout)`,
/// channels `cout..cp` zero. The weight of channel `o` in tile `o0` (width `tw`) at tap `it` is at
/// [`narrow_index`].
pub(in crate::backend::cpu) fn pack_narrow<T: Real>(
    wt: &[T],
    cout: usize,
    cin: usize,
    kk: usize,
) -> Vec<T> {
    let cp = narrow_channels(cout);
    let mut packed = vec![T::zero(); cin * kk * cp];
    for o in 0..cout {
        for (it, &v) in wt[o * cin * kk..][..cin * kk].iter().enumerate() {
            packed[narrow_index(o, it, cin * kk, cp)] = v;
        }
    }
    packed
}

/// Position in [`pack_narrow`]'s layout of output channel `o`, tap `it` (of `cikk = cin * K * K`),
/// `cp` channels packed: tile `o0 = o / 16 * 16` of width 16 (8 for a last tile of 8) starts at
/// `o0 * cikk`, then `it * width + o - o0`.
#[inline(always)]
fn narrow_index(o: usize, it: usize, cikk: usize, cp: usize) -> usize {
    let o0 = o / 16 * 16;
    let width = if cp - o0 >= 16 { 16 } else { 8 };
    o0 * cikk + it * width + (o - o0)
}

/// `MB` vectors (8 output channels each, from `o0`) times `NP` output positions of
/// [`conv_f32_narrow`]: `acc[m][p] = fma(w, pad[off[p] + tap], acc)` over the taps
/// `(i, kh, kw)` in that order, from zero. Returns the accumulators.
///
/// # Safety
/// The CPU must run AVX2 and FMA; every `off[p] + (i * hp + kh) * wp + kw` with `i < cin`,
/// `kh, kw < K` must lie inside `pad`, and `(o0 + 8 * MB) * cin * K * K <= wpk.len()` with
/// `8 * MB` the width of the tile at `o0` in [`pack_narrow`]'s layout
/// (the caller checks both).
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_narrow_tile<const K: usize, const MB: usize, const NP: usize>(
    pad: *const f32,
    cin: usize,
    hp: usize,
    wp: usize,
    wpk: *const f32,
    o0: usize,
    off: &[usize; NP],
) -> [[__m256; NP]; MB] {
    let mut acc = [[_mm256_setzero_ps(); NP]; MB];
    for i in 0..cin {
        for kh in 0..K {
            for kw in 0..K {
                let tap = (i * hp + kh) * wp + kw;
                // SAFETY: packed weight row `(i, kh, kw)`, channels `o0 .. o0 + 8 * MB` (the
                // caller's bound).
                let wrow = unsafe { wpk.add(o0 * cin * K * K + ((i * K + kh) * K + kw) * 8 * MB) };
                let mut wv = [_mm256_setzero_ps(); MB];
                for (m, v) in wv.iter_mut().enumerate() {
                    // SAFETY: as above.
                    *v = unsafe { _mm256_loadu_ps(wrow.add(8 * m)) };
                }
                for p in 0..NP {
                    // SAFETY: `off[p] + tap` inside `pad` (the caller's bound).
                    let s = _mm256_broadcast_ss(unsafe { &*pad.add(off[p] + tap) });
                    for m in 0..MB {
                        acc[m][p] = _mm256_fmadd_ps(wv[m], s, acc[m][p]);
                    }
                }
            }
        }
    }
    acc
}

/// One image of the f32 convolution for narrow images (dispatched at `w <=` [`NARROW_W`]; any
/// width works), vectorised over the output channels instead of the row: register tiles of 16 channels (2 vectors) times 6
/// output positions (or 8 channels times 12 positions for the last 8), the padded input value
/// of each position and tap broadcast. `wpk` holds the weights packed by [`pack_narrow`]
/// (`cp` channels, a multiple of 8); all `cout` channels are written. Per output element the
/// FMAs are those of [`conv_f32`] and [`conv::conv_block`] in the same order (`acc = 0`, then
/// `acc = fma(w[o, i, kh, kw], pad[i, y + kh, x + kw], acc)` over `i`, `kh`, `kw`): the same
/// results bit for bit. Padded channels and positions (tiles past the end repeat the last
/// position) are computed and dropped.
///
/// # Safety
/// The CPU must run AVX2 and FMA. (Slice bounds are checked at entry.)
#[target_feature(enable = "avx2,fma")]
pub(in crate::backend::cpu) unsafe fn conv_f32_narrow<const K: usize>(
    pad: &[f32],
    cin: usize,
    hp: usize,
    wp: usize,
    wpk: &[f32],
    cp: usize,
    cout: usize,
    h: usize,
    w: usize,
    out: &mut [f32],
) {
    let kk = K * K;
    assert!(cp % 8 == 0 && cp >= cout && cin > 0);
    // Every position's taps stay inside these bounds: row `y + kh < hp`, column `x + kw < wp`.
    assert!(pad.len() >= cin * hp * wp && hp >= h + K - 1 && wp >= w + K - 1);
    assert!(wpk.len() >= cin * kk * cp && out.len() >= cout * h * w);
    let hw = h * w;
    if hw == 0 {
        return;
    }
    let (pp, wq) = (pad.as_ptr(), wpk.as_ptr());
    let mut o0 = 0;
    while o0 < cout {
        // SAFETY (each call): positions inside the image (bounds above); channels
        // `o0 + 8 * MB <= cp`; this function's own features include the callee's.
        if cp - o0 >= 16 && hw % 6 != 0 && hw % 4 == 0 {
            // Tiles of 4 positions where 6 would leave a partial tile (4 x 4 and 8 x 8 images:
            // a third of the last tile computed and dropped at 4 x 4).
            unsafe { narrow_channel_tiles::<K, 2, 4>(pp, cin, hp, wp, wq, o0, cout, w, hw, out) };
            o0 += 16;
        } else if cp - o0 >= 16 {
            unsafe { narrow_channel_tiles::<K, 2, 6>(pp, cin, hp, wp, wq, o0, cout, w, hw, out) };
            o0 += 16;
        } else {
            unsafe { narrow_channel_tiles::<K, 1, 12>(pp, cin, hp, wp, wq, o0, cout, w, hw, out) };
            o0 += 8;
        }
    }
}

/// Output channels `o0 .. o0 + 8 * MB` of [`conv_f32_narrow`], every position of the image in
/// tiles of `NP` (a last, partial tile repeats the last position; its extra columns are
/// dropped).
///
/// # Safety
/// The CPU must run AVX2 and FMA; the bounds of [`conv_narrow_tile`] hold for every position
/// `< hw` of an image `w` columns wide (the caller checks them).
#[target_feature(enable = "avx2,fma")]
unsafe fn narrow_channel_tiles<const K: usize, const MB: usize, const NP: usize>(
    pp: *const f32,
    cin: usize,
    hp: usize,
    wp: usize,
    wq: *const f32,
    o0: usize,
    cout: usize,
    w: usize,
    hw: usize,
    out: &mut [f32],
) {
    let mut p0 = 0;
    while p0 < hw {
        let off: [usize; NP] = std::array::from_fn(|j| {
            let p = (p0 + j).min(hw - 1);
            (p / w) * wp + p % w
        });
        // SAFETY: the caller's bounds.
        let acc = unsafe { conv_narrow_tile::<K, MB, NP>(pp, cin, hp, wp, wq, o0, &off) };
        // SAFETY: this function's own features include `store_tile`'s.
        unsafe { store_tile(&acc, o0, cout, p0, hw, out) };
        p0 += NP;
    }
}

/// Writes the channels `o0 .. min(o0 + 8 * MB, cout)` and positions `p0 .. min(p0 + NP, hw)`
/// of a tile of accumulators to `out (cout, hw)`.
///
/// # Safety
/// The CPU must run AVX2.
#[target_feature(enable = "avx2,fma")]
unsafe fn store_tile<const MB: usize, const NP: usize>(
    acc: &[[__m256; NP]; MB],
    o0: usize,
    cout: usize,
    p0: usize,
    hw: usize,
    out: &mut [f32],
) {
    let np = NP.min(hw - p0);
    for (m, row) in acc.iter().enumerate() {
        for (p, v) in row.iter().enumerate().take(np) {
            let mut tmp = [0f32; 8];
            // SAFETY: `tmp` holds 8 floats.
            unsafe { _mm256_storeu_ps(tmp.as_mut_ptr(), *v) };
            let ob = o0 + 8 * m;
            for (l, t) in tmp.iter().enumerate().take(cout.saturating_sub(ob)) {
                out[(ob + l) * hw + p0 + p] = *t;
            }
        }
    }
}

/// `MB` vectors (8 output channels from `o0`) times `NB` weight columns (flat `(i, kh, kw)`
/// indices, each given as the offset `off[n]` of its tap in `pad`) of [`wgrad_f32_narrow`], at
/// column `x`: `acc[m][n] = fma(g[y, x, o], pad[off[n] + y * wp + x], acc)` over `y` in order,
/// from zero.
///
/// # Safety
/// The CPU must run AVX2 and FMA; the reads `off[n] + y * wp + x` (`y < h`) must lie inside
/// `pad` and `(y * 8 + x) * cp + o0 + 8 * MB` inside `gt` (the caller checks both).
#[target_feature(enable = "avx2,fma")]
unsafe fn wgrad_narrow_tile<const MB: usize, const NB: usize>(
    pad: *const f32,
    wp: usize,
    gt: *const f32,
    cp: usize,
    o0: usize,
    h: usize,
    x: usize,
    off: &[usize; NB],
) -> [[__m256; NB]; MB] {
    let mut acc = [[_mm256_setzero_ps(); NB]; MB];
    for y in 0..h {
        // SAFETY: `gt` row `(y, x)`, channels `o0 .. o0 + 8 * MB` (the caller's bound).
        let grow = unsafe { gt.add((y * WCHUNK + x) * cp + o0) };
        let mut gv = [_mm256_setzero_ps(); MB];
        for (m, v) in gv.iter_mut().enumerate() {
            // SAFETY: as above.
            *v = unsafe { _mm256_loadu_ps(grow.add(8 * m)) };
        }
        let yx = y * wp + x;
        for n in 0..NB {
            // SAFETY: inside `pad` (the caller's bound).
            let s = _mm256_broadcast_ss(unsafe { &*pad.add(off[n] + yx) });
            for m in 0..MB {
                acc[m][n] = _mm256_fmadd_ps(gv[m], s, acc[m][n]);
            }
        }
    }
    acc
}

/// One image of the f32 weight gradient for narrow images (`w <= 8`, dispatched at
/// `w <=` [`NARROW_WG_W`], rows of `g` padded to `wg = 8` columns), output channels `0..cout` (a
/// multiple of 4), vectorised over the output channels: register tiles of 8 channels times 8
/// weight columns `(i, kh, kw)`, one tile per column `x` of the image, `g` transposed to
/// `(y, x, o)` first; the sums of a full tile are transposed in registers and added to 8
/// columns of `dw` at a time. [`wgrad_f32`] keeps, per weight, 8 lanes (columns `x`), each the FMA sum
/// over `y` in order from zero, and adds them with [`hsum`] before `dw += `; this kernel
/// computes the same 8 lane sums with the same FMAs in the same order and adds them in the
/// same tree, `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`, then `dw +=`: the same
/// results bit for bit. Lanes `x >= w` (where `g` is zero) are `+0.0` in [`wgrad_f32`] when
/// the padded input is finite; the caller checks that (a NaN or infinity there would make them
/// NaN) and otherwise runs [`wgrad_f32`].
///
/// # Safety
/// The CPU must run AVX2 and FMA. (Slice bounds are checked at entry.)
#[target_feature(enable = "avx2,fma")]
pub(in crate::backend::cpu) unsafe fn wgrad_f32_narrow<const K: usize>(
    pad: &[f32],
    cin: usize,
    hp: usize,
    wp: usize,
    g: &[f32],
    cout: usize,
    h: usize,
    w: usize,
    dw: &mut [f32],
) {
    assert!(cout % OBLOCK == 0 && w <= WCHUNK);
    let kk = K * K;
    // Tap `(i, kh, kw)` at `(y, x)`: row `i * hp + y + kh < cin * hp`, column `x + kw < wp`.
    assert!(pad.len() >= cin * hp * wp && wp >= WCHUNK + K - 1 && hp >= h + K - 1);
    assert!(g.len() >= cout * h * WCHUNK && dw.len() >= cout * cin * kk);
    if cout == 0 || h == 0 || w == 0 {
        // No lane sum but zeros: `dw += +0.0` changes `-0.0` to `+0.0`, as in `wgrad_f32`.
        for v in dw[..cout * cin * kk].iter_mut() {
            *v += 0.0;
        }
        return;
    }
    // `g (cout, h, 8)` transposed to `gt (h, 8, cp)`, channels `cout..cp` zero.
    let cp = narrow_channels(cout);
    let mut gt = vec![0f32; h * WCHUNK * cp];
    for o in 0..cout {
        for (yx, &v) in g[o * h * WCHUNK..][..h * WCHUNK].iter().enumerate() {
            gt[yx * cp + o] = v;
        }
    }
    let ncol = cin * kk;
    let tap = |n: usize| {
        let (i, t) = (n / kk, n % kk);
        (i * hp + t / K) * wp + t % K
    };
    let (pp, gq) = (pad.as_ptr(), gt.as_ptr());
    let mut o0 = 0;
    while o0 < cout {
        let mut n0 = 0;
        while n0 < ncol {
            let off: [usize; 8] = std::array::from_fn(|j| tap((n0 + j).min(ncol - 1)));
            let mut lanes = [[[_mm256_setzero_ps(); 8]; 1]; WCHUNK];
            for (x, l) in lanes.iter_mut().enumerate().take(w) {
                // SAFETY: taps inside `pad` and rows of `gt` (bounds above), channels
                // `o0 + 8 <= cp`.
                *l = unsafe { wgrad_narrow_tile::<1, 8>(pp, wp, gq, cp, o0, h, x, &off) };
            }
            // SAFETY: this function's own features include `add_lanes`'.
            let sums = unsafe { add_lanes(&lanes) };
            if n0 + 8 <= ncol && o0 + 8 <= cout {
                // SAFETY: this function's own features include `add_block`'s; channels
                // `o0 + 8 <= cout` and columns `n0 + 8 <= ncol` of `dw (cout, ncol)`.
                unsafe { add_block(&sums[0], dw[o0 * ncol + n0..].as_mut_ptr(), ncol) };
            } else {
                // SAFETY: this function's own features include `add_tile`'s.
                unsafe { add_tile(&sums, o0, cout, n0, ncol, dw) };
            }
            n0 += 8;
        }
        o0 += 8;
    }
}

/// The 8 lane sums of [`wgrad_f32_narrow`] added in [`hsum`]'s tree:
/// `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`.
///
/// # Safety
/// The CPU must run AVX2.
#[target_feature(enable = "avx2,fma")]
unsafe fn add_lanes<const MB: usize, const NB: usize>(
    l: &[[[__m256; NB]; MB]; WCHUNK],
) -> [[__m256; NB]; MB] {
    let mut out = [[_mm256_setzero_ps(); NB]; MB];
    for (m, row) in out.iter_mut().enumerate() {
        for (n, v) in row.iter_mut().enumerate() {
            let s0 = _mm256_add_ps(l[0][m][n], l[4][m][n]);
            let s1 = _mm256_add_ps(l[1][m][n], l[5][m][n]);
            let s2 = _mm256_add_ps(l[2][m][n], l[6][m][n]);
            let s3 = _mm256_add_ps(l[3][m][n], l[7][m][n]);
            *v = _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3));
        }
    }
    out
}

/// `dw[o0 + k, n0 + c] += sums[c][k]` for `k, c < 8` (`dw` pointing at `(o0, n0)`, rows of
/// `ncol`): the 8 x 8 block transposed in registers, then added to the rows of `dw` 8 columns
/// at a time (the same additions as one by one).
///
/// # Safety
/// The CPU must run AVX2; `dw` must point at 8 rows of `ncol` with 8 columns each.
#[target_feature(enable = "avx2,fma")]
unsafe fn add_block(sums: &[__m256; 8], dw: *mut f32, ncol: usize) {
    let r = sums;
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    let rows = [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ];
    for (k, v) in rows.iter().enumerate() {
        // SAFETY: row `k < 8` of the block, 8 columns (the caller's bound).
        unsafe {
            let d = dw.add(k * ncol);
            _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), *v));
        }
    }
}

/// `dw[o, n] += sums` for the channels `o0 .. min(o0 + 8 * MB, cout)` and weight columns
/// `n0 .. min(n0 + NB, ncol)` of a tile, `dw (cout, ncol)`.
///
/// # Safety
/// The CPU must run AVX2.
#[target_feature(enable = "avx2,fma")]
unsafe fn add_tile<const MB: usize, const NB: usize>(
    sums: &[[__m256; NB]; MB],
    o0: usize,
    cout: usize,
    n0: usize,
    ncol: usize,
    dw: &mut [f32],
) {
    let nb = NB.min(ncol - n0);
    for (m, row) in sums.iter().enumerate() {
        for (n, v) in row.iter().enumerate().take(nb) {
            let mut tmp = [0f32; 8];
            // SAFETY: `tmp` holds 8 floats.
            unsafe { _mm256_storeu_ps(tmp.as_mut_ptr(), *v) };
            let ob = o0 + 8 * m;
            for (l, t) in tmp.iter().enumerate().take(cout.saturating_sub(ob)) {
                dw[(ob + l) * ncol + n0 + n] += *t;
            }
        }
    }
}

/// `MB` vectors (8 output channels each) times `NT` taps of the batched f32 weight gradient of
/// [`super::wgrad_batch_f32`]: `acc[m][j] = fma(g[p, o], xp[poff[p] + toff[j]], acc)` over the
/// positions `p` of the whole batch, in order, from zero. `gt` is the tile's transposed output
/// gradient `(positions, 8 * MB)`.
///
/// # Safety
/// The CPU must run AVX2 and FMA; `gt` must hold `poff.len() * 8 * MB` floats and every
/// `poff[p] + toff[j]` must lie inside `xp` (the caller checks both).
#[target_feature(enable = "avx2,fma")]
pub(in crate::backend::cpu) unsafe fn wgrad_batch_tile<const MB: usize, const NT: usize>(
    xp: *const f32,
    poff: &[usize],
    toff: &[usize; NT],
    gt: *const f32,
) -> [[__m256; NT]; MB] {
    let mut acc = [[_mm256_setzero_ps(); NT]; MB];
    for (p, &po) in poff.iter().enumerate() {
        let mut gv = [_mm256_setzero_ps(); MB];
        for (m, v) in gv.iter_mut().enumerate() {
            // SAFETY: row `p` of `gt`, vector `m` (the caller's bound).
            *v = unsafe { _mm256_loadu_ps(gt.add(p * 8 * MB + 8 * m)) };
        }
        // SAFETY: `po + toff[j]` inside `xp` (the caller's bound).
        let base = unsafe { xp.add(po) };
        for j in 0..NT {
            // SAFETY: as above.
            let s = _mm256_broadcast_ss(unsafe { &*base.add(toff[j]) });
            for m in 0..MB {
                acc[m][j] = _mm256_fmadd_ps(gv[m], s, acc[m][j]);
            }
        }
    }
    acc
}
