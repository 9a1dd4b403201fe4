//! x86-64 code paths of the CPU kernels: run-time feature detection, the explicit AVX2 + FMA
//! ([`avx2`]) and AVX-512 ([`avx512`]) kernels, and the builds of the portable loops compiled
//! for those features. Every `unsafe fn` here is unsafe for one reason, stated in its
//! `# Safety` section: it is compiled for CPU features that the caller must have checked
//! ([`has_fma`], [`has_avx512`]); slice bounds are checked inside (asserts at entry, then raw
//! pointer reads that stay within them).
//!
//! Each explicit kernel performs the same multiply-adds in the same order as the portable loop
//! it replaces, so which path runs never changes a result (tested bit for bit).

pub(super) mod avx2;
pub(super) mod avx512;

use super::{Real, OBLOCK, WCHUNK};
use candle_core::DType;
use std::sync::OnceLock;

/// True when the CPU runs AVX2 and FMA (checked once).
pub(super) fn has_fma() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// True when the CPU runs AVX-512 F, VL and DQ (and AVX2 and FMA; checked once): the f32
/// convolution then uses 512-bit vectors, and the batch-norm loops run in their AVX-512 build.
pub(super) fn has_avx512() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512dq")
            && has_fma()
    })
}

/// `&[T]` as `&[U]` when they are the same type (`T::DTYPE == U::DTYPE`): the explicit f32 and
/// f64 kernels called from the generic code.
fn same<T: Real, U: Real>(v: &[T]) -> &[U] {
    assert_eq!(T::DTYPE, U::DTYPE);
    // SAFETY: T and U are the same type (checked above; `Real` is sealed, and f32 and f64 have
    // different dtypes): same layout and length.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const U, v.len()) }
}

/// `&mut [T]` as `&mut [U]`, as [`same`].
fn same_mut<T: Real, U: Real>(v: &mut [T]) -> &mut [U] {
    assert_eq!(T::DTYPE, U::DTYPE);
    // SAFETY: as in `same`; the borrow of `v` moves into the result.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut U, v.len()) }
}

/// Whether [`avx2::conv_f32_narrow`] computes the convolution of images `w` columns wide in
/// element type `T` (f32, AVX2 + FMA, `w <=` [`avx2::NARROW_W`]).
pub(super) fn narrow_applies<T: Real>(w: usize) -> bool {
    T::DTYPE == DType::F32 && has_fma() && w <= avx2::NARROW_W
}

/// The weights `wt (cout, cin, k, k)` packed for the f32 convolution of narrow images
/// ([`avx2::conv_f32_narrow`], output channel contiguous) when it applies: `T` is f32, the CPU
/// runs AVX2 and FMA and the image is at most [`avx2::NARROW_W`] columns wide. `None`
/// otherwise. Packed once per batch, then given to [`conv_image`] for every image.
pub(super) fn narrow_weights<T: Real>(
    wt: &[T],
    cout: usize,
    cin: usize,
    k: usize,
    w: usize,
) -> Option<Vec<T>> {
    narrow_applies::<T>(w).then(|| avx2::pack_narrow(wt, cout, cin, k * k))
}

/// [`super::conv::conv_image`] with the explicit kernels where the CPU runs AVX2 and FMA: f32
/// images at most [`avx2::NARROW_W`] columns wide vectorised over the output channels when
/// `packed` holds the weights from [`narrow_weights`]; otherwise f32 in blocks of 8 output
/// channels (AVX-512) or 4 (AVX2), f64 in blocks of 4 (AVX2), the remaining channels one by one
/// with the AVX2 + FMA build of the portable loop. All give the same results bit for bit.
/// Returns false, having done nothing, when the CPU lacks AVX2 or FMA (the caller then runs the
/// portable loop).
pub(super) fn conv_image<T: Real, const K: usize>(
    pad: &[T],
    cin: usize,
    hp: usize,
    wp: usize,
    wt: &[T],
    packed: Option<&[T]>,
    cout: usize,
    h: usize,
    w: usize,
    out: &mut [T],
) -> bool {
    if !has_fma() {
        return false;
    }
    if let (DType::F32, Some(packed), true) = (T::DTYPE, packed, cin > 0) {
        let (pad, packed, out) = (same::<T, f32>(pad), same(packed), same_mut::<T, f32>(out));
        let cp = avx2::narrow_channels(cout);
        // SAFETY: the CPU runs AVX2 and FMA (checked above).
        unsafe { avx2::conv_f32_narrow::<K>(pad, cin, hp, wp, packed, cp, cout, h, w, out) };
        return true;
    }
    if T::DTYPE == DType::F32 {
        let (pad, wt, out) = (same::<T, f32>(pad), same(wt), same_mut::<T, f32>(out));
        // AVX-512: blocks of 8 output channels; the rest below (offset slices).
        let (wt, out, cout) = if has_avx512() && cout >= avx512::OBLOCK {
            let full = cout / avx512::OBLOCK * avx512::OBLOCK;
            // SAFETY: the CPU runs AVX-512F (checked at run time).
            unsafe { avx512::conv_f32::<K>(pad, cin, hp, wp, wt, full, h, w, out) };
            let kk = K * K;
            (
                &wt[full * cin * kk..],
                &mut out[full * h * w..],
                cout - full,
            )
        } else {
            (wt, out, cout)
        };
        let full = cout / OBLOCK * OBLOCK;
        // SAFETY: the CPU runs AVX2 and FMA (checked above).
        unsafe { avx2::conv_f32::<K>(pad, cin, hp, wp, wt, full, h, w, out) };
        for o in full..cout {
            // SAFETY: as above.
            unsafe { avx2::conv_block::<f32, K>(pad, cin, hp, wp, wt, o, h, w, out) };
        }
    } else {
        // f64, the other `Real` type (`same` checks it).
        let (pad, wt, out) = (same::<T, f64>(pad), same(wt), same_mut::<T, f64>(out));
        let full = cout / OBLOCK * OBLOCK;
        // SAFETY: the CPU runs AVX2 and FMA (checked above).
        unsafe { avx2::conv_f64::<K>(pad, cin, hp, wp, wt, full, h, w, out) };
        for o in full..cout {
            // SAFETY: as above.
            unsafe { avx2::conv_block::<f64, K>(pad, cin, hp, wp, wt, o, h, w, out) };
        }
    }
    true
}

/// [`super::conv::wgrad_image`] with the explicit kernels where the CPU runs AVX2 and FMA: f32
/// images `w <=` [`avx2::NARROW_WG_W`] columns wide (`wg = 8`) vectorised over the output
/// channels ([`avx2::wgrad_f32_narrow`], when the padded input is finite), otherwise f32 in
/// blocks of 8 output channels (AVX-512) or 4 (AVX2); the remaining channels one by one with the
/// AVX2 + FMA build of the portable loop; f64 with the AVX2 + FMA build of the portable loop.
/// All give the same results bit for bit. Returns false, having done nothing, when the CPU
/// lacks AVX2 or FMA.
pub(super) fn wgrad_image<T: Real, const K: usize>(
    pad: &[T],
    cin: usize,
    hp: usize,
    wp: usize,
    g: &[T],
    cout: usize,
    h: usize,
    w: usize,
    wg: usize,
    dw: &mut [T],
) -> bool {
    if !has_fma() {
        return false;
    }
    if T::DTYPE == DType::F32 {
        let (pad, g, dw) = (same::<T, f32>(pad), same(g), same_mut::<T, f32>(dw));
        if wg == WCHUNK
            && w <= avx2::NARROW_WG_W
            && wgrad_f32_narrow_image::<K>(pad, cin, hp, wp, g, cout, h, w, dw)
        {
            return true;
        }
        // AVX-512: blocks of 8 output channels, then the AVX2 kernel from channel `lo` on (the
        // same sums in the same order: bit-identical results).
        let lo = if has_avx512() && cout >= avx512::OBLOCK {
            let full = cout / avx512::OBLOCK * avx512::OBLOCK;
            // SAFETY: the CPU runs AVX-512 F, AVX2 and FMA (checked at run time).
            unsafe { avx512::wgrad_f32::<K>(pad, cin, hp, wp, g, full, h, wg, dw) };
            full
        } else {
            0
        };
        let kk = K * K;
        let (g, dw, cout) = (&g[lo * h * wg..], &mut dw[lo * cin * kk..], cout - lo);
        let full = cout / OBLOCK * OBLOCK;
        // SAFETY: the CPU runs AVX2 and FMA (checked above).
        unsafe { avx2::wgrad_f32::<K>(pad, cin, hp, wp, g, full, h, wg, dw) };
        for o in full..cout {
            // SAFETY: as above.
            unsafe { avx2::wgrad_block::<f32, K>(pad, cin, hp, wp, g, o, h, wg, dw) };
        }
    } else {
        // SAFETY: the CPU runs AVX2 and FMA (checked above).
        unsafe { avx2::wgrad_image::<T, K>(pad, cin, hp, wp, g, cout, h, wg, dw) };
    }
    true
}

/// The f32 weight gradient of one narrow image (`w <= 8`, rows of `g` padded to `WCHUNK`)
/// vectorised over the output channels: the full 4-channel blocks by
/// [`avx2::wgrad_f32_narrow`], the rest one by one with the AVX2 + FMA build of the portable
/// loop. The columns `x >= w` of the rows of [`avx2::wgrad_f32`] add `+0.0` only where the
/// input is finite: for `w < WCHUNK` with a non-finite padded input this returns false, having
/// done nothing (the caller then runs the row kernels). The caller checked that the CPU runs
/// AVX2 and FMA ([`has_fma`]).
fn wgrad_f32_narrow_image<const K: usize>(
    pad: &[f32],
    cin: usize,
    hp: usize,
    wp: usize,
    g: &[f32],
    cout: usize,
    h: usize,
    w: usize,
    dw: &mut [f32],
) -> bool {
    if w < WCHUNK && !pad.iter().fold(true, |a, v| a & v.is_finite()) {
        return false;
    }
    let full = cout / OBLOCK * OBLOCK;
    // SAFETY: the CPU runs AVX2 and FMA (the caller's check).
    unsafe { avx2::wgrad_f32_narrow::<K>(pad, cin, hp, wp, g, full, h, w, dw) };
    for o in full..cout {
        // SAFETY: as above.
        unsafe { avx2::wgrad_block::<f32, K>(pad, cin, hp, wp, g, o, h, WCHUNK, dw) };
    }
    true
}

/// Weight gradient `(cout, cin, k, k)` of the f32 same convolution of `x (b, cin, h, w)` (image
/// stride `xs`) given the output gradient `gr (b, cout, h, w)` (image stride `gs`), vectorised
/// over the output channels for many channels on small images, where the CPU runs AVX2 and FMA
/// (`None` otherwise). The batch is zero-padded once and the output gradient transposed to
/// `(position, channel)` per tile of 16 (or 8) output channels; each register tile of 16
/// channels times 6 taps (8 x 12 for a last tile of 8) then sums over every position of the
/// whole batch in order, in registers (no im2col matrix, no partial sums in memory). Every
/// weight is computed by one task whatever the thread count (tiles of output channels run in
/// parallel): the result does not depend on it.
pub(super) fn wgrad_batch_f32(
    x: &[f32],
    xs: usize,
    gr: &[f32],
    gs: usize,
    b: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
) -> Option<Vec<f32>> {
    use rayon::prelude::*;
    if !has_fma() {
        return None;
    }
    let (hw, kk, p) = (h * w, k * k, k / 2);
    let (hp, wp) = (h + k - 1, w + k - 1);
    let plane = hp * wp;
    let red = cin * kk;
    let positions = b * hw;
    let mut dw = vec![0f32; cout * red];
    if positions == 0 || red == 0 || cout == 0 {
        return Some(dw);
    }
    assert!(x.len() >= (b - 1) * xs + cin * hw && gr.len() >= (b - 1) * gs + cout * hw);
    let mut xp = vec![0f32; b * cin * plane];
    xp.par_chunks_mut(cin * plane)
        .enumerate()
        .for_each(|(n, dst)| {
            for i in 0..cin {
                for y in 0..h {
                    dst[i * plane + (y + p) * wp + p..][..w]
                        .copy_from_slice(&x[n * xs + (i * h + y) * w..][..w]);
                }
            }
        });
    let poff: Vec<usize> = (0..positions)
        .map(|q| {
            let (n, yx) = (q / hw, q % hw);
            n * cin * plane + (yx / w) * wp + yx % w
        })
        .collect();
    let toff: Vec<usize> = (0..red)
        .map(|it| {
            let (i, t) = (it / kk, it % kk);
            i * plane + (t / k) * wp + t % k
        })
        .collect();
    // Tiles of output channels, each writing its own rows of `dw`: 16 wide, the last one 8 wide
    // when 8 or fewer channels remain.
    // Every `poff[q] + toff[j]` is at most `(b - 1) * cin * plane + (h - 1) * wp + w - 1 +
    // (cin - 1) * plane + (k - 1) * wp + k - 1 < b * cin * plane = xp.len()`.
    dw.par_chunks_mut(16 * red)
        .enumerate()
        .for_each(|(ti, out)| {
            let (o0, nch) = (16 * ti, out.len() / red);
            let tw = if nch > 8 { 16 } else { 8 };
            let mut gt = vec![0f32; positions * tw];
            for q in 0..positions {
                let (n, yx) = (q / hw, q % hw);
                for j in 0..nch {
                    gt[q * tw + j] = gr[n * gs + (o0 + j) * hw + yx];
                }
            }
            let mut store = |it0: usize, vals: &dyn Fn(usize, usize) -> f32, nt: usize| {
                for j in 0..nt.min(red - it0) {
                    for c in 0..nch {
                        out[c * red + it0 + j] = vals(c, j);
                    }
                }
            };
            let mut it0 = 0;
            while it0 < red {
                if tw == 16 {
                    let t: [usize; 6] = std::array::from_fn(|j| toff[(it0 + j).min(red - 1)]);
                    // SAFETY: AVX2 + FMA checked above; `gt` holds `positions * 16`; offsets
                    // inside `xp` (bound above).
                    let acc = unsafe {
                        avx2::wgrad_batch_tile::<2, 6>(xp.as_ptr(), &poff, &t, gt.as_ptr())
                    };
                    let lanes = unpack::<2, 6>(&acc);
                    store(it0, &|c, j| lanes[c / 8][j][c % 8], 6);
                    it0 += 6;
                } else {
                    let t: [usize; 12] = std::array::from_fn(|j| toff[(it0 + j).min(red - 1)]);
                    // SAFETY: as above, `gt` holds `positions * 8`.
                    let acc = unsafe {
                        avx2::wgrad_batch_tile::<1, 12>(xp.as_ptr(), &poff, &t, gt.as_ptr())
                    };
                    let lanes = unpack::<1, 12>(&acc);
                    store(it0, &|c, j| lanes[0][j][c], 12);
                    it0 += 12;
                }
            }
        });
    Some(dw)
}

/// [`wgrad_batch_f32`] for element type `T`: `None` unless `T` is f32, the image is at most
/// [`avx2::NARROW_W`] columns wide and the CPU runs AVX2 and FMA.
pub(super) fn wgrad_batch<T: Real>(
    x: &[T],
    xs: usize,
    gr: &[T],
    gs: usize,
    b: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
) -> Option<Vec<T>> {
    if !narrow_applies::<T>(w) {
        return None;
    }
    let dw = wgrad_batch_f32(same(x), xs, same(gr), gs, b, cin, h, w, cout, k)?;
    let mut dw = std::mem::ManuallyDrop::new(dw);
    // SAFETY: `T` is f32 (checked by `narrow_applies`): the vector's allocation, length and
    // capacity are those of a `Vec<T>`.
    Some(unsafe { Vec::from_raw_parts(dw.as_mut_ptr() as *mut T, dw.len(), dw.capacity()) })
}

/// The lanes of a tile of accumulators.
fn unpack<const MB: usize, const NT: usize>(
    acc: &[[std::arch::x86_64::__m256; NT]; MB],
) -> [[[f32; 8]; NT]; MB] {
    let mut out = [[[0f32; 8]; NT]; MB];
    for m in 0..MB {
        for j in 0..NT {
            // SAFETY: `__m256` and `[f32; 8]` have the same size, any bits are a value.
            out[m][j] =
                unsafe { std::mem::transmute::<std::arch::x86_64::__m256, [f32; 8]>(acc[m][j]) };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{test_data as data, with_padded};
    use super::*;

    /// The AVX-512 weight gradient sums the same products in the same order as the AVX2 one:
    /// equal bit for bit, so switching kernels changes no training result.
    #[test]
    fn avx512_weight_gradient_equals_avx2_bit_for_bit() {
        if !has_avx512() {
            eprintln!("no AVX-512 on this CPU: nothing to compare");
            return;
        }
        const K: usize = 3;
        let (cin, cout, h, w) = (5, 16, 7, 24);
        let x = data(cin * h * w, 1);
        let wg = w.div_ceil(WCHUNK) * WCHUNK;
        let g = data(cout * h * wg, 2);
        let (mut a, mut b) = (data(cout * cin * K * K, 3), data(cout * cin * K * K, 3));
        with_padded(&x, cin, h, w, K, |pad, hp, wp| {
            // SAFETY: the CPU runs AVX-512 F, AVX2 and FMA (checked above).
            unsafe { avx512::wgrad_f32::<K>(pad, cin, hp, wp, &g, cout, h, wg, &mut a) };
            // SAFETY: as above.
            unsafe { avx2::wgrad_f32::<K>(pad, cin, hp, wp, &g, cout, h, wg, &mut b) };
        });
        assert!(a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()));
    }

    /// The AVX2 + FMA paths of the convolution (explicit kernels and the FMA build of the
    /// portable loop for the channels left over) give the portable loop with FMA bit for bit.
    #[test]
    fn explicit_convolution_equals_the_portable_fma_loop_bit_for_bit() {
        if !has_fma() {
            eprintln!("no AVX2 + FMA on this CPU: nothing to compare");
            return;
        }
        const K: usize = 3;
        // 13 output channels: AVX-512 and AVX2 blocks and single channels; 21 columns: a
        // ragged chunk.
        let (cin, cout, h, w) = (3, 13, 5, 21);
        let x = data(cin * h * w, 6);
        let wt = data(cout * cin * K * K, 7);
        let mut a = vec![0f32; cout * h * w];
        let mut b = vec![0f32; cout * h * w];
        with_padded(&x, cin, h, w, K, |pad, hp, wp| {
            assert!(conv_image::<f32, K>(
                pad, cin, hp, wp, &wt, None, cout, h, w, &mut a
            ));
            super::super::conv::conv_image::<f32, K, true>(
                pad, cin, hp, wp, &wt, cout, h, w, &mut b,
            );
        });
        assert!(a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()));
    }

    /// f64 values over the whole mantissa from two f32 sequences.
    fn data64(n: usize, seed: u32) -> Vec<f64> {
        let (a, b) = (data(n, seed), data(n, seed + 1000));
        a.iter()
            .zip(&b)
            .map(|(u, v)| *u as f64 + *v as f64 * 2f64.powi(-26))
            .collect()
    }

    /// The f64 convolution and weight gradient of the explicit paths equal the portable loops
    /// with FMA bit for bit, for kernels 1, 3 and 5 and channel counts that fill the 4-channel
    /// blocks and leave some over. There is no AVX-512 f64 path: a CPU with AVX-512 runs these
    /// same kernels, so f64 gives the same bits on every x86-64 CPU with AVX2 + FMA.
    fn f64_paths_bit_for_bit<const K: usize>() {
        let (cin, cout, h, w) = (3, 13, 5, 21);
        let x = data64(cin * h * w, 11);
        let wt = data64(cout * cin * K * K, 12);
        let wg = w.div_ceil(WCHUNK) * WCHUNK;
        let mut g = vec![0f64; cout * h * wg];
        let gd = data64(cout * h * w, 13);
        for row in 0..cout * h {
            g[row * wg..][..w].copy_from_slice(&gd[row * w..][..w]);
        }
        let (mut a, mut b) = (vec![f64::NAN; cout * h * w], vec![f64::NAN; cout * h * w]);
        let init = data64(cout * cin * K * K, 14);
        let (mut c, mut d) = (init.clone(), init);
        with_padded(&x, cin, h, w, K, |pad, hp, wp| {
            assert!(conv_image::<f64, K>(
                pad, cin, hp, wp, &wt, None, cout, h, w, &mut a
            ));
            super::super::conv::conv_image::<f64, K, true>(
                pad, cin, hp, wp, &wt, cout, h, w, &mut b,
            );
            assert!(wgrad_image::<f64, K>(
                pad, cin, hp, wp, &g, cout, h, w, wg, &mut c
            ));
            super::super::conv::wgrad_image::<f64, K, true>(
                pad, cin, hp, wp, &g, cout, h, wg, &mut d,
            );
        });
        assert!(
            a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()),
            "K {K}"
        );
        assert!(
            c.iter().zip(&d).all(|(u, v)| u.to_bits() == v.to_bits()),
            "K {K}"
        );
    }

    #[test]
    fn f64_conv_is_bit_identical_on_every_kernel_path() {
        if !has_fma() {
            eprintln!("no AVX2 + FMA on this CPU: nothing to compare");
            return;
        }
        f64_paths_bit_for_bit::<1>();
        f64_paths_bit_for_bit::<3>();
        f64_paths_bit_for_bit::<5>();
    }

    /// Widths, heights and channel counts of the narrow-image tests: `w` 1 to 8 (ragged
    /// position tiles), channels that do and do not fill the 16- and 8-channel tiles.
    const NARROW_W_H: [(usize, usize); 8] = [
        (1, 1),
        (2, 2),
        (3, 5),
        (4, 4),
        (5, 3),
        (7, 6),
        (8, 8),
        (4, 9),
    ];
    const NARROW_C: [usize; 6] = [1, 3, 8, 12, 17, 64];

    /// The convolution of narrow images vectorised over the output channels gives the row
    /// kernels and the portable loop with FMA bit for bit.
    fn narrow_convolution_bit_for_bit<const K: usize>() {
        for (s, &(w, h)) in NARROW_W_H.iter().enumerate() {
            for &cin in &NARROW_C {
                for &cout in &NARROW_C {
                    let seed = (s * 100 + cin * 7 + cout) as u32;
                    let x = data(cin * h * w, seed);
                    let wt = data(cout * cin * K * K, seed + 1);
                    // Packed whatever the width (`narrow_weights` packs up to `avx2::NARROW_W`).
                    let packed = avx2::pack_narrow(&wt, cout, cin, K * K);
                    let mut a = vec![f32::NAN; cout * h * w];
                    let mut b = vec![f32::NAN; cout * h * w];
                    let mut c = vec![f32::NAN; cout * h * w];
                    with_padded(&x, cin, h, w, K, |pad, hp, wp| {
                        assert!(conv_image::<f32, K>(
                            pad,
                            cin,
                            hp,
                            wp,
                            &wt,
                            Some(&packed),
                            cout,
                            h,
                            w,
                            &mut a
                        ));
                        assert!(conv_image::<f32, K>(
                            pad, cin, hp, wp, &wt, None, cout, h, w, &mut b
                        ));
                        super::super::conv::conv_image::<f32, K, true>(
                            pad, cin, hp, wp, &wt, cout, h, w, &mut c,
                        );
                    });
                    let same = |u: &[f32], v: &[f32]| {
                        u.iter().zip(v).all(|(p, q)| p.to_bits() == q.to_bits())
                    };
                    assert!(same(&a, &b), "K {K} w {w} h {h} cin {cin} cout {cout}");
                    assert!(same(&a, &c), "K {K} w {w} h {h} cin {cin} cout {cout}");
                }
            }
        }
    }

    #[test]
    fn narrow_convolution_equals_the_row_kernels_bit_for_bit() {
        if !has_fma() {
            eprintln!("no AVX2 + FMA on this CPU: nothing to compare");
            return;
        }
        narrow_convolution_bit_for_bit::<1>();
        narrow_convolution_bit_for_bit::<3>();
        narrow_convolution_bit_for_bit::<5>();
    }

    /// The row kernels' weight gradient of one image: `avx2::wgrad_f32` for the full 4-channel
    /// blocks, the AVX2 + FMA build of the portable loop for the rest.
    fn row_wgrad<const K: usize>(
        pad: &[f32],
        cin: usize,
        hp: usize,
        wp: usize,
        g: &[f32],
        cout: usize,
        h: usize,
        dw: &mut [f32],
    ) {
        let full = cout / OBLOCK * OBLOCK;
        // SAFETY: the callers checked that the CPU runs AVX2 and FMA.
        unsafe { avx2::wgrad_f32::<K>(pad, cin, hp, wp, g, full, h, WCHUNK, dw) };
        for o in full..cout {
            // SAFETY: as above.
            unsafe { avx2::wgrad_block::<f32, K>(pad, cin, hp, wp, g, o, h, WCHUNK, dw) };
        }
    }

    /// [`wgrad_image`]'s narrow path at any `w <= 8` (it dispatches only up to
    /// `avx2::NARROW_WG_W`; [`wgrad_f32_narrow_image`] above that): the row kernels where the
    /// narrow path declines (a non-finite input with idle columns).
    fn narrow_wgrad<const K: usize>(
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
        if w <= avx2::NARROW_WG_W {
            assert!(wgrad_image::<f32, K>(
                pad, cin, hp, wp, g, cout, h, w, WCHUNK, dw
            ));
        } else if !wgrad_f32_narrow_image::<K>(pad, cin, hp, wp, g, cout, h, w, dw) {
            row_wgrad::<K>(pad, cin, hp, wp, g, cout, h, dw);
        }
    }

    /// The weight gradient of narrow images vectorised over the output channels, accumulated
    /// over 3 images into weights that start nonzero (some `-0.0`), gives the row kernels bit
    /// for bit; also with an infinity in the input (then the row kernels run).
    fn narrow_weight_gradient_bit_for_bit<const K: usize>() {
        for (s, &(w, h)) in NARROW_W_H.iter().enumerate() {
            for &cin in &NARROW_C {
                for &cout in &NARROW_C {
                    for inf in [false, true] {
                        let seed = (s * 100 + cin * 7 + cout) as u32;
                        let mut init = data(cout * cin * K * K, seed + 2);
                        for v in init.iter_mut().step_by(5) {
                            *v = -0.0;
                        }
                        let (mut a, mut b) = (init.clone(), init);
                        for n in 0..3 {
                            let mut x = data(cin * h * w, seed + 10 * n);
                            if inf && n == 1 {
                                x[cin * h * w - 1] = f32::INFINITY;
                            }
                            // `g` with rows padded with zeros to 8 columns, as the caller does.
                            let gd = data(cout * h * w, seed + 10 * n + 1);
                            let mut g = vec![0f32; cout * h * WCHUNK];
                            for row in 0..cout * h {
                                g[row * WCHUNK..][..w].copy_from_slice(&gd[row * w..][..w]);
                            }
                            with_padded(&x, cin, h, w, K, |pad, hp, wp| {
                                narrow_wgrad::<K>(pad, cin, hp, wp, &g, cout, h, w, &mut a);
                                row_wgrad::<K>(pad, cin, hp, wp, &g, cout, h, &mut b);
                            });
                        }
                        assert!(
                            a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()),
                            "K {K} w {w} h {h} cin {cin} cout {cout} inf {inf}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn narrow_weight_gradient_equals_the_row_kernels_bit_for_bit() {
        if !has_fma() {
            eprintln!("no AVX2 + FMA on this CPU: nothing to compare");
            return;
        }
        narrow_weight_gradient_bit_for_bit::<1>();
        narrow_weight_gradient_bit_for_bit::<3>();
        narrow_weight_gradient_bit_for_bit::<5>();
    }

    /// Time of the forward convolution (twice: the input gradient is the same convolution)
    /// plus the weight gradient of a 64 -> 64 channel, 3 x 3 layer over 256 images of 8 x 8 to
    /// 2 x 2, one thread, the row kernels against the narrow ones (part 1 the convolutions, 2
    /// the weight gradient, 3 both). Run with
    /// `cargo test --release --lib narrow_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn narrow_speed() {
        if !has_fma() {
            return;
        }
        const K: usize = 3;
        let (b, cin, cout) = (256, 64, 64);
        for (h, w) in [(8, 8), (6, 6), (4, 4), (2, 2)] {
            let xs: Vec<Vec<f32>> = (0..b).map(|n| data(cin * h * w, n as u32)).collect();
            let mut g = vec![0f32; cout * h * WCHUNK];
            for row in 0..cout * h {
                g[row * WCHUNK..][..w].copy_from_slice(&data(w, row as u32 + 7));
            }
            let wt = data(cout * cin * K * K, 1);
            let mut out = vec![0f32; cout * h * w];
            let mut dw = vec![0f32; cout * cin * K * K];
            let mut time = |narrow: bool, part: usize| {
                let t = std::time::Instant::now();
                for _ in 0..3 {
                    let packed = Some(avx2::pack_narrow(&wt, cout, cin, K * K)).filter(|_| narrow);
                    for x in &xs {
                        with_padded(x, cin, h, w, K, |pad, hp, wp| {
                            for _ in 0..2 * (part & 1) {
                                conv_image::<f32, K>(
                                    pad,
                                    cin,
                                    hp,
                                    wp,
                                    &wt,
                                    packed.as_deref(),
                                    cout,
                                    h,
                                    w,
                                    &mut out,
                                );
                            }
                            if part & 2 == 0 {
                            } else if narrow {
                                narrow_wgrad::<K>(pad, cin, hp, wp, &g, cout, h, w, &mut dw);
                            } else {
                                row_wgrad::<K>(pad, cin, hp, wp, &g, cout, h, &mut dw);
                            }
                        });
                    }
                }
                t.elapsed().as_secs_f64() / 3.0
            };
            for part in [1, 1, 2, 2, 3, 3] {
                let (old, new) = (time(false, part), time(true, part));
                eprintln!(
                    "{h}x{w} part {part}: row kernels {:.2} ms, narrow {:.2} ms, ratio {:.2}",
                    old * 1e3,
                    new * 1e3,
                    old / new
                );
            }
        }
    }

    /// The batched weight gradient vectorised over the output channels equals an f64 sum of the
    /// same products (tolerance: 1e-5 of the sum of the products' magnitudes, f32 rounding of
    /// up to a few hundred additions), on ragged shapes (output channels filling 16-wide tiles,
    /// a last tile of 8 or fewer; odd batches and input channels; widths 1 to 8; kernels 1, 3
    /// and 5; tap tiles cut short), and gives the same bits on 1 and 3 threads.
    #[test]
    fn batched_weight_gradient_equals_f64_sums_and_ignores_threads() {
        if !has_fma() {
            eprintln!("no AVX2 + FMA on this CPU: the batched kernel does not run");
            return;
        }
        let shapes = [
            (3, 5, 17, 4, 4, 3),
            (2, 3, 8, 8, 8, 3),
            (5, 7, 24, 2, 3, 3),
            (1, 2, 3, 1, 1, 3),
            (4, 9, 40, 5, 3, 5),
            (3, 11, 16, 8, 2, 1),
        ];
        for (s, &(b, cin, cout, h, w, k)) in shapes.iter().enumerate() {
            let seed = 900 + s as u32;
            let x = data(b * cin * h * w, seed);
            let g = data(b * cout * h * w, seed + 1);
            let run = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| {
                        wgrad_batch_f32(&x, cin * h * w, &g, cout * h * w, b, cin, h, w, cout, k)
                            .unwrap()
                    })
            };
            let (one, three) = (run(1), run(3));
            assert!(one
                .iter()
                .zip(&three)
                .all(|(a, c)| a.to_bits() == c.to_bits()));
            let p = (k / 2) as isize;
            for o in 0..cout {
                for i in 0..cin {
                    for t in 0..k * k {
                        let (dy, dx) = ((t / k) as isize - p, (t % k) as isize - p);
                        let (mut sum, mut mag) = (0.0f64, 0.0f64);
                        for n in 0..b {
                            for y in 0..h as isize {
                                for xx in 0..w as isize {
                                    let (sy, sx) = (y + dy, xx + dx);
                                    if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                                        continue;
                                    }
                                    let gv = g[((n * cout + o) * h + y as usize) * w + xx as usize];
                                    let xv = x[((n * cin + i) * h + sy as usize) * w + sx as usize];
                                    sum += gv as f64 * xv as f64;
                                    mag += (gv as f64 * xv as f64).abs();
                                }
                            }
                        }
                        let got = one[(o * cin + i) * k * k + t] as f64;
                        assert!(
                            (got - sum).abs() <= 1e-5 * mag + 1e-30,
                            "shape {s} dw[{o}, {i}, {t}] = {got}, f64 {sum}"
                        );
                    }
                }
            }
        }
    }
}
