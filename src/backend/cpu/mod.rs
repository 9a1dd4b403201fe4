//! The crate's own CPU kernels for the hot spots of a training step, one file per
//! operation: "same" convolutions (stride 1, odd kernel 1, 3 or 5, padding `k / 2`) forward,
//! input gradient and weight gradient ([`conv`]); batch statistics, the per-channel affine map
//! of batch norm and its closed-form backward ([`batch_norm`]); ReLU ([`relu`](mod@relu)) and
//! leaky ReLU ([`leaky_relu`](mod@leaky_relu)) and their backward; the additions and
//! concatenations of a coupling ([`add`]). The layers call them under
//! [`Backend::Kernels`](super::Backend::Kernels).
//!
//! Why: candle 0.11's CPU `conv2d` builds im2col tiles with a scalar gather and calls gemm on
//! small tiles (~13 GFLOP/s here), its input gradient is `conv_transpose2d` (a slow direct
//! loop), reductions over `(N, H, W)` walk strided memory, and every elementwise op is one more
//! pass and one more thread hand-off. These kernels work image by image on contiguous NCHW
//! data, in parallel over the batch (rayon), with register-blocked inner loops compiled for
//! AVX2 + FMA when the CPU has them (runtime detection) and portable otherwise.
//!
//! Explicit SIMD (the private `x86` module, x86-64 only): the f32 convolution (forward and input
//! gradient) and weight gradient use AVX-512 where the CPU has it (F, VL, DQ), AVX2 + FMA
//! otherwise; the f64 convolution has an AVX2 kernel; the portable convolution loops are
//! compiled a second time for AVX2 + FMA, and the batch-norm sums and loops for AVX-512. Each
//! explicit kernel performs the same multiply-adds in the same order as the portable loop it
//! replaces, so switching between them never changes a result (tested bit for bit). Outputs are
//! written without being zeroed first (`par_fill`), and padded images live in a per-thread
//! scratch buffer (`with_padded`).
//!
//! Scope: CPU tensors of `f32` or `f64` ([`supported`]), and for the convolutions also `f16` and
//! `bf16`, widened to f32, computed by the f32 kernels and rounded once to the dtype
//! ([`conv_supported`]); each kernel returns an error for anything else, and the layers then use
//! candle's ops. Every kernel is tested against candle's op in f64 (`tests/suite/kernels.rs`).
//! Sums of batch norm are accumulated in f64. Results differ from candle's by rounding only
//! (another summation order; FMA contracts a multiply and an add).
//!
//! Across CPUs: on every x86-64 CPU with AVX2 and FMA the kernels give the same bits, whatever
//! else it has (AVX-512 F/BW/VL/DQ/VNNI/BF16/FP16, AMX) and whatever its caches and thread count:
//! the explicit kernels repeat the portable loops' operations in order, no kernel uses the
//! AVX-512 FP16/BF16 or AMX arithmetic, and the im2col matrix products ([`im2col`]) run gemm's
//! FMA kernels (gemm's AVX-512 kernels are left out of the build: its `x86-v4` feature is off)
//! with reductions cut into blocks fixed here rather than derived from the L1 cache
//! ([`im2col::gemm_splits_by_cache`]). A CPU without FMA (and any non-x86 CPU) runs the portable
//! loops without FMA and gets other bits; [`kernel_paths`] names the paths that ran, and every
//! result records it.

pub mod add;
pub mod batch_norm;
pub mod conv;
pub mod im2col;
pub mod leaky_relu;
pub mod relu;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use add::{add_assign, add_images, cat_add_channels, cat_channels};
pub use batch_norm::{batch_norm_backward, channel_affine, channel_stats, BnGrads};
pub use conv::{
    conv2d_same, conv2d_same_input_grad, conv2d_same_input_grad_via, conv2d_same_via,
    conv2d_same_weight_grad, conv2d_same_weight_grad_via, ConvPath,
};
pub use leaky_relu::{leaky_relu, leaky_relu_backward};
pub use relu::{relu, relu_backward};

use crate::error::{Error, Result};
use candle_core::{DType, Storage, Tensor, WithDType};
use rayon::prelude::*;

/// Width (elements) of the output-row chunk of the convolution kernels.
const CHUNK: usize = 16;
/// Width of the row chunk of the weight-gradient kernel.
const WCHUNK: usize = 8;
/// Output channels computed together.
const OBLOCK: usize = 4;
/// Elements per parallel task of the elementwise kernels.
const RUN: usize = 1 << 14;

mod sealed {
    /// The element types of the kernels, `f32` and `f64`, and no others: the unsafe code of the
    /// kernels relies on every bit pattern being a value and on an alignment of at most 8.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// Element types of the kernels: `f32` and `f64` (sealed: no other type can implement it).
pub trait Real: WithDType + sealed::Sealed {
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

/// The code the kernels run on this CPU, by kernel family, on one line (recorded in the
/// provenance of every result, see [`crate::provenance`]): the f32 convolutions (`avx512`:
/// AVX-512 blocks with AVX2 + FMA for the rest, `avx2`: AVX2 + FMA, `portable`: the portable
/// loops without FMA), the f64 convolutions (`avx2` or `portable`), f16 and bf16 convolutions
/// (the f32 ones, rounded), the batch-norm loops (`avx512` build or `baseline`) and the matrix
/// products of im2col (`gemm` with its `fma` kernels, `scalar` without FMA, `neon` on aarch64;
/// reductions cut into blocks of at most [`im2col::GEMM_DEPTH`]). The `avx512`, `avx2` and
/// `baseline` variants of a family give the same bits; `portable` (no FMA) does not.
pub fn kernel_paths() -> String {
    #[cfg(target_arch = "x86_64")]
    let (avx512, fma) = (x86::has_avx512(), x86::has_fma());
    #[cfg(not(target_arch = "x86_64"))]
    let (avx512, fma) = (false, false);
    let conv32 = match (avx512, fma) {
        (true, _) => "avx512",
        (false, true) => "avx2",
        _ => "portable",
    };
    let conv64 = if fma { "avx2" } else { "portable" };
    let bn = if avx512 { "avx512" } else { "baseline" };
    let gemm = if cfg!(target_arch = "aarch64") {
        "neon"
    } else if fma {
        "fma"
    } else {
        "scalar"
    };
    format!(
        "f32 conv {conv32}, f64 conv {conv64}, f16/bf16 conv in f32, batch norm {bn}, \
         im2col gemm {gemm} (depth <= {})",
        im2col::GEMM_DEPTH
    )
}

/// Whether the kernels take `t`: a CPU tensor of `f32` or `f64`. Whether they are used is the
/// [`Backend`](super::Backend)'s choice ([`Backend::applies`](super::Backend::applies)).
pub fn supported(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

/// Whether the convolution kernels take `t`: a CPU tensor of `f32` or `f64` (computed in its
/// dtype), or of `f16` or `bf16`, computed in f32 ([`conv_dtypes`]).
pub fn conv_dtype_supported(t: &Tensor) -> bool {
    t.device().is_cpu()
        && matches!(
            t.dtype(),
            DType::F32 | DType::F64 | DType::F16 | DType::BF16
        )
}

/// Run a convolution kernel `f` on tensors of a [`conv_dtype_supported`] dtype: as they are in
/// f32 and f64; f16 and bf16 widened to f32 (exactly), the result rounded once to the dtype.
/// The half-precision convolutions thus run the f32 kernels, whose results do not depend on the
/// CPU (candle's CPU convolution sums through `gemm`, whose reduction blocks do, see
/// [`im2col::gemm_splits_by_cache`]), and accumulate in f32 as candle's did.
fn conv_dtypes(
    ts: [&Tensor; 2],
    f: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let dtype = ts[0].dtype();
    match dtype {
        DType::F16 | DType::BF16 => {
            let (a, b) = (ts[0].to_dtype(DType::F32)?, ts[1].to_dtype(DType::F32)?);
            Ok(f(&a, &b)?.to_dtype(dtype)?)
        }
        _ => f(ts[0], ts[1]),
    }
}

/// Whether the convolution kernels take input `x` and weight `w` (OIHW) with stride `stride`:
/// CPU tensors of one dtype, f32, f64, f16 or bf16 ([`conv_dtype_supported`]).
pub fn conv_supported(x: &Tensor, w: &Tensor, stride: usize) -> bool {
    let square_odd = matches!(w.dims(), [_, _, k, k2] if k == k2 && matches!(*k, 1 | 3 | 5));
    stride == 1
        && square_odd
        && conv_dtype_supported(x)
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
        .ok_or_else(|| Error::internal("kernel input", "not contiguous after contiguous()"))?;
    match &*storage {
        Storage::Cpu(cpu) => f(&T::cpu_storage_as_slice(cpu)?[start..end]),
        _ => Err(Error::internal("kernel input", "not on the CPU")),
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
        _ => Err(Error::internal("kernel input", "not on the CPU")),
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
            // `Real` types: the trait is sealed), for which any bits are a value; `fill` writes every element of its
            // chunk before anything reads it (the contract above).
            let c = unsafe { &mut *(c as *mut [std::mem::MaybeUninit<T>] as *mut [T]) };
            fill(i, c)
        });
    // SAFETY: all `len` elements were written by `fill` (the contract above).
    unsafe { out.set_len(len) };
    out
}

/// The sum of `group(0) + group(1) + ... + group(groups - 1)` (vectors of `n` elements), added
/// in group order whatever the thread count: the groups run in parallel in rounds of as many as
/// there are threads, each round's partials added to the total before the next round starts,
/// so at most `threads + 1` such vectors are live (the weight gradients' partial sums).
fn sum_in_rounds<T: Real>(
    groups: usize,
    n: usize,
    group: impl Fn(usize) -> Vec<T> + Sync + Send,
) -> Vec<T> {
    let threads = rayon::current_num_threads().max(1);
    let mut total = vec![T::zero(); n];
    for round in (0..groups).step_by(threads) {
        let partials: Vec<Vec<T>> = (round..(round + threads).min(groups))
            .into_par_iter()
            .map(&group)
            .collect();
        for p in partials {
            total
                .par_chunks_mut(RUN)
                .zip(p.par_chunks(RUN))
                .for_each(|(a, p)| {
                    for (a, v) in a.iter_mut().zip(p) {
                        *a += *v;
                    }
                });
        }
    }
    total
}

/// The error of a kernel called on a tensor it does not take.
fn unsupported(what: &str, t: &Tensor) -> Error {
    let (dtype, device) = (t.dtype(), t.device().location());
    Error::internal(
        what,
        format!("no kernel for {dtype:?} tensors on {device:?} (use candle's op)"),
    )
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

/// A fixed pseudo-random sequence in [-1, 1) (no RNG crate needed for the bit-equality tests of
/// the explicit SIMD kernels against the portable loops).
#[cfg(test)]
fn test_data(n: usize, seed: u32) -> Vec<f32> {
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
