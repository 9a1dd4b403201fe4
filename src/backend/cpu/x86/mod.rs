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

use super::{Real, OBLOCK};
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

/// [`super::conv::conv_image`] with the explicit kernels where the CPU runs AVX2 and FMA: f32 in
/// blocks of 8 output channels (AVX-512) or 4 (AVX2), f64 in blocks of 4 (AVX2), the remaining
/// channels one by one with the AVX2 + FMA build of the portable loop. Returns false, having
/// done nothing, when the CPU lacks AVX2 or FMA (the caller then runs the portable loop).
pub(super) fn conv_image<T: Real, const K: usize>(
    pad: &[T],
    cin: usize,
    hp: usize,
    wp: usize,
    wt: &[T],
    cout: usize,
    h: usize,
    w: usize,
    out: &mut [T],
) -> bool {
    if !has_fma() {
        return false;
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

/// [`super::conv::wgrad_image`] with the explicit kernels where the CPU runs AVX2 and FMA: f32 in
/// blocks of 8 output channels (AVX-512) or 4 (AVX2), the remaining channels one by one with the
/// AVX2 + FMA build of the portable loop; f64 with the AVX2 + FMA build of the portable loop.
/// Returns false, having done nothing, when the CPU lacks AVX2 or FMA.
pub(super) fn wgrad_image<T: Real, const K: usize>(
    pad: &[T],
    cin: usize,
    hp: usize,
    wp: usize,
    g: &[T],
    cout: usize,
    h: usize,
    wg: usize,
    dw: &mut [T],
) -> bool {
    if !has_fma() {
        return false;
    }
    if T::DTYPE == DType::F32 {
        let (pad, g, dw) = (same::<T, f32>(pad), same(g), same_mut::<T, f32>(dw));
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

#[cfg(test)]
mod tests {
    use super::super::{test_data as data, with_padded, WCHUNK};
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
                pad, cin, hp, wp, &wt, cout, h, w, &mut a
            ));
            super::super::conv::conv_image::<f32, K, true>(
                pad, cin, hp, wp, &wt, cout, h, w, &mut b,
            );
        });
        assert!(a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()));
    }
}
