//! Results that travel between machines: the kernels' sums do not depend on the CPU's
//! caches or vector extensions, half-precision convolutions run the f32 kernels, and every
//! result names the CPU and the kernel paths that computed it.
//!
//! The defects pinned here: on an AVX-512 Xeon (Sapphire Rapids: 48 KiB, 12-way L1d) the f64
//! layer-wise rows of `figures/precision.csv` differed from those computed on an AMD EPYC
//! (32 KiB, 8-way), because `gemm` cut the 576-term reductions of the im2col convolutions into
//! blocks by the L1 cache it detected (2 x 288 on the EPYC, 1 x 576 on the Xeon); the f16 rows
//! differed because candle's f16 convolution sums through the same `gemm` blocking.

use candle_core::{DType, Device, Tensor};
use revstab::backend::cpu::{self, im2col, ConvPath};

/// A tensor of `shape` with values spread over the whole f64 mantissa (so that every rounding
/// shows), deterministic.
fn data(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f64> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn values<T: candle_core::WithDType>(t: &Tensor) -> Vec<T> {
    t.flatten_all().unwrap().to_vec1::<T>().unwrap()
}

/// Multiply-add in the element type, fused.
trait Fma: Copy + std::ops::Add<Output = Self> + Default {
    fn fma(a: Self, b: Self, c: Self) -> Self;
}
impl Fma for f32 {
    fn fma(a: Self, b: Self, c: Self) -> Self {
        a.mul_add(b, c)
    }
}
impl Fma for f64 {
    fn fma(a: Self, b: Self, c: Self) -> Self {
        a.mul_add(b, c)
    }
}

/// The same convolution `x (b, cin, h, w)` * `wt (cout, cin, k, k)`, "same" padding, summed the
/// way the im2col path must sum it on every CPU: over the reduction index `(i, kh, kw)` in order
/// (zero outside the image), in blocks of `block` terms, each block a chain of fused
/// multiply-adds from zero, the blocks added one after the other.
fn blocked_conv<T: Fma>(
    x: &[T],
    wt: &[T],
    (b, cin, h, w): (usize, usize, usize, usize),
    cout: usize,
    k: usize,
    block: usize,
) -> Vec<T> {
    let (red, p) = (cin * k * k, (k / 2) as isize);
    let mut out = vec![T::default(); b * cout * h * w];
    for n in 0..b {
        for o in 0..cout {
            for y in 0..h {
                for xx in 0..w {
                    let term = |r: usize| {
                        let (i, t) = (r / (k * k), r % (k * k));
                        let (sy, sx) = (
                            y as isize + (t / k) as isize - p,
                            xx as isize + (t % k) as isize - p,
                        );
                        let v = if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                            T::default()
                        } else {
                            x[((n * cin + i) * h + sy as usize) * w + sx as usize]
                        };
                        (wt[o * red + r], v)
                    };
                    let mut total = T::default();
                    for (bi, r0) in (0..red).step_by(block).enumerate() {
                        let mut acc = T::default();
                        for r in r0..(r0 + block).min(red) {
                            let (a, v) = term(r);
                            acc = T::fma(a, v, acc);
                        }
                        total = if bi == 0 { acc } else { total + acc };
                    }
                    out[((n * cout + o) * h + y) * w + xx] = total;
                }
            }
        }
    }
    out
}

/// Shapes of the im2col tests, `(x dims, cout, the reduction block every CPU must use)`.
/// 64 -> 64 channels of 3x3 on 4x4 images, batch 8 (the precision figure's last stage): 576
/// terms, a 64 x 128 product that gemm blocks by the cache: 2 x 288. 128 -> 72 channels: 1152
/// terms, 3 x 384. 64 -> 16 channels on 2 images: a 16 x 32 product, which gemm itself blocks
/// in 512 terms whatever the cache (kept as it is).
const GEMM_SHAPES: [((usize, usize, usize, usize), usize, usize); 3] = [
    ((8, 64, 4, 4), 64, 288),
    ((4, 128, 4, 4), 72, 384),
    ((2, 64, 4, 4), 16, 512),
];

fn check_gemm_blocks<T: Fma + cpu::Real>(dtype: DType) {
    for (s, &(dims, cout, block)) in GEMM_SHAPES.iter().enumerate() {
        let (b, cin, h, w) = dims;
        let x = data(&[b, cin, h, w], 10 + s as u64)
            .to_dtype(dtype)
            .unwrap();
        let wt = (data(&[cout, cin, 3, 3], 20 + s as u64) * 0.05)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let want = blocked_conv::<T>(&values(&x), &values(&wt), dims, cout, 3, block);
        for path in [ConvPath::Gemm, ConvPath::Auto] {
            if path == ConvPath::Auto && !path.conv_gemm::<T>(cin, 3, h, w) {
                continue;
            }
            let got: Vec<T> = values(&cpu::conv2d_same_via(&x, &wt, path).unwrap());
            let differ = got
                .iter()
                .zip(&want)
                .filter(|(a, b)| a.to_f64().to_bits() != b.to_f64().to_bits())
                .count();
            assert_eq!(
                differ,
                0,
                "{dtype:?} {dims:?} -> {cout} ({path:?}): {differ} of {} outputs differ from \
                 blocks of {block}",
                want.len()
            );
        }
    }
}

/// The im2col convolution sums each output in blocks fixed by the shape, not by the L1 cache
/// gemm detects: equal bit for bit to the blocked sums of [`blocked_conv`] in f64 and f32. (On
/// a CPU whose L1 made gemm sum 576 terms at once, the f64 results differed from the EPYC's.)
#[test]
fn gemm_conv_reductions_do_not_depend_on_the_l1_cache() {
    // Only where gemm runs its FMA kernels (x86-64 with AVX2 + FMA), as the blocked sums do.
    if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
        eprintln!("no AVX2 + FMA: gemm runs other kernels");
        return;
    }
    check_gemm_blocks::<f64>(DType::F64);
    check_gemm_blocks::<f32>(DType::F32);
}

/// Which products gemm would block by the cache: the ones of the tests above, and not the small
/// ones it blocks itself, matrix-vector products or reductions of at most 512.
#[test]
fn gemm_cache_blocking_is_recognised_by_shape() {
    // forward of 64 -> 64 channels, 128 columns, 576 terms: `dst (64, 128)`, `W (64, 576)`,
    // `col (576, 128)`.
    assert!(im2col::gemm_splits_by_cache(
        64, 128, 576, 128, 576, 1, 128, 1
    ));
    assert!(!im2col::gemm_splits_by_cache(
        64, 128, 512, 128, 512, 1, 128, 1
    ));
    assert!(!im2col::gemm_splits_by_cache(
        16, 32, 576, 32, 576, 1, 32, 1
    ));
    assert!(!im2col::gemm_splits_by_cache(
        1, 128, 576, 128, 576, 1, 128, 1
    ));
    assert_eq!(im2col::GEMM_DEPTH, 512);
}

/// f16 and bf16 convolutions (forward, input gradient, weight gradient) are the f32 kernels'
/// results rounded once to the dtype, bit for bit: they no longer sum through candle's f16
/// `gemm`, whose reduction blocks follow the CPU's L1 cache.
#[test]
fn f16_and_bf16_convolutions_are_the_f32_kernels_rounded_once() {
    let x32 = data(&[8, 64, 4, 4], 1).to_dtype(DType::F32).unwrap();
    let w32 = (data(&[64, 64, 3, 3], 2) * 0.05)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let g32 = data(&[8, 64, 4, 4], 3).to_dtype(DType::F32).unwrap();
    for dtype in [DType::F16, DType::BF16] {
        let (x, w, g) = (
            x32.to_dtype(dtype).unwrap(),
            w32.to_dtype(dtype).unwrap(),
            g32.to_dtype(dtype).unwrap(),
        );
        // The f32 inputs the kernels see: the half-precision values widened.
        let (xw, ww, gw) = (
            x.to_dtype(DType::F32).unwrap(),
            w.to_dtype(DType::F32).unwrap(),
            g.to_dtype(DType::F32).unwrap(),
        );
        assert!(cpu::conv_supported(&x, &w, 1), "{dtype:?}");
        let pairs = [
            (
                cpu::conv2d_same(&x, &w).unwrap(),
                cpu::conv2d_same(&xw, &ww).unwrap(),
            ),
            (
                cpu::conv2d_same_input_grad(&g, &w).unwrap(),
                cpu::conv2d_same_input_grad(&gw, &ww).unwrap(),
            ),
            (
                cpu::conv2d_same_weight_grad(&x, &g, 3).unwrap(),
                cpu::conv2d_same_weight_grad(&xw, &gw, 3).unwrap(),
            ),
        ];
        for (i, (got, f32_result)) in pairs.into_iter().enumerate() {
            assert_eq!(got.dtype(), dtype);
            let want = f32_result.to_dtype(dtype).unwrap();
            let (a, b) = (
                values::<f32>(&got.to_dtype(DType::F32).unwrap()),
                values::<f32>(&want.to_dtype(DType::F32).unwrap()),
            );
            assert!(
                a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()),
                "{dtype:?} kernel {i}"
            );
        }
    }
}

/// Every `run.json` names the CPU (model, vendor, the extensions detected, the L1 data cache)
/// and the kernel path of each dtype, so that a result whose bits depend on the CPU says which
/// CPU made it.
#[test]
fn run_json_provenance_names_cpu_and_kernel_paths() {
    let p = revstab::provenance::record();
    assert!(!p["host_cpu"].as_str().unwrap().is_empty());
    assert!(!p["cpu_vendor"].as_str().unwrap().is_empty());
    assert!(!p["cpu_l1d"].as_str().unwrap().is_empty());
    #[allow(unused_variables)]
    let features: Vec<&str> = p["cpu_features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(
            features.contains(&"avx2"),
            std::is_x86_feature_detected!("avx2")
        );
        assert_eq!(
            features.contains(&"avx512f"),
            std::is_x86_feature_detected!("avx512f")
        );
    }
    let kernels = p["kernel_paths"].as_str().unwrap();
    assert_eq!(kernels, cpu::kernel_paths());
    for part in [
        "f32 conv ",
        "f64 conv ",
        "f16/bf16 conv in f32",
        "im2col gemm ",
    ] {
        assert!(kernels.contains(part), "{kernels}");
    }
    // The caption line rebuilt from the record names the same CPU.
    let line = revstab::provenance::cpu_line_of(&p).unwrap();
    assert!(
        line.starts_with(&revstab::provenance::cpu_summary()),
        "{line}"
    );
    assert!(line.ends_with(&format!("; kernels {kernels}")), "{line}");
}
