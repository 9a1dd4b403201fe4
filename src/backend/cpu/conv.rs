//! "Same" convolutions of NCHW images: stride 1, square odd kernel `k` of 1, 3 or 5, zero
//! padding `k / 2`. Forward ([`conv2d_same`]), input gradient ([`conv2d_same_input_grad`]) and
//! weight gradient ([`conv2d_same_weight_grad`]), image by image in parallel over the batch.
//!
//! The loops are register blocked: `OBLOCK` = 4 output channels times a row chunk of `CHUNK` = 16
//! columns (forward) or `WCHUNK` = 8 columns (weight gradient) of accumulators. On x86-64 the
//! explicit AVX-512 / AVX2 kernels and the AVX2 + FMA build of these loops take over where the
//! CPU has them (the private `x86` module), with the same multiply-adds in the same order.

use super::{
    conv_dtype_supported, conv_dtypes, conv_supported, par_fill, unsupported, with_images,
    with_padded, with_slice, Real, CHUNK, OBLOCK, WCHUNK,
};
use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};

/// One image of a same convolution: `out (cout, h, w) = conv(pad (cin, hp, wp), wt)` with `wt`
/// packed as `(cout, cin, K, K)`.
#[inline(always)]
pub(super) fn conv_image<T: Real, const K: usize, const FMA: bool>(
    pad: &[T],
    cin: usize,
    hp: usize,
    wp: usize,
    wt: &[T],
    cout: usize,
    h: usize,
    w: usize,
    out: &mut [T],
) {
    let mut o0 = 0;
    while o0 < cout {
        if o0 + OBLOCK <= cout {
            conv_block::<T, K, OBLOCK, FMA>(pad, cin, hp, wp, wt, o0, h, w, out);
            o0 += OBLOCK;
        } else {
            conv_block::<T, K, 1, FMA>(pad, cin, hp, wp, wt, o0, h, w, out);
            o0 += 1;
        }
    }
}

/// Output channels `o0..o0 + OB` of [`conv_image`], one row chunk of [`CHUNK`] columns at a
/// time; multiply-adds fused when `FMA`.
#[inline(always)]
pub(super) fn conv_block<T: Real, const K: usize, const OB: usize, const FMA: bool>(
    pad: &[T],
    cin: usize,
    hp: usize,
    wp: usize,
    wt: &[T],
    o0: usize,
    h: usize,
    w: usize,
    out: &mut [T],
) {
    let kk = K * K;
    for y in 0..h {
        let mut x0 = 0;
        while x0 < w {
            let mut acc = [[T::zero(); CHUNK]; OB];
            for i in 0..cin {
                for kh in 0..K {
                    let row = &pad[(i * hp + y + kh) * wp + x0..];
                    for kw in 0..K {
                        let s: &[T; CHUNK] = row[kw..kw + CHUNK].try_into().expect("chunk");
                        for (ob, a) in acc.iter_mut().enumerate() {
                            let wv = wt[((o0 + ob) * cin + i) * kk + kh * K + kw];
                            for l in 0..CHUNK {
                                a[l] = T::madd::<FMA>(wv, s[l], a[l]);
                            }
                        }
                    }
                }
            }
            let n = CHUNK.min(w - x0);
            for (ob, a) in acc.iter().enumerate() {
                out[((o0 + ob) * h + y) * w + x0..][..n].copy_from_slice(&a[..n]);
            }
            x0 += CHUNK;
        }
    }
}

/// [`conv_image`] with the fastest code the CPU runs: on x86-64 with AVX2 + FMA the explicit
/// kernels (f32, f64; `packed`: the weights packed for narrow f32 images, if any) or the FMA
/// build of the portable loop; the portable loop without FMA otherwise.
fn conv_image_dispatch<T: Real, const K: usize>(
    pad: &[T],
    cin: usize,
    hp: usize,
    wp: usize,
    wt: &[T],
    #[allow(unused_variables)] packed: Option<&[T]>,
    cout: usize,
    h: usize,
    w: usize,
    out: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if super::x86::conv_image::<T, K>(pad, cin, hp, wp, wt, packed, cout, h, w, out) {
        return;
    }
    conv_image::<T, K, false>(pad, cin, hp, wp, wt, cout, h, w, out)
}

/// Which code computes a same convolution: the direct, register-blocked kernels of this module,
/// im2col + GEMM ([`super::im2col`]), or the one [`super::im2col::use_gemm`] picks for the
/// shape (`Auto`, what the layers use). Forcing a path serves the tests and the per-shape
/// measurements of `bench --conv-shapes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvPath {
    /// The path [`super::im2col::use_gemm`] picks for the shape.
    #[default]
    Auto,
    /// The direct kernels.
    Direct,
    /// im2col + GEMM.
    Gemm,
}

impl ConvPath {
    /// Whether this path, for a reduction over `cin` channels of a `k x k` kernel on `h x w`
    /// images, is im2col + GEMM.
    pub fn gemm(self, cin: usize, k: usize, h: usize, w: usize) -> bool {
        match self {
            ConvPath::Auto => super::im2col::use_gemm(cin, k, h, w),
            ConvPath::Direct => false,
            ConvPath::Gemm => true,
        }
    }

    /// Whether the forward (and input gradient) of this path, in element type `T`, is im2col +
    /// GEMM: as [`ConvPath::gemm`], except that `Auto` keeps the direct path where its f32
    /// kernel vectorised over the output channels applies (AVX2 + FMA, images at most 8
    /// columns wide): measured on a 2-core AMD EPYC, one thread, 256 -> 256 channels of 3x3, it
    /// takes 29-31 ms where im2col + GEMM takes 34-38 ms at 4x4 (batch 128), and about 29 ms
    /// against 31-33 ms at 8x8 (batch 32). The weight gradient keeps [`ConvPath::gemm`].
    pub fn conv_gemm<T: super::Real>(self, cin: usize, k: usize, h: usize, w: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        if self == ConvPath::Auto && super::x86::narrow_applies::<T>(w) {
            return false;
        }
        self.gemm(cin, k, h, w)
    }

    /// The kernels `Auto` runs for a convolution of `cin` channels, kernel `k`, on `h x w`
    /// images of `dtype`, by name: (forward, weight gradient), each `direct` (row-vectorised
    /// direct kernels), `narrow` (the direct kernel vectorised over the output channels, f32
    /// on AVX2 + FMA, images up to 8 columns), `gemm` (im2col + GEMM) or `batched` (the
    /// batched weight gradient vectorised over the output channels). The input gradient is a
    /// forward over the output channels.
    pub fn auto_kernels(
        dtype: DType,
        cin: usize,
        k: usize,
        h: usize,
        w: usize,
    ) -> (&'static str, &'static str) {
        fn names<T: super::Real>(
            cin: usize,
            k: usize,
            h: usize,
            w: usize,
        ) -> (&'static str, &'static str) {
            #[cfg(target_arch = "x86_64")]
            let narrow = super::x86::narrow_applies::<T>(w);
            #[cfg(not(target_arch = "x86_64"))]
            let narrow = false;
            let gemm = ConvPath::Auto.gemm(cin, k, h, w);
            let forward = if ConvPath::Auto.conv_gemm::<T>(cin, k, h, w) {
                "gemm"
            } else if narrow {
                "narrow"
            } else {
                "direct"
            };
            let weight = match (gemm, narrow) {
                (true, true) => "batched",
                (true, false) => "gemm",
                _ => "direct",
            };
            (forward, weight)
        }
        match dtype {
            DType::F64 => names::<f64>(cin, k, h, w),
            // f32, and f16 and bf16 (computed in f32).
            _ => names::<f32>(cin, k, h, w),
        }
    }
}

/// Batched same convolution of `x (b, cin, h, w)` with packed weights `wt (cout, cin, K, K)`.
fn conv_batch<T: Real>(
    path: ConvPath,
    x: &[T],
    x_stride: usize,
    b: usize,
    cin: usize,
    h: usize,
    w: usize,
    wt: &[T],
    cout: usize,
    k: usize,
) -> Vec<T> {
    if path.conv_gemm::<T>(cin, k, h, w) {
        return super::im2col::conv_batch(x, x_stride, b, cin, h, w, wt, cout, k);
    }
    let img_in = cin * h * w;
    // The weights repacked once for all images where a kernel wants them (narrow f32 images).
    #[cfg(target_arch = "x86_64")]
    let packed = super::x86::narrow_weights(wt, cout, cin, k, w);
    #[cfg(not(target_arch = "x86_64"))]
    let packed: Option<Vec<T>> = None;
    let packed = packed.as_deref();
    par_fill(b * cout * h * w, cout * h * w, |n, out_n| {
        with_padded(
            &x[n * x_stride..][..img_in],
            cin,
            h,
            w,
            k,
            |pad, hp, wp| match k {
                1 => conv_image_dispatch::<T, 1>(pad, cin, hp, wp, wt, packed, cout, h, w, out_n),
                3 => conv_image_dispatch::<T, 3>(pad, cin, hp, wp, wt, packed, cout, h, w, out_n),
                _ => conv_image_dispatch::<T, 5>(pad, cin, hp, wp, wt, packed, cout, h, w, out_n),
            },
        )
    })
}

/// `conv2d(x, w, padding = k / 2, stride 1)` for `x (b, cin, h, w)`, `w (cout, cin, k, k)`.
pub fn conv2d_same(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    conv2d_same_via(x, w, ConvPath::Auto)
}

/// [`conv2d_same`] computed by `path`.
pub fn conv2d_same_via(x: &Tensor, w: &Tensor, path: ConvPath) -> Result<Tensor> {
    if !conv_supported(x, w, 1) {
        return Err(unsupported("conv2d_same", x));
    }
    let (b, cin, h, wd) = x.dims4()?;
    let (cout, cin_w, k, _) = w.dims4()?;
    if cin != cin_w {
        return Err(Error::ShapeMismatch {
            context: "conv2d_same weight".into(),
            expected: format!("(cout, {cin}, k, k)"),
            got: w.dims().to_vec(),
        });
    }
    fn go<T: Real>(
        path: ConvPath,
        x: &Tensor,
        w: &Tensor,
        b: usize,
        cin: usize,
        h: usize,
        wd: usize,
        cout: usize,
        k: usize,
    ) -> Result<Tensor> {
        let out = with_images::<T, _>(x, |xs, s0| {
            with_slice::<T, _>(w, |ws| {
                Ok(conv_batch(path, xs, s0, b, cin, h, wd, ws, cout, k))
            })
        })?;
        Ok(Tensor::from_vec(out, (b, cout, h, wd), &Device::Cpu)?)
    }
    conv_dtypes([x, w], |x, w| match x.dtype() {
        DType::F64 => go::<f64>(path, x, w, b, cin, h, wd, cout, k),
        _ => go::<f32>(path, x, w, b, cin, h, wd, cout, k),
    })
}

/// Gradient of `conv2d_same(x, w)` for `x`, given the output gradient `g (b, cout, h, w)`: the
/// same convolution of `g` with the flipped, transposed weights `w'[i, o] = w[o, i, ::-1, ::-1]`.
pub fn conv2d_same_input_grad(g: &Tensor, w: &Tensor) -> Result<Tensor> {
    conv2d_same_input_grad_via(g, w, ConvPath::Auto)
}

/// [`conv2d_same_input_grad`] computed by `path` (the path of a convolution over the `cout`
/// channels of `g`).
pub fn conv2d_same_input_grad_via(g: &Tensor, w: &Tensor, path: ConvPath) -> Result<Tensor> {
    if !conv_supported(g, w, 1) {
        return Err(unsupported("conv2d_same_input_grad", g));
    }
    let (b, cout, h, wd) = g.dims4()?;
    let (cout_w, cin, k, _) = w.dims4()?;
    if cout != cout_w {
        return Err(Error::ShapeMismatch {
            context: "conv2d_same_input_grad weight".into(),
            expected: format!("({cout}, cin, k, k)"),
            got: w.dims().to_vec(),
        });
    }
    fn go<T: Real>(
        path: ConvPath,
        g: &Tensor,
        w: &Tensor,
        b: usize,
        cout: usize,
        h: usize,
        wd: usize,
        cin: usize,
        k: usize,
    ) -> Result<Tensor> {
        let out = with_images::<T, _>(g, |gs, s0| {
            with_slice::<T, _>(w, |ws| {
                let kk = k * k;
                let mut flipped = vec![T::zero(); cin * cout * kk];
                for o in 0..cout {
                    for i in 0..cin {
                        for t in 0..kk {
                            flipped[(i * cout + o) * kk + t] =
                                ws[(o * cin + i) * kk + (kk - 1 - t)];
                        }
                    }
                }
                Ok(conv_batch(path, gs, s0, b, cout, h, wd, &flipped, cin, k))
            })
        })?;
        Ok(Tensor::from_vec(out, (b, cin, h, wd), &Device::Cpu)?)
    }
    conv_dtypes([g, w], |g, w| match g.dtype() {
        DType::F64 => go::<f64>(path, g, w, b, cout, h, wd, cin, k),
        _ => go::<f32>(path, g, w, b, cout, h, wd, cin, k),
    })
}

/// One image of the weight gradient: `dw[o, i, kh, kw] += sum_{y, x} g[o, y, x] pad[i, y + kh, x + kw]`,
/// `g` with rows padded with zeros to `wg` (a multiple of `WCHUNK`).
#[inline(always)]
pub(super) fn wgrad_image<T: Real, const K: usize, const FMA: bool>(
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
    let mut o0 = 0;
    while o0 < cout {
        if o0 + OBLOCK <= cout {
            wgrad_block::<T, K, OBLOCK, FMA>(pad, cin, hp, wp, g, o0, h, wg, dw);
            o0 += OBLOCK;
        } else {
            wgrad_block::<T, K, 1, FMA>(pad, cin, hp, wp, g, o0, h, wg, dw);
            o0 += 1;
        }
    }
}

/// Output channels `o0..o0 + OB` of [`wgrad_image`]: [`WCHUNK`] partial sums per tap, added in
/// lane order; multiply-adds fused when `FMA`.
#[inline(always)]
pub(super) fn wgrad_block<T: Real, const K: usize, const OB: usize, const FMA: bool>(
    pad: &[T],
    cin: usize,
    hp: usize,
    wp: usize,
    g: &[T],
    o0: usize,
    h: usize,
    wg: usize,
    dw: &mut [T],
) {
    let kk = K * K;
    for i in 0..cin {
        for kh in 0..K {
            let mut acc = [[[T::zero(); WCHUNK]; K]; OB];
            for y in 0..h {
                let prow = &pad[(i * hp + y + kh) * wp..];
                let mut x0 = 0;
                while x0 < wg {
                    for (ob, acc_o) in acc.iter_mut().enumerate() {
                        let gs: &[T; WCHUNK] = g[((o0 + ob) * h + y) * wg + x0..][..WCHUNK]
                            .try_into()
                            .expect("chunk");
                        for (kw, a) in acc_o.iter_mut().enumerate() {
                            let ps: &[T; WCHUNK] =
                                prow[x0 + kw..x0 + kw + WCHUNK].try_into().expect("chunk");
                            for l in 0..WCHUNK {
                                a[l] = T::madd::<FMA>(gs[l], ps[l], a[l]);
                            }
                        }
                    }
                    x0 += WCHUNK;
                }
            }
            for (ob, acc_o) in acc.iter().enumerate() {
                for (kw, a) in acc_o.iter().enumerate() {
                    let mut s = T::zero();
                    for v in a {
                        s += *v;
                    }
                    dw[((o0 + ob) * cin + i) * kk + kh * K + kw] += s;
                }
            }
        }
    }
}

/// [`wgrad_image`] with the fastest code the CPU runs, as [`conv_image_dispatch`]; `w` the
/// image's width (`g`'s rows padded to `wg`).
fn wgrad_image_dispatch<T: Real, const K: usize>(
    pad: &[T],
    cin: usize,
    hp: usize,
    wp: usize,
    g: &[T],
    cout: usize,
    h: usize,
    #[allow(unused_variables)] w: usize,
    wg: usize,
    dw: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if super::x86::wgrad_image::<T, K>(pad, cin, hp, wp, g, cout, h, w, wg, dw) {
        return;
    }
    wgrad_image::<T, K, false>(pad, cin, hp, wp, g, cout, h, wg, dw)
}

/// Gradient of `conv2d_same(x, w)` for the weight `(cout, cin, k, k)`, given the input `x` and
/// the output gradient `g`.
pub fn conv2d_same_weight_grad(x: &Tensor, g: &Tensor, k: usize) -> Result<Tensor> {
    conv2d_same_weight_grad_via(x, g, k, ConvPath::Auto)
}

/// [`conv2d_same_weight_grad`] computed by `path`.
pub fn conv2d_same_weight_grad_via(
    x: &Tensor,
    g: &Tensor,
    k: usize,
    path: ConvPath,
) -> Result<Tensor> {
    if !conv_dtype_supported(x)
        || !conv_dtype_supported(g)
        || x.dtype() != g.dtype()
        || !matches!(k, 1 | 3 | 5)
    {
        return Err(unsupported("conv2d_same_weight_grad", x));
    }
    let (b, cin, h, wd) = x.dims4()?;
    let (bg, cout, hg, wdg) = g.dims4()?;
    if (b, h, wd) != (bg, hg, wdg) {
        return Err(Error::ShapeMismatch {
            context: "conv2d_same_weight_grad gradient".into(),
            expected: format!("({b}, cout, {h}, {wd})"),
            got: g.dims().to_vec(),
        });
    }
    fn go<T: Real>(
        path: ConvPath,
        x: &Tensor,
        g: &Tensor,
        b: usize,
        cin: usize,
        h: usize,
        wd: usize,
        cout: usize,
        k: usize,
    ) -> Result<Tensor> {
        let n_w = cout * cin * k * k;
        let dw = with_images::<T, _>(x, |xs, xs0| {
            with_images::<T, _>(g, |gs, gs0| {
                // Many channels on narrow f32 images (where `Auto` picks im2col + GEMM): the
                // batched kernel vectorised over the output channels. Measured one thread, 2-core
                // AMD EPYC, 3x3: 128 -> 128 at 8x8 (batch 32) 7.1-8.2 ms against 8.5-9.3, at 4x4
                // (batch 128) 7.7 against 9.8-10.5; 256 -> 256 at 4x4 29-34 ms against 38-47, at
                // 8x8 27-28 against 37-41.
                #[cfg(target_arch = "x86_64")]
                if path == ConvPath::Auto && path.gemm(cin, k, h, wd) {
                    if let Some(dw) =
                        super::x86::wgrad_batch(xs, xs0, gs, gs0, b, cin, h, wd, cout, k)
                    {
                        return Ok(dw);
                    }
                }
                if path.gemm(cin, k, h, wd) {
                    return Ok(super::im2col::wgrad_batch(
                        xs, xs0, gs, gs0, b, cin, h, wd, cout, k,
                    ));
                }
                let img_x = cin * h * wd;
                let img_g = cout * h * wd;
                let wg = wd.div_ceil(WCHUNK) * WCHUNK;
                // Images are split in (at most 8) contiguous groups, one partial sum per group,
                // summed in group order: deterministic whatever the thread count. The groups run
                // in rounds of as many as there are threads, each round's partials added to the
                // total before the next round starts: at most `threads + 1` weight-sized buffers
                // are live, whatever the batch (a buffer per group made the memory of a step
                // grow with the batch by one weight per image up to 8 images).
                let groups = b.min(8);
                let per = b.div_ceil(groups);
                let group = |gi: usize| -> Vec<T> {
                    let mut dw = vec![T::zero(); n_w];
                    // Rows of `g` padded to `wg` columns; not needed when `wd == wg`.
                    let mut gp = if wg == wd {
                        Vec::new()
                    } else {
                        vec![T::zero(); cout * h * wg]
                    };
                    for n in gi * per..((gi + 1) * per).min(b) {
                        let src = &gs[n * gs0..][..img_g];
                        let g_rows: &[T] = if wg == wd {
                            src
                        } else {
                            for row in 0..cout * h {
                                gp[row * wg..][..wd].copy_from_slice(&src[row * wd..][..wd]);
                            }
                            &gp
                        };
                        let x_n = &xs[n * xs0..][..img_x];
                        with_padded(x_n, cin, h, wd, k, |pad, hp, wp| match k {
                            1 => wgrad_image_dispatch::<T, 1>(
                                pad, cin, hp, wp, g_rows, cout, h, wd, wg, &mut dw,
                            ),
                            3 => wgrad_image_dispatch::<T, 3>(
                                pad, cin, hp, wp, g_rows, cout, h, wd, wg, &mut dw,
                            ),
                            _ => wgrad_image_dispatch::<T, 5>(
                                pad, cin, hp, wp, g_rows, cout, h, wd, wg, &mut dw,
                            ),
                        });
                    }
                    dw
                };
                Ok(super::sum_in_rounds(groups, n_w, group))
            })
        })?;
        Ok(Tensor::from_vec(dw, (cout, cin, k, k), &Device::Cpu)?)
    }
    conv_dtypes([x, g], |x, g| match x.dtype() {
        DType::F64 => go::<f64>(path, x, g, b, cin, h, wd, cout, k),
        _ => go::<f32>(path, x, g, b, cin, h, wd, cout, k),
    })
}
