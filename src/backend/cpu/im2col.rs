//! "Same" convolutions as matrix products (im2col + GEMM) for many channels on small images:
//! the regime of the paper's later stages (128-channel quarters at 8x8 and 4x4 after channel
//! and batch pooling), where the direct kernels of [`super::conv`] re-read each input row once
//! per block of 4 output channels and run out of registers to reuse it.
//!
//! A group of `g` consecutive images is unrolled into a column matrix
//! `col (cin * k * k, g * h * w)`: row `(i, kh, kw)`, column `(n, y, x)`, value
//! `x[n, i, y + kh - p, x + kw - p]` (zero outside the image, `p = k / 2`). Then
//! - forward (and input gradient, a forward with the flipped, transposed weights):
//!   `out (cout, g*h*w) = W (cout, cin*k*k) * col`, scattered back to NCHW;
//! - weight gradient: `dW (cout, cin*k*k) += G (cout, g*h*w) * col^T`, with `G` the group's
//!   output gradient gathered channel-major.
//!
//! The products are computed by the `gemm` crate (the one candle's CPU matmul uses), one call
//! per group without internal threads (`Parallelism::None`); the groups run in parallel (rayon).
//! `g` is chosen from the shape alone ([`group_images`]: about [`GROUP_COLUMNS`] columns), and
//! weight-gradient partial sums are added in group order, so a result does not depend on the
//! thread count. The sums run in another order than the direct kernels' (results differ from
//! them by rounding; tested against candle's convolution in f64).
//!
//! Which shapes take this path: [`use_gemm`] (measured, see its doc comment).

use super::Real;

/// Columns of the column matrix per group (images are grouped until a group has at least this
/// many pixels): enough for the GEMM to reach its throughput, small enough that the matrix of a
/// 128-channel 3x3 convolution (1152 rows) stays about 1 MiB.
pub const GROUP_COLUMNS: usize = 256;

/// Whether a same convolution with `cin` input channels, kernel `k` and images of `h x w` runs
/// as im2col + GEMM. Measured on a 2-core AMD EPYC (AVX2 + FMA), f32, forward, input gradient
/// and weight gradient of each path (`bench --conv-shapes`): the direct kernels win on images of
/// 16x16 and more at every channel count tried (up to 128: 110-145 GFLOP/s against 60-115), and
/// on 8x8 images up to 32 channels (about equal there); im2col + GEMM wins on 8x8 images from
/// 64 channels of 3x3 (128 channels: 90-100 GFLOP/s against 60-73) and on 4x4 images from 32
/// channels (128 channels: 68-75 GFLOP/s against 33-53; the weight gradient 2x).
pub fn use_gemm(cin: usize, k: usize, h: usize, w: usize) -> bool {
    let (red, hw) = (cin * k * k, h * w);
    if hw <= 16 {
        red >= 288
    } else if hw <= 64 {
        red >= 576
    } else {
        false
    }
}

/// Images per group for images of `hw` pixels in a batch of `b`: the fewest whose columns reach
/// [`GROUP_COLUMNS`], at most `b`.
pub fn group_images(hw: usize, b: usize) -> usize {
    GROUP_COLUMNS.div_ceil(hw.max(1)).clamp(1, b.max(1))
}

/// Scratch of one thread: the column matrix and the product/gradient staging buffer, as `f64`
/// words (which also hold `f32`s), reused between groups (a fresh megabyte per group cost page
/// faults).
struct Scratch {
    col: Vec<f64>,
    stage: Vec<f64>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> =
        const { std::cell::RefCell::new(Scratch { col: Vec::new(), stage: Vec::new() }) };
}

/// `words` f64 words of `v` as `n` elements of `T`, growing `v` when short.
fn as_elems<T: Real>(v: &mut Vec<f64>, n: usize) -> &mut [T] {
    let words = (n * std::mem::size_of::<T>()).div_ceil(8);
    if v.len() < words {
        v.resize(words, 0.0);
    }
    assert!(std::mem::align_of::<T>() <= 8 && std::mem::size_of::<T>() <= 8);
    // SAFETY: `v` holds at least `n` elements of `T` (f32 or f64: any bits are a value, alignment
    // at most that of f64), initialised, and is borrowed mutably for the result's lifetime.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut T, n) }
}

/// Run `f(col, stage)` with this thread's scratch sized `ncol` and `nstage` elements.
fn with_scratch<T: Real, R>(
    ncol: usize,
    nstage: usize,
    f: impl FnOnce(&mut [T], &mut [T]) -> R,
) -> R {
    SCRATCH.with(|cell| {
        let mut s = cell.borrow_mut();
        let Scratch { col, stage } = &mut *s;
        f(as_elems::<T>(col, ncol), as_elems::<T>(stage, nstage))
    })
}

/// Unroll images `n0..n0 + g` of `x` (image stride `xs`, each `(cin, h, w)`) into
/// `col (cin * k * k, g * h * w)`, row-major. Each image is zero-padded once (the per-thread
/// buffer of [`super::with_padded`]), then every row of the column matrix is a run of
/// `w`-element copies from it (fixed-size copies for the widths of the paper's stages: a
/// `memcpy` call per 4 or 8 elements cost more than the product).
fn im2col<T: Real>(
    x: &[T],
    xs: usize,
    n0: usize,
    g: usize,
    cin: usize,
    h: usize,
    w: usize,
    k: usize,
    col: &mut [T],
) {
    let hw = h * w;
    let ncols = g * hw;
    for n in 0..g {
        super::with_padded(
            &x[(n0 + n) * xs..][..cin * hw],
            cin,
            h,
            w,
            k,
            |pad, hp, wp| {
                for i in 0..cin {
                    for kh in 0..k {
                        for kw in 0..k {
                            let row = &mut col[((i * k + kh) * k + kw) * ncols + n * hw..][..hw];
                            for y in 0..h {
                                let src = &pad[(i * hp + y + kh) * wp + kw..][..w];
                                copy_row(&mut row[y * w..][..w], src);
                            }
                        }
                    }
                }
            },
        )
    }
}

/// `dst.copy_from_slice(src)` with fixed-size copies (vector moves, no call) for 4, 8 and 16
/// elements.
#[inline(always)]
fn copy_row<T: Real>(dst: &mut [T], src: &[T]) {
    fn fixed<T: Real, const N: usize>(dst: &mut [T], src: &[T]) {
        let s: &[T; N] = src.try_into().expect("row length");
        let d: &mut [T; N] = dst.try_into().expect("row length");
        *d = *s;
    }
    match dst.len() {
        4 => fixed::<T, 4>(dst, src),
        8 => fixed::<T, 8>(dst, src),
        16 => fixed::<T, 16>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// The longest reduction one `gemm` call of [`matmul`] sums where gemm would cut it by the cache
/// ([`gemm_splits_by_cache`]): a longer one is cut into `k.div_ceil(512)` blocks of
/// `k.div_ceil(k.div_ceil(512))` terms (the last one shorter), one call each, the first writing
/// `dst` and the others adding to it.
pub const GEMM_DEPTH: usize = 512;

/// Whether `gemm` 0.19 (`gemm_common::gemm::gemm_basic_generic`) would cut the reduction of this
/// product into blocks whose length it derives from the L1 data cache it detects at run time
/// (`gemm_common::cache::kernel_params`, from the cache's size and ways read from sysfs or
/// CPUID: blocks of at least 512 terms, so that shorter reductions are never cut). The blocks
/// are summed one after the other into `dst`, so the block length is part of the rounding: with
/// a 32 KiB, 8-way L1 (AMD EPYC) gemm cuts 576 terms into 2 x 288, with a 48 KiB, 12-way one
/// (Sapphire Rapids Xeon) it sums all 576 at once. Not so for the products gemm takes
/// elsewhere (fixed blocks or none): at most 64 x 64, matrix-vector, the "horizontal" kernel of
/// small products with contiguous reductions, reductions of 1 or 2 terms. The strides are
/// gemm's arguments (it transposes a product with a row-major destination first).
pub fn gemm_splits_by_cache(
    m: usize,
    n: usize,
    k: usize,
    dst_rs: usize,
    lhs_rs: usize,
    lhs_cs: usize,
    rhs_rs: usize,
    rhs_cs: usize,
) -> bool {
    let dst_cs = 1;
    // `gemm::gemm` transposes the product when `|dst_cs| < |dst_rs|`.
    let (m, n, dst_cs, dst_rs, lhs_cs, lhs_rs, rhs_cs, rhs_rs) = if dst_cs < dst_rs {
        (n, m, dst_rs, dst_cs, rhs_rs, rhs_cs, lhs_rs, lhs_cs)
    } else {
        (m, n, dst_cs, dst_rs, lhs_cs, lhs_rs, rhs_cs, rhs_rs)
    };
    let horizontal = lhs_cs == 1 && rhs_rs == 1 && m * n <= 16 * 16;
    let gemv = (n <= 1 && ((lhs_rs == 1 && dst_rs == 1) || (lhs_cs == 1 && rhs_rs == 1)))
        || (m <= 1 && ((rhs_cs == 1 && dst_cs == 1) || (rhs_rs == 1 && lhs_cs == 1)));
    let small = m <= 64 && n <= 64;
    k > GEMM_DEPTH && !horizontal && !gemv && !small
}

/// `dst (m, n) = lhs (m, k) * rhs (k, n)` (with `accumulate`, `dst += lhs * rhs`) with element strides `(row, column)` of each, by the
/// `gemm` crate on this thread. Every stride and extent is bounded by the slices (checked).
///
/// The same sums in the same order on every x86-64 CPU with AVX2 and FMA: gemm runs its FMA
/// kernels there (its AVX-512 kernels are compiled only with its `x86-v4` feature, which this
/// crate does not enable), each output a chain of fused multiply-adds along the reduction; the
/// one thing it takes from the CPU is the length of the reduction blocks
/// ([`gemm_splits_by_cache`]), fixed here by cutting such reductions into blocks of at most
/// [`GEMM_DEPTH`] (the blocks gemm itself makes with a 32 KiB, 8-way L1: the results on such a
/// CPU are unchanged), each of which gemm then sums in one pass.
fn matmul<T: Real>(
    accumulate: bool,
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    dst_rs: usize,
    lhs: &[T],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[T],
    rhs_rs: usize,
    rhs_cs: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() > (m - 1) * dst_rs + (n - 1));
    if k == 0 {
        if accumulate {
            return;
        }
        for r in 0..m {
            dst[r * dst_rs..][..n].fill(T::zero());
        }
        return;
    }
    assert!(lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    let blocks = if gemm_splits_by_cache(m, n, k, dst_rs, lhs_rs, lhs_cs, rhs_rs, rhs_cs) {
        k.div_ceil(GEMM_DEPTH)
    } else {
        1
    };
    let kc = k.div_ceil(blocks);
    for (i, d0) in (0..k).step_by(kc).enumerate() {
        let kb = kc.min(k - d0);
        let add = accumulate || i > 0;
        // SAFETY: the asserts above keep every element the product reads or writes inside the
        // slices (the block's reduction `d0..d0 + kb` lies within `0..k`); `dst` does not alias
        // `lhs` or `rhs` (a `&mut` borrow); `T` is f32 or f64, types gemm takes (`Real` is
        // sealed).
        unsafe {
            gemm::gemm(
                m,
                n,
                kb,
                dst.as_mut_ptr(),
                1,
                dst_rs as isize,
                add,
                lhs.as_ptr().add(d0 * lhs_cs),
                lhs_cs as isize,
                lhs_rs as isize,
                rhs.as_ptr().add(d0 * rhs_rs),
                rhs_cs as isize,
                rhs_rs as isize,
                // dst = alpha dst + beta lhs rhs (alpha read only when adding).
                if add { T::one() } else { T::zero() },
                T::one(),
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    }
}

/// Same convolution of `x (b, cin, h, w)` (image stride `xs`) with `wt (cout, cin, k, k)`:
/// `(b, cout, h, w)`, contiguous.
pub fn conv_batch<T: Real>(
    x: &[T],
    xs: usize,
    b: usize,
    cin: usize,
    h: usize,
    w: usize,
    wt: &[T],
    cout: usize,
    k: usize,
) -> Vec<T> {
    let hw = h * w;
    let red = cin * k * k;
    let g = group_images(hw, b);
    super::par_fill(b * cout * hw, g * cout * hw, |gi, out| {
        let n0 = gi * g;
        let gn = out.len() / (cout * hw);
        let ncols = gn * hw;
        with_scratch::<T, _>(red * ncols, cout * ncols, |col, stage| {
            im2col(x, xs, n0, gn, cin, h, w, k, col);
            matmul(
                false, cout, ncols, red, stage, ncols, wt, red, 1, col, ncols, 1,
            );
            // (cout, g*hw) -> (g, cout, hw).
            for n in 0..gn {
                for o in 0..cout {
                    out[(n * cout + o) * hw..][..hw]
                        .copy_from_slice(&stage[o * ncols + n * hw..][..hw]);
                }
            }
        })
    })
}

/// Lanes of the weight gradient: the groups of images are split into this many contiguous runs
/// (fewer when there are fewer groups), each run accumulated into its own weight-sized sum by
/// the GEMM (`dw += G col^T`, group after group), the lanes then added in lane order
/// ([`super::sum_in_rounds`]). A constant, so the sums do not depend on the thread count; with
/// a partial sum per group, 8 groups wrote and added 8 weight-sized buffers (2.4 MB each for
/// 256 -> 256 channels of 3x3).
pub const WGRAD_LANES: usize = 4;

/// Weight gradient `(cout, cin, k, k)` of the same convolution of `x (b, cin, h, w)` (image
/// stride `xs`) given the output gradient `gr (b, cout, h, w)` (image stride `gs`): the groups
/// of [`group_images`] accumulated lane by lane ([`WGRAD_LANES`]).
pub fn wgrad_batch<T: Real>(
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
) -> Vec<T> {
    let hw = h * w;
    let red = cin * k * k;
    let n_w = cout * red;
    let g = group_images(hw, b);
    let groups = b.div_ceil(g);
    let lanes = groups.clamp(1, WGRAD_LANES);
    let per_lane = groups.div_ceil(lanes);
    let lane = |li: usize| -> Vec<T> {
        let mut dw = vec![T::zero(); n_w];
        for gi in li * per_lane..((li + 1) * per_lane).min(groups) {
            let n0 = gi * g;
            let gn = g.min(b - n0);
            let ncols = gn * hw;
            with_scratch::<T, _>(red * ncols, cout * ncols, |col, stage| {
                im2col(x, xs, n0, gn, cin, h, w, k, col);
                // (g, cout, hw) -> (cout, g*hw).
                for n in 0..gn {
                    for o in 0..cout {
                        stage[o * ncols + n * hw..][..hw]
                            .copy_from_slice(&gr[(n0 + n) * gs + o * hw..][..hw]);
                    }
                }
                matmul(
                    true, cout, red, ncols, &mut dw, red, stage, ncols, 1, col, 1, ncols,
                );
            });
        }
        dw
    };
    super::sum_in_rounds(lanes, n_w, lane)
}
