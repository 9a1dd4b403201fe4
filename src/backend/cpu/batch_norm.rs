//! Batch norm on NCHW tensors: per-channel batch statistics ([`channel_stats`], accumulated in
//! f64), the per-channel affine map of the forward and the inverse ([`channel_affine`]), and
//! the closed-form backward of training-mode batch norm ([`batch_norm_backward`]).
//!
//! The element loops (`loops`) are written once; on x86-64 with AVX-512 they run as a second
//! build compiled for it (the private `x86` module), vectorised 16 lanes (f32) or 8 lanes (f64)
//! wide: the same IEEE operations in the same order, so the same results bit for bit (Rust never
//! contracts a multiply and an add into an FMA on its own).

use super::{par_fill, supported, unsupported, with_images, Real};
use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

/// The element loops of batch norm, `#[inline(always)]` so that each build (baseline x86-64 or
/// AVX-512) compiles them for its own target features.
pub(super) mod loops {
    use super::Real;

    /// `sum x_j` in f64 ([`lane_sum`] order).
    #[inline(always)]
    pub(in crate::backend::cpu) fn sum_plain<T: Real>(x: &[T]) -> f64 {
        lane_sum(x, &x[..0], |v, _| (v, 0.0)).0
    }

    /// `sum (x_j - mean)^2` in f64 ([`lane_sum`] order).
    #[inline(always)]
    pub(in crate::backend::cpu) fn sum_sq_dev<T: Real>(x: &[T], mean: f64) -> f64 {
        lane_sum(x, &x[..0], |v, _| ((v - mean) * (v - mean), 0.0)).0
    }

    /// `(sum g_j, sum g_j (x_j - mu) inv)` in f64 ([`lane_sum`] order).
    #[inline(always)]
    pub(in crate::backend::cpu) fn sum_bn_back<T: Real>(
        g: &[T],
        x: &[T],
        mu: f64,
        inv: f64,
    ) -> (f64, f64) {
        lane_sum(g, x, |g, x| (g, g * (x - mu) * inv))
    }

    /// `o_j = (x_j - a) / b * c + d`.
    #[inline(always)]
    pub(in crate::backend::cpu) fn affine_run<T: Real>(
        o: &mut [T],
        x: &[T],
        a: T,
        b: T,
        c: T,
        d: T,
    ) {
        for (o, s) in o.iter_mut().zip(x) {
            *o = (*s - a) / b * c + d;
        }
    }

    /// `o_j = k (g_j - mg - (x_j - mu) inv mgx)`: batch norm's input gradient.
    #[inline(always)]
    pub(in crate::backend::cpu) fn bn_dx_run<T: Real>(o: &mut [T], x: &[T], g: &[T], p: [T; 5]) {
        let [mu, inv, k, mg, mgx] = p;
        for ((o, xv), gv) in o.iter_mut().zip(x).zip(g) {
            let xh = (*xv - mu) * inv;
            *o = k * (*gv - mg - xh * mgx);
        }
    }

    /// Accumulators of [`lane_sum`]: independent partial sums that the compiler can vectorise
    /// (a single running sum is a serial chain of dependent additions).
    const LANES: usize = 8;

    /// `(sum f(a_j, b_j).0, sum f(a_j, b_j).1)` over `j` in f64, with [`LANES`] partial sums added in
    /// lane order at the end; `b` is either as long as `a` or empty (then `f` gets 0 for it).
    #[inline(always)]
    pub(in crate::backend::cpu) fn lane_sum<T: Real>(
        a: &[T],
        b: &[T],
        f: impl Fn(f64, f64) -> (f64, f64),
    ) -> (f64, f64) {
        let mut s0 = [0.0f64; LANES];
        let mut s1 = [0.0f64; LANES];
        let full = a.len() / LANES * LANES;
        let two = b.len() == a.len();
        for j in (0..full).step_by(LANES) {
            let ca: &[T; LANES] = a[j..j + LANES].try_into().expect("lanes");
            if two {
                let cb: &[T; LANES] = b[j..j + LANES].try_into().expect("lanes");
                for l in 0..LANES {
                    let (u, v) = f(ca[l].to_f64(), cb[l].to_f64());
                    s0[l] += u;
                    s1[l] += v;
                }
            } else {
                for l in 0..LANES {
                    let (u, v) = f(ca[l].to_f64(), 0.0);
                    s0[l] += u;
                    s1[l] += v;
                }
            }
        }
        for j in full..a.len() {
            let (u, v) = f(a[j].to_f64(), if two { b[j].to_f64() } else { 0.0 });
            s0[j - full] += u;
            s1[j - full] += v;
        }
        (s0.iter().sum(), s1.iter().sum())
    }
}

/// [`loops::sum_plain`], in its AVX-512 build where the CPU runs AVX-512 (x86-64).
fn sum_plain<T: Real>(x: &[T]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if super::x86::has_avx512() {
        // SAFETY: the CPU runs AVX-512 F, VL and DQ, AVX2 and FMA (checked at run time).
        return unsafe { super::x86::avx512::sum_plain(x) };
    }
    loops::sum_plain(x)
}

/// [`loops::sum_sq_dev`], as [`sum_plain`].
fn sum_sq_dev<T: Real>(x: &[T], mean: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if super::x86::has_avx512() {
        // SAFETY: the CPU runs AVX-512 F, VL and DQ, AVX2 and FMA (checked at run time).
        return unsafe { super::x86::avx512::sum_sq_dev(x, mean) };
    }
    loops::sum_sq_dev(x, mean)
}

/// [`loops::sum_bn_back`], as [`sum_plain`].
fn sum_bn_back<T: Real>(g: &[T], x: &[T], mu: f64, inv: f64) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if super::x86::has_avx512() {
        // SAFETY: the CPU runs AVX-512 F, VL and DQ, AVX2 and FMA (checked at run time).
        return unsafe { super::x86::avx512::sum_bn_back(g, x, mu, inv) };
    }
    loops::sum_bn_back(g, x, mu, inv)
}

/// [`loops::affine_run`], as [`sum_plain`].
fn affine_run<T: Real>(o: &mut [T], x: &[T], a: T, b: T, c: T, d: T) {
    #[cfg(target_arch = "x86_64")]
    if super::x86::has_avx512() {
        // SAFETY: the CPU runs AVX-512 F, VL and DQ, AVX2 and FMA (checked at run time).
        return unsafe { super::x86::avx512::affine_run(o, x, a, b, c, d) };
    }
    loops::affine_run(o, x, a, b, c, d)
}

/// [`loops::bn_dx_run`], as [`sum_plain`].
fn bn_dx_run<T: Real>(o: &mut [T], x: &[T], g: &[T], p: [T; 5]) {
    #[cfg(target_arch = "x86_64")]
    if super::x86::has_avx512() {
        // SAFETY: the CPU runs AVX-512 F, VL and DQ, AVX2 and FMA (checked at run time).
        return unsafe { super::x86::avx512::bn_dx_run(o, x, g, p) };
    }
    loops::bn_dx_run(o, x, g, p)
}

/// Per-channel mean and biased variance of `x (n, c, h, w)` over `(n, h, w)`, two passes,
/// accumulated in f64.
pub fn channel_stats(x: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    if !supported(x) {
        return Err(unsupported("channel_stats", x));
    }
    let (n, c, h, w) = x.dims4()?;
    fn go<T: Real>(x: &Tensor, n: usize, c: usize, hw: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        with_images::<T, _>(x, |xs, s0| {
            let count = (n * hw) as f64;
            let stats: Vec<(f64, f64)> = (0..c)
                .into_par_iter()
                .map(|ci| {
                    let mut sum = 0.0;
                    for b in 0..n {
                        sum += sum_plain(&xs[b * s0 + ci * hw..][..hw]);
                    }
                    let mean = sum / count;
                    let mut ss = 0.0;
                    for b in 0..n {
                        ss += sum_sq_dev(&xs[b * s0 + ci * hw..][..hw], mean);
                    }
                    (mean, ss / count)
                })
                .collect();
            Ok(stats.into_iter().unzip())
        })
    }
    match x.dtype() {
        DType::F32 => go::<f32>(x, n, c, h * w),
        _ => go::<f64>(x, n, c, h * w),
    }
}

/// `((x - a_c) / b_c) * c_c + d_c` per channel of `x (n, C, h, w)`, in the dtype of `x`, in that
/// order of operations (batch norm forward with `(mean, s, g~, beta)`, its inverse with
/// `(beta, g~, s, mean)`).
pub fn channel_affine(x: &Tensor, a: &[f64], b: &[f64], c: &[f64], d: &[f64]) -> Result<Tensor> {
    if !supported(x) {
        return Err(unsupported("channel_affine", x));
    }
    let (n, ch, h, w) = x.dims4()?;
    if [a.len(), b.len(), c.len(), d.len()]
        .iter()
        .any(|l| *l != ch)
    {
        return Err(Error::ShapeMismatch {
            context: "channel_affine: the lengths of the four parameters".into(),
            expected: format!("[{ch}, {ch}, {ch}, {ch}] (one value per channel)"),
            got: vec![a.len(), b.len(), c.len(), d.len()],
        });
    }
    fn go<T: Real>(
        x: &Tensor,
        dims: (usize, usize, usize, usize),
        a: &[f64],
        b: &[f64],
        c: &[f64],
        d: &[f64],
    ) -> Result<Tensor> {
        let (n, ch, h, w) = dims;
        let hw = h * w;
        let cast = |v: &[f64]| v.iter().map(|t| T::from_f64(*t)).collect::<Vec<T>>();
        let (a, b, c, d) = (cast(a), cast(b), cast(c), cast(d));
        let out = with_images::<T, _>(x, |xs, s0| {
            // One task per image, its channels in a loop (a task per plane cost a division and
            // a hand-off per 16 elements on 4x4 images).
            Ok(par_fill(n * ch * hw, ch * hw, |img, o_img: &mut [T]| {
                for (ci, o) in o_img.chunks_exact_mut(hw.max(1)).enumerate() {
                    let s = &xs[img * s0 + ci * hw..][..hw];
                    affine_run(o, s, a[ci], b[ci], c[ci], d[ci])
                }
            }))
        })?;
        Ok(Tensor::from_vec(out, (n, ch, h, w), &Device::Cpu)?)
    }
    match x.dtype() {
        DType::F32 => go::<f32>(x, (n, ch, h, w), a, b, c, d),
        _ => go::<f64>(x, (n, ch, h, w), a, b, c, d),
    }
}

/// What [`batch_norm_backward`] returns.
pub struct BnGrads {
    /// Gradient for the input.
    pub dx: Tensor,
    /// `sum(dy * x^)` per channel: the gradient of the scale `g~`.
    pub dscale: Vec<f64>,
    /// `sum(dy)` per channel: the gradient of the shift `beta`.
    pub dshift: Vec<f64>,
}

/// Closed-form backward of training-mode batch norm `y = g~ (x - mu) / s + beta` with the batch
/// statistics `mu`, `s = sqrt(var + eps)` of `x` itself (gradient through the statistics
/// included): with `x^ = (x - mu) / s` and `m = n h w`,
/// `dx = (g~ / s) (dy - sum(dy) / m - x^ sum(dy x^) / m)`.
pub fn batch_norm_backward(
    x: &Tensor,
    dy: &Tensor,
    mean: &[f64],
    s: &[f64],
    scale: &[f64],
) -> Result<BnGrads> {
    if !supported(x) || x.dtype() != dy.dtype() || x.dims() != dy.dims() {
        return Err(unsupported("batch_norm_backward", x));
    }
    let (n, ch, h, w) = x.dims4()?;
    fn go<T: Real>(
        x: &Tensor,
        dy: &Tensor,
        dims: (usize, usize, usize, usize),
        mean: &[f64],
        s: &[f64],
        scale: &[f64],
    ) -> Result<BnGrads> {
        let (n, ch, h, w) = dims;
        let hw = h * w;
        let m = (n * hw) as f64;
        let (dx, sums) = with_images::<T, _>(x, |xs, xs0| {
            with_images::<T, _>(dy, |gs, gs0| {
                let sums: Vec<(f64, f64)> = (0..ch)
                    .into_par_iter()
                    .map(|ci| {
                        let (mu, inv) = (mean[ci], 1.0 / s[ci]);
                        let (mut sg, mut sgx) = (0.0, 0.0);
                        for b in 0..n {
                            let (xo, go) = (b * xs0 + ci * hw, b * gs0 + ci * hw);
                            let (a, c) = sum_bn_back(&gs[go..][..hw], &xs[xo..][..hw], mu, inv);
                            sg += a;
                            sgx += c;
                        }
                        (sg, sgx)
                    })
                    .collect();
                let params: Vec<[T; 5]> = (0..ch)
                    .map(|ci| {
                        [
                            T::from_f64(mean[ci]),
                            T::from_f64(1.0 / s[ci]),
                            T::from_f64(scale[ci] / s[ci]),
                            T::from_f64(sums[ci].0 / m),
                            T::from_f64(sums[ci].1 / m),
                        ]
                    })
                    .collect();
                // One task per image, its channels in a loop (as `channel_affine`).
                let dx = par_fill(n * ch * hw, ch * hw, |img, o_img: &mut [T]| {
                    for (ci, o) in o_img.chunks_exact_mut(hw.max(1)).enumerate() {
                        let (xo, go) = (img * xs0 + ci * hw, img * gs0 + ci * hw);
                        bn_dx_run(o, &xs[xo..][..hw], &gs[go..][..hw], params[ci])
                    }
                });
                Ok((dx, sums))
            })
        })?;
        let (dshift, dscale) = sums.into_iter().unzip();
        Ok(BnGrads {
            dx: Tensor::from_vec(dx, (n, ch, h, w), &Device::Cpu)?,
            dscale,
            dshift,
        })
    }
    match x.dtype() {
        DType::F32 => go::<f32>(x, dy, (n, ch, h, w), mean, s, scale),
        _ => go::<f64>(x, dy, (n, ch, h, w), mean, s, scale),
    }
}

#[cfg(test)]
mod tests {
    use super::loops::lane_sum;
    use super::*;

    /// The AVX-512 builds of the element loops give the baseline builds' results bit for bit.
    #[test]
    fn avx512_builds_of_the_loops_equal_their_baseline_bit_for_bit() {
        let (x, g) = (
            super::super::test_data(1003, 4),
            super::super::test_data(1003, 5),
        );
        let bits = |v: f64| v.to_bits();
        assert_eq!(
            bits(sum_plain(&x)),
            bits(lane_sum(&x, &x[..0], |v, _| (v, 0.0)).0)
        );
        let dev = |v: f64, _| ((v - 0.25) * (v - 0.25), 0.0);
        assert_eq!(
            bits(sum_sq_dev(&x, 0.25)),
            bits(lane_sum(&x, &x[..0], dev).0)
        );
        let (s0, s1) = sum_bn_back(&g, &x, 0.1, 1.7);
        let (r0, r1) = lane_sum(&g, &x, |g, x| (g, g * (x - 0.1) * 1.7));
        assert_eq!((bits(s0), bits(s1)), (bits(r0), bits(r1)));
        let mut o = vec![0f32; x.len()];
        affine_run(&mut o, &x, 0.1, 0.7, 1.3, -0.2);
        assert!(o
            .iter()
            .zip(&x)
            .all(|(o, v)| o.to_bits() == ((v - 0.1) / 0.7 * 1.3 - 0.2).to_bits()));
        bn_dx_run(&mut o, &x, &g, [0.1, 1.7, 0.9, 0.01, -0.02]);
        let r = |v: f32, gv: f32| 0.9 * (gv - 0.01 - (v - 0.1) * 1.7 * -0.02);
        assert!(o
            .iter()
            .zip(x.iter().zip(&g))
            .all(|(o, (v, gv))| o.to_bits() == r(*v, *gv).to_bits()));
    }
}
