//! Own CPU kernels for the hot spots of a training step (issue 7): "same" convolutions (stride
//! 1, odd kernel 1, 3 or 5, padding `k / 2`) forward, input gradient and weight gradient; batch
//! statistics and the per-channel affine map of batch norm and its closed-form backward; ReLU
//! and its backward.
//!
//! Why: candle 0.11's CPU `conv2d` builds im2col tiles with a scalar gather and calls gemm on
//! small tiles (~13 GFLOP/s here), its input gradient is `conv_transpose2d` (a slow direct
//! loop), reductions over `(N, H, W)` walk strided memory, and every elementwise op is one more
//! pass and one more thread hand-off. These kernels work image by image on contiguous NCHW
//! data, in parallel over the batch (rayon), with register-blocked inner loops compiled for
//! AVX2 + FMA when the CPU has them (runtime detection) and portable otherwise.
//!
//! Explicit SIMD: the f32 convolution (forward and input gradient) and weight gradient use
//! AVX-512 where the CPU has it (F, VL, DQ), AVX2 + FMA otherwise; the f64 convolution has an
//! AVX2 kernel; the batch-norm sums and loops are compiled twice (`multiversion!`), for
//! baseline x86-64 and for AVX-512. Each explicit kernel performs the same multiply-adds in the
//! same order as the portable loop it replaces, so switching between them never changes a
//! result (tested bit for bit). Outputs are written without being zeroed first (`par_fill`),
//! and padded images live in a per-thread scratch buffer (`with_padded`).
//!
//! Scope: contiguous CPU tensors of `f32` or `f64` ([`supported`]); the layers fall back to
//! candle's ops otherwise. Every kernel is tested against candle's op in f64 (`tests/kernels.rs`).
//! Sums of batch norm are accumulated in f64. Results differ from candle's by rounding only
//! (another summation order; FMA contracts a multiply and an add).

use crate::error::{Error, Result};
use candle_core::{DType, Device, Storage, Tensor, WithDType};
use rayon::prelude::*;

/// Width (elements) of the output-row chunk of the convolution kernels.
const CHUNK: usize = 16;
/// Width of the row chunk of the weight-gradient kernel.
const WCHUNK: usize = 8;
/// Output channels computed together.
const OBLOCK: usize = 4;
/// Elements per parallel task of the elementwise kernels.
const RUN: usize = 1 << 14;

/// Element types of the kernels.
pub trait Real: WithDType {
    /// `a * b + c`, fused when `FMA`.
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self;
}

impl Real for f32 {
    #[inline(always)]
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self {
        if FMA {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }
}

impl Real for f64 {
    #[inline(always)]
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self {
        if FMA {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }
}

/// True when the CPU runs AVX2 and FMA (checked once).
fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Switch the kernels of this module on or off for the whole process (on by default). Off, every
/// layer takes candle's ops and the generic autograd vector-Jacobian product
/// ([`super::vjp`]) instead: the code as it was before these kernels, kept for `bench
/// --kernels off` (the before/after table) and for checking the kernels against candle.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the kernels are switched on ([`set_enabled`]).
pub fn enabled() -> bool {
    ENABLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// True when the CPU runs AVX-512 F, VL and DQ (checked once); the f32 convolution then uses
/// 512-bit vectors, and the batch-norm loops are compiled for them (`multiversion!`).
fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512dq")
                && has_fma()
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the kernels take `t`: a CPU tensor of `f32` or `f64`, with the kernels switched on.
pub fn supported(t: &Tensor) -> bool {
    enabled() && t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

/// Whether the convolution kernels take input `x` and weight `w` (OIHW) with stride `stride`.
pub fn conv_supported(x: &Tensor, w: &Tensor, stride: usize) -> bool {
    let square_odd = matches!(w.dims(), [_, _, k, k2] if k == k2 && matches!(*k, 1 | 3 | 5));
    stride == 1
        && square_odd
        && supported(x)
        && x.dtype() == w.dtype()
        && x.rank() == 4
        && w.device().is_cpu()
}

/// Run `f` on the contiguous data of `t` (copied first when `t` is not contiguous).
fn with_slice<T: WithDType, R>(t: &Tensor, f: impl FnOnce(&[T]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| Error::Config("kernel input is not contiguous".into()))?;
    match &*storage {
        Storage::Cpu(cpu) => f(&T::cpu_storage_as_slice(cpu)?[start..end]),
        _ => Err(Error::Config("kernel input is not on the CPU".into())),
    }
}

/// Run `f` on the data of a 4-D tensor whose images are each contiguous (`(c, h, w)` in row-major
/// order, any stride between images: a contiguous tensor, or a channel slice `narrow(1, ..)` of
/// one), with that image stride; other layouts are copied first. The slice starts at the first
/// element of the first image.
fn with_images<T: WithDType, R>(t: &Tensor, f: impl FnOnce(&[T], usize) -> Result<R>) -> Result<R> {
    let (b, c, h, w) = t.dims4()?;
    let st = t.layout().stride();
    let image_contiguous = st[3] == 1 && st[2] == w && st[1] == h * w && b > 0;
    let t = if image_contiguous {
        t.clone()
    } else {
        t.contiguous()?
    };
    let (storage, layout) = t.storage_and_layout();
    let s0 = layout.stride()[0];
    let start = layout.start_offset();
    let len = (b - 1) * s0 + c * h * w;
    match &*storage {
        Storage::Cpu(cpu) => f(&T::cpu_storage_as_slice(cpu)?[start..start + len], s0),
        _ => Err(Error::Config("kernel input is not on the CPU".into())),
    }
}

/// A vector of `len` elements filled by `fill(index, chunk)` on consecutive chunks of `chunk`
/// elements (the last may be shorter), in parallel. `fill` must write every element of its
/// chunk: the memory is not zeroed first (zeroing the outputs was a serial `memset` on the
/// calling thread, about a tenth of a training step). In debug builds (the tests) it is filled
/// with NaN first, so that an element a kernel forgets to write shows up in every comparison.
fn par_fill<T: Real>(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [T]) + Sync + Send,
) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    if cfg!(debug_assertions) {
        for v in spare.iter_mut() {
            v.write(T::from_f64(f64::NAN));
        }
    }
    spare
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, c)| {
            // SAFETY: `MaybeUninit<T>` has the layout of `T`, and `T` is `f32` or `f64` (the only
            // `Real` types), for which any bits are a value; `fill` writes every element of its
            // chunk before anything reads it (the contract above).
            let c = unsafe { &mut *(c as *mut [std::mem::MaybeUninit<T>] as *mut [T]) };
            fill(i, c)
        });
    // SAFETY: all `len` elements were written by `fill` (the contract above).
    unsafe { out.set_len(len) };
    out
}

fn unsupported(what: &str, t: &Tensor) -> Error {
    Error::Config(format!(
        "{what}: no kernel for {:?} tensors on {:?} (use candle's op)",
        t.dtype(),
        t.device().location()
    ))
}

/// Padded-image scratch of one thread: the buffer (as `f64` words, which also hold `f32`s) and
/// the geometry `(dtype, c, h, w, k)` its zero border was written for.
struct PadScratch {
    buf: Vec<f64>,
    key: (DType, usize, usize, usize, usize),
}

thread_local! {
    static PAD: std::cell::RefCell<PadScratch> = const {
        std::cell::RefCell::new(PadScratch { buf: Vec::new(), key: (DType::F32, 0, 0, 0, 0) })
    };
}

/// Run `f(pad, hp, wp)` on a zero-padded copy of one image `(c, h, w)`: `(c, h + k - 1, wp)`,
/// the data at `(p, p)` with `p = k / 2`, `wp = round_up(w, CHUNK) + k - 1` so that every chunk
/// read stays inside. The copy lives in a per-thread buffer that is reused: the zero border is
/// written once per geometry, and each image then only copies its rows in (a fresh zeroed
/// buffer per image was a `memset` of 1.7x the image). The buffer stays borrowed while `f`
/// runs, so `f` must not pad again on this thread (the convolution loops do not call rayon).
fn with_padded<T: Real, R>(
    src: &[T],
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    f: impl FnOnce(&[T], usize, usize) -> R,
) -> R {
    let p = k / 2;
    let hp = h + k - 1;
    let wp = w.div_ceil(CHUNK) * CHUNK + k - 1;
    let n = c * hp * wp;
    PAD.with(|cell| {
        let mut scratch = cell.borrow_mut();
        // The whole geometry: images of another width with the same padded width would leave
        // columns of the previous image where this one has its zero border.
        let key = (T::DTYPE, c, h, w, k);
        let words = (n * std::mem::size_of::<T>()).div_ceil(8);
        if scratch.key != key || scratch.buf.len() < words {
            scratch.buf.clear();
            scratch.buf.resize(words, 0.0);
            scratch.key = key;
        }
        assert!(std::mem::align_of::<T>() <= 8 && std::mem::size_of::<T>() <= 8);
        // SAFETY: the buffer holds at least `n` elements of `T` (f32 or f64, alignment at most
        // that of f64), all initialised (zeros, or rows copied in earlier), and is borrowed
        // mutably only here.
        let out = unsafe { std::slice::from_raw_parts_mut(scratch.buf.as_mut_ptr() as *mut T, n) };
        for ci in 0..c {
            for y in 0..h {
                let s = &src[(ci * h + y) * w..][..w];
                out[(ci * hp + y + p) * wp + p..][..w].copy_from_slice(s);
            }
        }
        f(out, hp, wp)
    })
}

/// One image of a same convolution: `out (cout, h, w) = conv(pad (cin, hp, wp), wt)` with `wt`
/// packed as `(cout, cin, K, K)`.
#[inline(always)]
fn conv_image<T: Real, const K: usize, const FMA: bool>(
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

#[inline(always)]
fn conv_block<T: Real, const K: usize, const OB: usize, const FMA: bool>(
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_block_fma<T: Real, const K: usize>(
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
    conv_block::<T, K, 1, true>(pad, cin, hp, wp, wt, o, h, w, out)
}

/// `&[T]` as `&[U]` when they are the same type (`T::DTYPE == U::DTYPE`): the explicit f32 and
/// f64 kernels called from the generic code.
#[cfg(target_arch = "x86_64")]
fn same<T: Real, U: Real>(v: &[T]) -> &[U] {
    assert_eq!(T::DTYPE, U::DTYPE);
    // SAFETY: T and U are the same type (checked above): same layout and length.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const U, v.len()) }
}

/// `&mut [T]` as `&mut [U]`, as [`same`].
#[cfg(target_arch = "x86_64")]
fn same_mut<T: Real, U: Real>(v: &mut [T]) -> &mut [U] {
    assert_eq!(T::DTYPE, U::DTYPE);
    // SAFETY: T and U are the same type (checked above): same layout and length.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut U, v.len()) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_image_fma<T: Real, const K: usize>(
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
    conv_image::<T, K, true>(pad, cin, hp, wp, wt, cout, h, w, out)
}

fn conv_image_dispatch<T: Real, const K: usize>(
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
    #[cfg(target_arch = "x86_64")]
    if has_fma() && T::DTYPE == DType::F32 {
        let (pad, wt, out) = (same::<T, f32>(pad), same(wt), same_mut::<T, f32>(out));
        // AVX-512: blocks of 8 output channels; the rest below (offset slices).
        let (wt, out, cout) = if has_avx512() && cout >= avx512::OBLOCK {
            let full = cout / avx512::OBLOCK * avx512::OBLOCK;
            // SAFETY: the CPU supports AVX-512F (checked at run time); bounds checked inside.
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
        // SAFETY: the CPU supports AVX2 and FMA; the slice bounds are checked inside.
        unsafe { avx2::conv_f32::<K>(pad, cin, hp, wp, wt, full, h, w, out) };
        for o in full..cout {
            // SAFETY: as above.
            unsafe { conv_block_fma::<f32, K>(pad, cin, hp, wp, wt, o, h, w, out) };
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_fma() && T::DTYPE == DType::F64 {
        let (pad, wt, out) = (same::<T, f64>(pad), same(wt), same_mut::<T, f64>(out));
        let full = cout / OBLOCK * OBLOCK;
        // SAFETY: the CPU supports AVX2 and FMA; the slice bounds are checked inside.
        unsafe { avx2::conv_f64::<K>(pad, cin, hp, wp, wt, full, h, w, out) };
        for o in full..cout {
            // SAFETY: as above.
            unsafe { conv_block_fma::<f64, K>(pad, cin, hp, wp, wt, o, h, w, out) };
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
        unsafe { conv_image_fma::<T, K>(pad, cin, hp, wp, wt, cout, h, w, out) };
        return;
    }
    conv_image::<T, K, false>(pad, cin, hp, wp, wt, cout, h, w, out)
}

/// Batched same convolution of `x (b, cin, h, w)` with packed weights `wt (cout, cin, K, K)`.
fn conv_batch<T: Real>(
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
    let img_in = cin * h * w;
    par_fill(b * cout * h * w, cout * h * w, |n, out_n| {
        with_padded(
            &x[n * x_stride..][..img_in],
            cin,
            h,
            w,
            k,
            |pad, hp, wp| match k {
                1 => conv_image_dispatch::<T, 1>(pad, cin, hp, wp, wt, cout, h, w, out_n),
                3 => conv_image_dispatch::<T, 3>(pad, cin, hp, wp, wt, cout, h, w, out_n),
                _ => conv_image_dispatch::<T, 5>(pad, cin, hp, wp, wt, cout, h, w, out_n),
            },
        )
    })
}

/// `conv2d(x, w, padding = k / 2, stride 1)` for `x (b, cin, h, w)`, `w (cout, cin, k, k)`.
pub fn conv2d_same(x: &Tensor, w: &Tensor) -> Result<Tensor> {
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
            with_slice::<T, _>(w, |ws| Ok(conv_batch(xs, s0, b, cin, h, wd, ws, cout, k)))
        })?;
        Ok(Tensor::from_vec(out, (b, cout, h, wd), &Device::Cpu)?)
    }
    match x.dtype() {
        DType::F32 => go::<f32>(x, w, b, cin, h, wd, cout, k),
        _ => go::<f64>(x, w, b, cin, h, wd, cout, k),
    }
}

/// Gradient of `conv2d_same(x, w)` for `x`, given the output gradient `g (b, cout, h, w)`: the
/// same convolution of `g` with the flipped, transposed weights `w'[i, o] = w[o, i, ::-1, ::-1]`.
pub fn conv2d_same_input_grad(g: &Tensor, w: &Tensor) -> Result<Tensor> {
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
                Ok(conv_batch(gs, s0, b, cout, h, wd, &flipped, cin, k))
            })
        })?;
        Ok(Tensor::from_vec(out, (b, cin, h, wd), &Device::Cpu)?)
    }
    match g.dtype() {
        DType::F32 => go::<f32>(g, w, b, cout, h, wd, cin, k),
        _ => go::<f64>(g, w, b, cout, h, wd, cin, k),
    }
}

/// One image of the weight gradient: `dw[o, i, kh, kw] += sum_{y, x} g[o, y, x] pad[i, y + kh, x + kw]`,
/// `g` with rows padded with zeros to `wg` (a multiple of `WCHUNK`).
#[inline(always)]
fn wgrad_image<T: Real, const K: usize, const FMA: bool>(
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

#[inline(always)]
fn wgrad_block<T: Real, const K: usize, const OB: usize, const FMA: bool>(
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn wgrad_block_fma<T: Real, const K: usize>(
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
    wgrad_block::<T, K, 1, true>(pad, cin, hp, wp, g, o, h, wg, dw)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn wgrad_image_fma<T: Real, const K: usize>(
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
    wgrad_image::<T, K, true>(pad, cin, hp, wp, g, cout, h, wg, dw)
}

fn wgrad_image_dispatch<T: Real, const K: usize>(
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
    #[cfg(target_arch = "x86_64")]
    if has_fma() && T::DTYPE == DType::F32 {
        let (pad, g, dw) = (same::<T, f32>(pad), same(g), same_mut::<T, f32>(dw));
        // AVX-512: blocks of 8 output channels, then the AVX2 kernel from channel `lo` on (the
        // same sums in the same order: bit-identical results).
        let lo = if has_avx512() && cout >= avx512::OBLOCK {
            let full = cout / avx512::OBLOCK * avx512::OBLOCK;
            // SAFETY: the CPU supports AVX-512F (checked at run time); bounds checked inside.
            unsafe { avx512::wgrad_f32::<K>(pad, cin, hp, wp, g, full, h, wg, dw) };
            full
        } else {
            0
        };
        let kk = K * K;
        let (g, dw, cout) = (&g[lo * h * wg..], &mut dw[lo * cin * kk..], cout - lo);
        let full = cout / OBLOCK * OBLOCK;
        // SAFETY: the CPU supports AVX2 and FMA; the slice bounds are checked inside.
        unsafe { avx2::wgrad_f32::<K>(pad, cin, hp, wp, g, full, h, wg, dw) };
        for o in full..cout {
            // SAFETY: as above.
            unsafe { wgrad_block_fma::<f32, K>(pad, cin, hp, wp, g, o, h, wg, dw) };
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
        unsafe { wgrad_image_fma::<T, K>(pad, cin, hp, wp, g, cout, h, wg, dw) };
        return;
    }
    wgrad_image::<T, K, false>(pad, cin, hp, wp, g, cout, h, wg, dw)
}

/// Gradient of `conv2d_same(x, w)` for the weight `(cout, cin, k, k)`, given the input `x` and
/// the output gradient `g`.
pub fn conv2d_same_weight_grad(x: &Tensor, g: &Tensor, k: usize) -> Result<Tensor> {
    if !supported(x) || !supported(g) || x.dtype() != g.dtype() || !matches!(k, 1 | 3 | 5) {
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
                let threads = rayon::current_num_threads().max(1);
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
                                pad, cin, hp, wp, g_rows, cout, h, wg, &mut dw,
                            ),
                            3 => wgrad_image_dispatch::<T, 3>(
                                pad, cin, hp, wp, g_rows, cout, h, wg, &mut dw,
                            ),
                            _ => wgrad_image_dispatch::<T, 5>(
                                pad, cin, hp, wp, g_rows, cout, h, wg, &mut dw,
                            ),
                        });
                    }
                    dw
                };
                let mut dw = vec![T::zero(); n_w];
                for round in (0..groups).step_by(threads) {
                    let partials: Vec<Vec<T>> = (round..(round + threads).min(groups))
                        .into_par_iter()
                        .map(group)
                        .collect();
                    for p in partials {
                        for (a, v) in dw.iter_mut().zip(p) {
                            *a += v;
                        }
                    }
                }
                Ok(dw)
            })
        })?;
        Ok(Tensor::from_vec(dw, (cout, cin, k, k), &Device::Cpu)?)
    }
    match x.dtype() {
        DType::F32 => go::<f32>(x, g, b, cin, h, wd, cout, k),
        _ => go::<f64>(x, g, b, cin, h, wd, cout, k),
    }
}

/// Define `fn $name<T: Real>(args) -> R` twice over one `#[inline(always)]` body: compiled
/// for baseline x86-64 (the crate's target, SSE2) and for AVX-512, chosen at run time
/// ([`has_avx512`]). The element loops of the body are then vectorised 16 lanes (f32) or 8
/// lanes (f64) wide: the same IEEE operations in the same order, so the same results bit for
/// bit (Rust never contracts a multiply and an add into an FMA on its own).
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident<T: Real>($($a:ident: $t:ty),* $(,)?) -> $r:ty $body:block) => {
        $(#[$m])*
        fn $name<T: Real>($($a: $t),*) -> $r {
            #[inline(always)]
            fn body<T: Real>($($a: $t),*) -> $r $body
            #[cfg(target_arch = "x86_64")]
            if has_avx512() {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
                unsafe fn wide<T: Real>($($a: $t),*) -> $r {
                    body::<T>($($a),*)
                }
                // SAFETY: the CPU supports these features (checked at run time).
                return unsafe { wide::<T>($($a),*) };
            }
            body::<T>($($a),*)
        }
    };
}

multiversion! {
    /// `sum x_j` in f64 ([`lane_sum`] order).
    fn sum_plain<T: Real>(x: &[T]) -> f64 {
        lane_sum(x, &x[..0], |v, _| (v, 0.0)).0
    }
}

multiversion! {
    /// `sum (x_j - mean)^2` in f64 ([`lane_sum`] order).
    fn sum_sq_dev<T: Real>(x: &[T], mean: f64) -> f64 {
        lane_sum(x, &x[..0], |v, _| ((v - mean) * (v - mean), 0.0)).0
    }
}

multiversion! {
    /// `(sum g_j, sum g_j (x_j - mu) inv)` in f64 ([`lane_sum`] order).
    fn sum_bn_back<T: Real>(g: &[T], x: &[T], mu: f64, inv: f64) -> (f64, f64) {
        lane_sum(g, x, |g, x| (g, g * (x - mu) * inv))
    }
}

multiversion! {
    /// `o_j = (x_j - a) / b * c + d`.
    fn affine_run<T: Real>(o: &mut [T], x: &[T], a: T, b: T, c: T, d: T) -> () {
        for (o, s) in o.iter_mut().zip(x) {
            *o = (*s - a) / b * c + d;
        }
    }
}

multiversion! {
    /// `o_j = k (g_j - mg - (x_j - mu) inv mgx)`: batch norm's input gradient.
    fn bn_dx_run<T: Real>(o: &mut [T], x: &[T], g: &[T], p: [T; 5]) -> () {
        let [mu, inv, k, mg, mgx] = p;
        for ((o, xv), gv) in o.iter_mut().zip(x).zip(g) {
            let xh = (*xv - mu) * inv;
            *o = k * (*gv - mg - xh * mgx);
        }
    }
}

/// Accumulators of [`lane_sum`]: independent partial sums that the compiler can vectorise
/// (a single running sum is a serial chain of dependent additions).
const LANES: usize = 8;

/// `(sum f(a_j, b_j).0, sum f(a_j, b_j).1)` over `j` in f64, with [`LANES`] partial sums added in
/// lane order at the end; `b` is either as long as `a` or empty (then `f` gets 0 for it).
#[inline(always)]
fn lane_sum<T: Real>(a: &[T], b: &[T], f: impl Fn(f64, f64) -> (f64, f64)) -> (f64, f64) {
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
        return Err(Error::Config(format!(
            "channel_affine: {ch} channels, parameters of lengths {}, {}, {}, {}",
            a.len(),
            b.len(),
            c.len(),
            d.len()
        )));
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
            Ok(par_fill(n * ch * hw, hw, |plane, o: &mut [T]| {
                let ci = plane % ch;
                let s = &xs[plane / ch * s0 + ci * hw..][..hw];
                let (a, b, c, d) = (a[ci], b[ci], c[ci], d[ci]);
                affine_run(o, s, a, b, c, d)
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
                let dx = par_fill(n * ch * hw, hw, |plane, o: &mut [T]| {
                    let ci = plane % ch;
                    let (mu, inv) = (T::from_f64(mean[ci]), T::from_f64(1.0 / s[ci]));
                    let k = T::from_f64(scale[ci] / s[ci]);
                    let mg = T::from_f64(sums[ci].0 / m);
                    let mgx = T::from_f64(sums[ci].1 / m);
                    let (xo, go) = (plane / ch * xs0 + ci * hw, plane / ch * gs0 + ci * hw);
                    bn_dx_run(o, &xs[xo..][..hw], &gs[go..][..hw], [mu, inv, k, mg, mgx])
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

/// `x` where `x > 0`, else 0 (NaN gives 0).
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if !supported(x) {
        return Err(unsupported("relu", x));
    }
    fn go<T: Real>(x: &Tensor) -> Result<Tensor> {
        let out = with_slice::<T, _>(x, |xs| {
            Ok(par_fill(xs.len(), RUN, |i, o: &mut [T]| {
                let s = &xs[i * RUN..][..o.len()];
                // A select (not a conditional store) so that the loop vectorises.
                for (o, v) in o.iter_mut().zip(s) {
                    *o = if *v > T::zero() { *v } else { T::zero() };
                }
            }))
        })?;
        Ok(Tensor::from_vec(out, x.shape(), &Device::Cpu)?)
    }
    match x.dtype() {
        DType::F32 => go::<f32>(x),
        _ => go::<f64>(x),
    }
}

/// Gradient of [`relu`]: `dy` where `x > 0`, else 0.
pub fn relu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    if !supported(x) || x.dtype() != dy.dtype() || x.dims() != dy.dims() {
        return Err(unsupported("relu_backward", x));
    }
    fn go<T: Real>(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
        let out = with_slice::<T, _>(x, |xs| {
            with_slice::<T, _>(dy, |gs| {
                Ok(par_fill(xs.len(), RUN, |i, o: &mut [T]| {
                    let (s, g) = (&xs[i * RUN..][..o.len()], &gs[i * RUN..][..o.len()]);
                    for ((o, v), gv) in o.iter_mut().zip(s).zip(g) {
                        *o = if *v > T::zero() { *gv } else { T::zero() };
                    }
                }))
            })
        })?;
        Ok(Tensor::from_vec(out, x.shape(), &Device::Cpu)?)
    }
    match x.dtype() {
        DType::F32 => go::<f32>(x, dy),
        _ => go::<f64>(x, dy),
    }
}

/// `o_j = u_j + v_j`, or `u_j - v_j` when `sub` (one IEEE operation each).
fn add_run<T: Real>(o: &mut [T], u: &[T], v: &[T], sub: bool) {
    if sub {
        for ((o, u), v) in o.iter_mut().zip(u).zip(v) {
            *o = *u - *v;
        }
    } else {
        for ((o, u), v) in o.iter_mut().zip(u).zip(v) {
            *o = *u + *v;
        }
    }
}

/// `a + b`, or `a - b` when `subtract` (one IEEE addition or subtraction, as candle's), for two
/// 4-D tensors of the same shape whose images are contiguous (e.g. channel halves of a
/// coupling), as a contiguous tensor; parallel over the images.
pub fn add_images(a: &Tensor, b: &Tensor, subtract: bool) -> Result<Tensor> {
    if !supported(a) || a.dtype() != b.dtype() || a.dims() != b.dims() || a.rank() != 4 {
        return Err(unsupported("add_images", a));
    }
    let (n, c, h, w) = a.dims4()?;
    fn go<T: Real>(
        a: &Tensor,
        b: &Tensor,
        dims: (usize, usize, usize, usize),
        sub: bool,
    ) -> Result<Tensor> {
        let (n, c, h, w) = dims;
        let img = c * h * w;
        let out = with_images::<T, _>(a, |xa, sa| {
            with_images::<T, _>(b, |xb, sb| {
                Ok(par_fill(n * img, img, |i, o: &mut [T]| {
                    add_run(o, &xa[i * sa..][..img], &xb[i * sb..][..img], sub)
                }))
            })
        })?;
        Ok(Tensor::from_vec(out, (n, c, h, w), &Device::Cpu)?)
    }
    match a.dtype() {
        DType::F32 => go::<f32>(a, b, (n, c, h, w), subtract),
        _ => go::<f64>(a, b, (n, c, h, w), subtract),
    }
}

/// `cat([a, b + c], 1)` (`b - c` when `subtract`: one IEEE addition or subtraction, as
/// [`add_images`]) in one pass, for 4-D tensors with the same batch and spatial size whose
/// images are contiguous (`b` and `c` of the same shape); parallel over the images. Saves
/// writing `b + c` and copying it again.
pub fn cat_add_channels(a: &Tensor, b: &Tensor, c: &Tensor, subtract: bool) -> Result<Tensor> {
    if !supported(a)
        || a.dtype() != b.dtype()
        || b.dtype() != c.dtype()
        || a.rank() != 4
        || b.dims() != c.dims()
    {
        return Err(unsupported("cat_add_channels", a));
    }
    let (n, ca, h, w) = a.dims4()?;
    let (nb, cb, hb, wb) = b.dims4()?;
    if (n, h, w) != (nb, hb, wb) {
        return Err(Error::ShapeMismatch {
            context: "cat_add_channels".into(),
            expected: format!("({n}, c, {h}, {w})"),
            got: b.dims().to_vec(),
        });
    }
    fn go<T: Real>(
        t: [&Tensor; 3],
        n: usize,
        ca: usize,
        cb: usize,
        hw: usize,
        sub: bool,
    ) -> Result<Tensor> {
        let (ia, ib) = (ca * hw, cb * hw);
        let out = with_images::<T, _>(t[0], |xa, sa| {
            with_images::<T, _>(t[1], |xb, sb| {
                with_images::<T, _>(t[2], |xc, sc| {
                    Ok(par_fill(n * (ia + ib), ia + ib, |i, o: &mut [T]| {
                        o[..ia].copy_from_slice(&xa[i * sa..][..ia]);
                        add_run(&mut o[ia..], &xb[i * sb..][..ib], &xc[i * sc..][..ib], sub)
                    }))
                })
            })
        })?;
        Ok(Tensor::from_vec(out, (n, ca + cb, hw), &Device::Cpu)?)
    }
    let t = match a.dtype() {
        DType::F32 => go::<f32>([a, b, c], n, ca, cb, h * w, subtract)?,
        _ => go::<f64>([a, b, c], n, ca, cb, h * w, subtract)?,
    };
    Ok(t.reshape((n, ca + cb, h, w))?)
}

/// `cat([a, b], 1)` of two 4-D tensors with the same batch and spatial size whose images are
/// contiguous; parallel over the images.
pub fn cat_channels(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !supported(a) || a.dtype() != b.dtype() || a.rank() != 4 || b.rank() != 4 {
        return Err(unsupported("cat_channels", a));
    }
    let (n, ca, h, w) = a.dims4()?;
    let (nb, cb, hb, wb) = b.dims4()?;
    if (n, h, w) != (nb, hb, wb) {
        return Err(Error::ShapeMismatch {
            context: "cat_channels".into(),
            expected: format!("({n}, c, {h}, {w})"),
            got: b.dims().to_vec(),
        });
    }
    fn go<T: Real>(
        a: &Tensor,
        b: &Tensor,
        n: usize,
        ca: usize,
        cb: usize,
        hw: usize,
    ) -> Result<Tensor> {
        let (ia, ib) = (ca * hw, cb * hw);
        let out = with_images::<T, _>(a, |xa, sa| {
            with_images::<T, _>(b, |xb, sb| {
                Ok(par_fill(n * (ia + ib), ia + ib, |i, o: &mut [T]| {
                    o[..ia].copy_from_slice(&xa[i * sa..][..ia]);
                    o[ia..].copy_from_slice(&xb[i * sb..][..ib]);
                }))
            })
        })?;
        Ok(Tensor::from_vec(out, (n, ca + cb, hw), &Device::Cpu)?)
    }
    let t = match a.dtype() {
        DType::F32 => go::<f32>(a, b, n, ca, cb, h * w)?,
        _ => go::<f64>(a, b, n, ca, cb, h * w)?,
    };
    Ok(t.reshape((n, ca + cb, h, w))?)
}

/// Explicit AVX2 + FMA kernels: `f32` (8 lanes) and the `f64` convolution (4 lanes), blocks of
/// [`OBLOCK`] = 4 output channels.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{CHUNK, OBLOCK, WCHUNK};
    use std::arch::x86_64::*;

    /// Output channels `0..cout` (a multiple of 4) of one image; see `conv_block`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn conv_f32<const K: usize>(
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
            pad.len() >= cin * hp * wp
                && hp >= h + K - 1
                && wp >= w.div_ceil(CHUNK) * CHUNK + K - 1
        );
        assert!(wt.len() >= cout * cin * kk && out.len() >= cout * h * w);
        let cstride = cin * kk;
        for o0 in (0..cout).step_by(OBLOCK) {
            for y in 0..h {
                let mut x0 = 0;
                while x0 < w {
                    let mut acc = [_mm256_setzero_ps(); 2 * OBLOCK];
                    for i in 0..cin {
                        let wb = wt.as_ptr().add(o0 * cstride + i * kk);
                        for kh in 0..K {
                            let rp = pad.as_ptr().add((i * hp + y + kh) * wp + x0);
                            for kw in 0..K {
                                let s0 = _mm256_loadu_ps(rp.add(kw));
                                let s1 = _mm256_loadu_ps(rp.add(kw + 8));
                                let t = kh * K + kw;
                                for ob in 0..OBLOCK {
                                    let wv = _mm256_broadcast_ss(&*wb.add(ob * cstride + t));
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
                            _mm256_storeu_ps(dst.as_mut_ptr(), acc[2 * ob]);
                            _mm256_storeu_ps(dst.as_mut_ptr().add(8), acc[2 * ob + 1]);
                        } else {
                            let mut tmp = [0f32; CHUNK];
                            _mm256_storeu_ps(tmp.as_mut_ptr(), acc[2 * ob]);
                            _mm256_storeu_ps(tmp.as_mut_ptr().add(8), acc[2 * ob + 1]);
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
    /// `conv_block` with FMA: the same results bit for bit.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn conv_f64<const K: usize>(
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
            pad.len() >= cin * hp * wp
                && hp >= h + K - 1
                && wp >= w.div_ceil(CHUNK) * CHUNK + K - 1
        );
        assert!(wt.len() >= cout * cin * kk && out.len() >= cout * h * w);
        let cstride = cin * kk;
        for o0 in (0..cout).step_by(OBLOCK) {
            for y in 0..h {
                let mut x0 = 0;
                while x0 < w {
                    let mut acc = [_mm256_setzero_pd(); 2 * OBLOCK];
                    for i in 0..cin {
                        let wb = wt.as_ptr().add(o0 * cstride + i * kk);
                        for kh in 0..K {
                            let rp = pad.as_ptr().add((i * hp + y + kh) * wp + x0);
                            for kw in 0..K {
                                let s0 = _mm256_loadu_pd(rp.add(kw));
                                let s1 = _mm256_loadu_pd(rp.add(kw + 4));
                                let t = kh * K + kw;
                                for ob in 0..OBLOCK {
                                    let wv = _mm256_broadcast_sd(&*wb.add(ob * cstride + t));
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
                        _mm256_storeu_pd(tmp.as_mut_ptr(), acc[2 * ob]);
                        _mm256_storeu_pd(tmp.as_mut_ptr().add(4), acc[2 * ob + 1]);
                        dst.copy_from_slice(&tmp[..n]);
                    }
                    x0 += 8;
                }
            }
        }
    }

    /// Sum of the 8 lanes: (lo + hi) of the 128-bit halves, then pairs, then the last two.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// Output channels `0..cout` (a multiple of 4) of one image; see `wgrad_block`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn wgrad_f32<const K: usize>(
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
                        let prow = pad.as_ptr().add((i * hp + y + kh) * wp);
                        let grow = g.as_ptr().add((o0 * h + y) * wg);
                        let mut x0 = 0;
                        while x0 < wg {
                            let mut p = [_mm256_setzero_ps(); K];
                            for (kw, pv) in p.iter_mut().enumerate() {
                                *pv = _mm256_loadu_ps(prow.add(x0 + kw));
                            }
                            for (ob, acc_o) in acc.iter_mut().enumerate() {
                                let gv = _mm256_loadu_ps(grow.add(ob * h * wg + x0));
                                for kw in 0..K {
                                    acc_o[kw] = _mm256_fmadd_ps(gv, p[kw], acc_o[kw]);
                                }
                            }
                            x0 += WCHUNK;
                        }
                    }
                    for (ob, acc_o) in acc.iter().enumerate() {
                        for (kw, a) in acc_o.iter().enumerate() {
                            dw[((o0 + ob) * cin + i) * kk + kh * K + kw] += hsum(*a);
                        }
                    }
                }
            }
        }
    }
}

/// 512-bit variant of [`avx2`]'s convolution: 8 output channels at a time, two 16-wide column
/// chunks per step where the row has them (16 accumulators), weights broadcast per tap.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{CHUNK, WCHUNK};
    use std::arch::x86_64::*;

    /// Output channels per block.
    pub(super) const OBLOCK: usize = 8;

    /// Output channels `0..cout` (a multiple of [`OBLOCK`]) of one image; same layout and
    /// padding contract as `avx2::conv_f32` (rows of `wp >= round_up(w, 16) + K - 1`).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn conv_f32<const K: usize>(
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
            pad.len() >= cin * hp * wp
                && hp >= h + K - 1
                && wp >= w.div_ceil(CHUNK) * CHUNK + K - 1
        );
        assert!(wt.len() >= cout * cin * kk && out.len() >= cout * h * w);
        let cstride = cin * kk;
        let store = |out: &mut [f32], o: usize, y: usize, x0: usize, v: __m512| {
            let n = CHUNK.min(w - x0);
            let dst = &mut out[(o * h + y) * w + x0..][..n];
            if n == CHUNK {
                _mm512_storeu_ps(dst.as_mut_ptr(), v);
            } else {
                let mut tmp = [0f32; CHUNK];
                _mm512_storeu_ps(tmp.as_mut_ptr(), v);
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
                            let wb = wt.as_ptr().add(o0 * cstride + i * kk);
                            for kh in 0..K {
                                let rp = pad.as_ptr().add((i * hp + y + kh) * wp + x0);
                                for kw in 0..K {
                                    let s0 = _mm512_loadu_ps(rp.add(kw));
                                    let s1 = _mm512_loadu_ps(rp.add(kw + CHUNK));
                                    let t = kh * K + kw;
                                    for ob in 0..OBLOCK {
                                        let wv = _mm512_set1_ps(*wb.add(ob * cstride + t));
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
                            let wb = wt.as_ptr().add(o0 * cstride + i * kk);
                            for kh in 0..K {
                                let rp = pad.as_ptr().add((i * hp + y + kh) * wp + x0);
                                for kw in 0..K {
                                    let s0 = _mm512_loadu_ps(rp.add(kw));
                                    let t = kh * K + kw;
                                    for ob in 0..OBLOCK {
                                        let wv = _mm512_set1_ps(*wb.add(ob * cstride + t));
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
    #[inline]
    #[target_feature(enable = "avx512f,avx2")]
    unsafe fn both(lo: *const f32, hi: *const f32) -> __m512 {
        let lo = _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(lo)));
        let hi = _mm256_castps_pd(_mm256_loadu_ps(hi));
        _mm512_castpd_ps(_mm512_insertf64x4::<1>(lo, hi))
    }

    /// Weight gradient of output channels `0..cout` (a multiple of [`OBLOCK`]) of one image; see
    /// `wgrad_block` and `avx2::wgrad_f32`. A 512-bit vector holds the 8-lane accumulators of
    /// two output channels (lanes 0-7 and 8-15) for the same input row chunk, which is
    /// broadcast to both halves: every lane sums the same products in the same order as the
    /// AVX2 kernel, and the halves are reduced by its `hsum`, so the results are identical.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn wgrad_f32<const K: usize>(
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
                        let prow = pad.as_ptr().add((i * hp + y + kh) * wp);
                        let grow = g.as_ptr().add((o0 * h + y) * wg);
                        let mut x0 = 0;
                        while x0 < wg {
                            let mut p = [_mm512_setzero_ps(); K];
                            for (kw, pv) in p.iter_mut().enumerate() {
                                *pv = both(prow.add(x0 + kw), prow.add(x0 + kw));
                            }
                            for (pr, acc_p) in acc.iter_mut().enumerate() {
                                let a = grow.add(2 * pr * plane + x0);
                                let gv = both(a, a.add(plane));
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
                            _mm512_storeu_ps(t.as_mut_ptr(), *a);
                            let (o, tap) = (o0 + 2 * pr, kh * K + kw);
                            dw[(o * cin + i) * kk + tap] +=
                                super::avx2::hsum(_mm256_loadu_ps(t.as_ptr()));
                            dw[((o + 1) * cin + i) * kk + tap] +=
                                super::avx2::hsum(_mm256_loadu_ps(t.as_ptr().add(8)));
                        }
                    }
                }
            }
        }
    }
}

/// In-place `dst += src` (or `dst -= src` when `subtract`): one IEEE addition or subtraction
/// per element, the same values as [`add_images`]. Both are 4-D with the same shape and
/// contiguous images (e.g. channel halves of a coupling's buffers); `dst` is written through
/// its layout only (the rest of its storage is untouched). The caller must hold `dst`'s
/// storage alone: every tensor sharing it sees the update (the backward driver uses it on
/// buffers it owns, [`crate::backprop`]).
pub fn add_assign(dst: &Tensor, src: &Tensor, subtract: bool) -> Result<()> {
    if !supported(dst) || dst.dtype() != src.dtype() || dst.dims() != src.dims() || dst.rank() != 4
    {
        return Err(unsupported("add_assign", dst));
    }
    let src = if image_contiguous(src) {
        src.clone()
    } else {
        src.contiguous()?
    };
    if !image_contiguous(dst) {
        return Err(unsupported(
            "add_assign (destination images not contiguous)",
            dst,
        ));
    }
    dst.inplace_op2(&src, &AddAssign { subtract })?;
    Ok(())
}

fn image_contiguous(t: &Tensor) -> bool {
    match t.dims4() {
        Ok((b, c, h, w)) => {
            let st = t.layout().stride();
            b > 0 && st[3] == 1 && st[2] == w && st[1] == h * w && c > 0
        }
        Err(_) => false,
    }
}

struct AddAssign {
    subtract: bool,
}

impl AddAssign {
    fn run<T: Real>(
        &self,
        d: &mut [T],
        dl: &candle_core::Layout,
        s: &[T],
        sl: &candle_core::Layout,
    ) {
        let dims = dl.dims();
        let img = dims[1] * dims[2] * dims[3];
        let (sd, ss) = (dl.stride()[0], sl.stride()[0]);
        let (d0, s0) = (dl.start_offset(), sl.start_offset());
        let n = dims[0];
        let d = &mut d[d0..d0 + (n - 1) * sd + img];
        let s = &s[s0..s0 + (n - 1) * ss + img];
        let sub = self.subtract;
        d.par_chunks_mut(sd.max(img))
            .enumerate()
            .for_each(|(i, chunk)| {
                for (o, v) in chunk[..img].iter_mut().zip(&s[i * ss..][..img]) {
                    *o = if sub { *o - *v } else { *o + *v };
                }
            });
    }
}

impl candle_core::InplaceOp2 for AddAssign {
    fn name(&self) -> &'static str {
        "revstab-add-assign"
    }
    fn cpu_fwd(
        &self,
        dst: &mut candle_core::CpuStorage,
        dst_l: &candle_core::Layout,
        src: &candle_core::CpuStorage,
        src_l: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        use candle_core::CpuStorage as S;
        match (dst, src) {
            (S::F32(d), S::F32(s)) => self.run(d, dst_l, s, src_l),
            (S::F64(d), S::F64(s)) => self.run(d, dst_l, s, src_l),
            _ => candle_core::bail!("revstab-add-assign: f32 or f64 tensors of one dtype only"),
        }
        Ok(())
    }
}

/// Invertible leaky ReLU (slope `n > 0`): forward `y = x` where `x > 0`, else `x * n`; with
/// `inverse`, `x = y` where `y > 0`, else `y * (1/n)` (`1/n` rounded to the dtype first: the
/// same values as candle's `where_cond(gt, t, affine(t, m, 0))` that the layer used before).
/// `x` is 4-D with contiguous images (a channel slice is read in place).
pub fn leaky_relu(x: &Tensor, slope: f64, inverse: bool) -> Result<Tensor> {
    if !supported(x) || x.rank() != 4 {
        return Err(unsupported("leaky_relu", x));
    }
    let m = if inverse { 1.0 / slope } else { slope };
    let (n, c, h, w) = x.dims4()?;
    fn go<T: Real>(x: &Tensor, n: usize, img: usize, m: f64) -> Result<Vec<T>> {
        let (m, zero) = (T::from_f64(m), T::zero());
        with_images::<T, _>(x, |xs, s0| {
            Ok(par_fill(n * img, img, |i, o: &mut [T]| {
                for (o, v) in o.iter_mut().zip(&xs[i * s0..][..img]) {
                    *o = if *v > zero { *v } else { *v * m + zero };
                }
            }))
        })
    }
    let t = match x.dtype() {
        DType::F32 => Tensor::from_vec(go::<f32>(x, n, c * h * w, m)?, (n, c, h, w), &Device::Cpu)?,
        _ => Tensor::from_vec(go::<f64>(x, n, c * h * w, m)?, (n, c, h, w), &Device::Cpu)?,
    };
    Ok(t)
}

/// Gradient of [`leaky_relu`] (forward): `dy` where `x > 0`, else `dy * n`. Since `n > 0`, the
/// forward's output `y` has the sign of `x` and may be passed for `x`. Both 4-D with contiguous
/// images.
pub fn leaky_relu_backward(x: &Tensor, dy: &Tensor, slope: f64) -> Result<Tensor> {
    if !supported(x) || x.dtype() != dy.dtype() || x.dims() != dy.dims() || x.rank() != 4 {
        return Err(unsupported("leaky_relu_backward", x));
    }
    let (n, c, h, w) = x.dims4()?;
    fn go<T: Real>(x: &Tensor, dy: &Tensor, n: usize, img: usize, m: f64) -> Result<Vec<T>> {
        let (m, zero) = (T::from_f64(m), T::zero());
        with_images::<T, _>(x, |xs, xs0| {
            with_images::<T, _>(dy, |gs, gs0| {
                Ok(par_fill(n * img, img, |i, o: &mut [T]| {
                    let (s, g) = (&xs[i * xs0..][..img], &gs[i * gs0..][..img]);
                    for ((o, v), gv) in o.iter_mut().zip(s).zip(g) {
                        *o = if *v > zero { *gv } else { *gv * m + zero };
                    }
                }))
            })
        })
    }
    let t = match x.dtype() {
        DType::F32 => Tensor::from_vec(
            go::<f32>(x, dy, n, c * h * w, slope)?,
            (n, c, h, w),
            &Device::Cpu,
        )?,
        _ => Tensor::from_vec(
            go::<f64>(x, dy, n, c * h * w, slope)?,
            (n, c, h, w),
            &Device::Cpu,
        )?,
    };
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        // A fixed pseudo-random sequence in [-1, 1) (no RNG crate needed for a bit-equality test).
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The AVX-512 weight gradient sums the same products in the same order as the AVX2 one:
    /// equal bit for bit, so switching kernels changes no training result.
    #[test]
    #[cfg(target_arch = "x86_64")]
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
        with_padded(&x, cin, h, w, K, |pad, hp, wp| unsafe {
            avx512::wgrad_f32::<K>(pad, cin, hp, wp, &g, cout, h, wg, &mut a);
            avx2::wgrad_f32::<K>(pad, cin, hp, wp, &g, cout, h, wg, &mut b);
        });
        assert!(a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()));
    }

    /// The AVX-512 builds of the elementwise kernels give the baseline builds' results bit for bit.
    #[test]
    fn multiversioned_loops_equal_their_baseline_bit_for_bit() {
        let (x, g) = (data(1003, 4), data(1003, 5));
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
