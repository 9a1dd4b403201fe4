//! The own CPU kernels of `revstab::backend::cpu` against candle's ops (f64 to 1e-12, f32 to
//! 1e-5 relative), over odd and even sizes, kernels 1, 3, 5 and channel counts that do and do
//! not fill the blocks; and the layers' own backward steps against candle autograd.

use crate::common::Tolerance;
use candle_core::{DType, Device, Tensor, Var};
use revstab::backend::{cpu, Backend};
use revstab::backprop::Grads;
use revstab::layers::{
    autograd_vjp, BatchNormConfig, BatchPool, ChannelPool, Conv2d, Head, InvBatchNorm,
    InvLeakyReLU, Layer, MaxPool2, ParamStore, Pass, Relu,
};
use revstab::util::{randn, rng_for};

fn rand(seed: u64, shape: &[usize], dtype: DType) -> Tensor {
    let mut rng = rng_for(seed, "kernel-test");
    randn(&mut rng, shape, 0.2, 1.0, dtype, &Device::Cpu).unwrap()
}

const SHAPES: [(usize, usize, usize, usize, usize, usize); 10] = [
    // (batch, cin, cout, h, w, k); on AVX-512 machines cout 16 takes two 8-channel blocks, 12 one
    // block plus a 4-channel AVX2 block, 9 one block plus a scalar channel; w = 40 a column pair
    // and a ragged single chunk.
    (2, 16, 16, 32, 32, 3),
    (3, 5, 7, 9, 11, 3),
    (1, 1, 1, 1, 1, 3),
    (2, 8, 4, 17, 8, 1),
    (2, 3, 6, 7, 19, 5),
    (4, 4, 9, 16, 16, 3),
    (1, 2, 2, 2, 3, 5),
    (2, 3, 12, 5, 40, 3),
    // Narrow images (f32 on AVX2: the kernels vectorised over the output channels), channel
    // counts that do not fill their 8-channel tiles.
    (4, 12, 17, 4, 2, 3),
    (2, 17, 64, 3, 4, 5),
];

#[test]
fn conv_forward_matches_candle_conv2d() {
    for dtype in [DType::F64, DType::F32] {
        for (s, &(b, ci, co, h, w, k)) in SHAPES.iter().enumerate() {
            let x = rand(s as u64, &[b, ci, h, w], dtype);
            let wt = rand(100 + s as u64, &[co, ci, k, k], dtype);
            let want = x.conv2d(&wt, k / 2, 1, 1, 1).unwrap();
            let got = cpu::conv2d_same(&x, &wt).unwrap();
            Tolerance::for_dtype(dtype).assert_rel_l2(&got, &want, &format!("{dtype:?} shape {s}"));
        }
    }
}

/// Padded images live in a per-thread buffer reused across calls: an image narrower than the
/// one before (same channels, height and padded width) must still see zeros beyond its edge.
#[test]
fn conv_after_a_wider_image_of_the_same_padded_width_matches_candle() {
    for dtype in [DType::F64, DType::F32] {
        for (s, w) in [12usize, 10, 16, 9].into_iter().enumerate() {
            let x = rand(300 + s as u64, &[4, 3, 6, w], dtype);
            let wt = rand(310, &[5, 3, 3, 3], dtype);
            let want = x.conv2d(&wt, 1, 1, 1, 1).unwrap();
            let got = cpu::conv2d_same(&x, &wt).unwrap();
            Tolerance::for_dtype(dtype).assert_rel_l2(&got, &want, &format!("{dtype:?} width {w}"));
        }
    }
}

#[test]
fn conv_gradients_match_candle_autograd() {
    for dtype in [DType::F64, DType::F32] {
        for (s, &(b, ci, co, h, w, k)) in SHAPES.iter().enumerate() {
            let x = Var::from_tensor(&rand(s as u64, &[b, ci, h, w], dtype)).unwrap();
            let wt = Var::from_tensor(&rand(100 + s as u64, &[co, ci, k, k], dtype)).unwrap();
            let g = rand(200 + s as u64, &[b, co, h, w], dtype);
            let y = x
                .as_tensor()
                .conv2d(wt.as_tensor(), k / 2, 1, 1, 1)
                .unwrap();
            let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let dx = cpu::conv2d_same_input_grad(&g, wt.as_tensor()).unwrap();
            let dw = cpu::conv2d_same_weight_grad(x.as_tensor(), &g, k).unwrap();
            let tol = Tolerance::for_dtype(dtype);
            tol.assert_rel_l2(
                &dx,
                grads.get(x.as_tensor()).unwrap(),
                &format!("{dtype:?} shape {s}: dx"),
            );
            tol.assert_rel_l2(
                &dw,
                grads.get(wt.as_tensor()).unwrap(),
                &format!("{dtype:?} shape {s}: dw"),
            );
        }
    }
}

#[test]
fn conv_kernels_refuse_what_they_do_not_cover() {
    let x = rand(0, &[1, 2, 4, 4], DType::F32);
    assert!(
        !cpu::conv_supported(&x, &rand(1, &[2, 2, 2, 2], DType::F32), 1),
        "even kernel"
    );
    assert!(
        !cpu::conv_supported(&x, &rand(1, &[2, 2, 3, 3], DType::F32), 2),
        "stride 2"
    );
    assert!(
        !cpu::conv_supported(&x, &rand(1, &[2, 2, 7, 7], DType::F32), 1),
        "kernel 7"
    );
    // Integers are not taken (f16 and bf16 are: computed in f32, `tests/suite/portable.rs`).
    let u = x.to_dtype(DType::U32).unwrap();
    let wu = rand(1, &[2, 2, 3, 3], DType::F32)
        .to_dtype(DType::U32)
        .unwrap();
    assert!(!cpu::conv_supported(&u, &wu, 1), "u32");
    assert!(cpu::conv2d_same(&u, &wu).is_err());
    // Mixed dtypes are not taken either.
    let h = x.to_dtype(DType::F16).unwrap();
    assert!(
        !cpu::conv_supported(&h, &rand(1, &[2, 2, 3, 3], DType::F32), 1),
        "f16 input, f32 weight"
    );
}

#[test]
fn channel_stats_and_affine_match_candle() {
    for dtype in [DType::F64, DType::F32] {
        let x = rand(5, &[3, 4, 5, 6], dtype);
        let (mean, var) = cpu::channel_stats(&x).unwrap();
        let x64 = x.to_dtype(DType::F64).unwrap();
        let m = x64.mean_keepdim((0, 2, 3)).unwrap();
        let v = x64
            .broadcast_sub(&m)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_keepdim((0, 2, 3))
            .unwrap();
        let (mw, vw) = (
            m.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            v.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        );
        for c in 0..4 {
            assert!(
                (mean[c] - mw[c]).abs() <= 1e-12 && (var[c] - vw[c]).abs() <= 1e-12 * vw[c],
                "{dtype:?} channel {c}"
            );
        }
        let (a, b, c, d) = (
            vec![0.1, -0.2, 0.3, 0.0],
            vec![1.5, 0.5, 2.0, 1.0],
            vec![-1.0, 2.0, 0.5, 3.0],
            vec![0.0, 1.0, -1.0, 0.25],
        );
        let t = |v: &[f64]| {
            Tensor::from_slice(v, (1, 4, 1, 1), &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
        };
        let want = x
            .broadcast_sub(&t(&a))
            .unwrap()
            .broadcast_div(&t(&b))
            .unwrap()
            .broadcast_mul(&t(&c))
            .unwrap()
            .broadcast_add(&t(&d))
            .unwrap();
        let got = cpu::channel_affine(&x, &a, &b, &c, &d).unwrap();
        // Same operations in the same order and dtype: identical.
        Tolerance::EXACT.assert_rel_l2(&got, &want, &format!("{dtype:?}"));
    }
}

#[test]
fn relu_and_its_backward_match_candle() {
    for dtype in [DType::F64, DType::F32] {
        let x = rand(6, &[2, 3, 5, 7], dtype);
        let g = rand(7, &[2, 3, 5, 7], dtype);
        let want = x
            .gt(0.0)
            .unwrap()
            .where_cond(&x, &x.zeros_like().unwrap())
            .unwrap();
        Tolerance::EXACT.assert_rel_l2(&cpu::relu(&x).unwrap(), &want, "relu");
        let want_g = x
            .gt(0.0)
            .unwrap()
            .where_cond(&g, &g.zeros_like().unwrap())
            .unwrap();
        Tolerance::EXACT.assert_rel_l2(
            &cpu::relu_backward(&x, &g).unwrap(),
            &want_g,
            "relu backward",
        );
    }
}

/// The layer's closed-form VJP (no autograd) against candle autograd of its tracked forward.
fn check_layer_backward(layer: &dyn Layer, x: &Tensor, what: &str) {
    let g = rand(
        31,
        layer.forward_pass(x, Pass::Record).unwrap().dims(),
        x.dtype(),
    );
    let (want_dx, want) = autograd_vjp(layer, x, &g).unwrap();
    let mut grads = Grads::new();
    let dx = layer.vjp(x, &g, Some(&mut grads)).unwrap();
    // Ten times the dtype's preset: a layer's VJP chains several kernels.
    let tol = Tolerance::rel(Tolerance::for_dtype(x.dtype()).rel * 10.0);
    tol.assert_rel_l2(&dx, &want_dx, &format!("{what}: input gradient"));
    for p in layer.params() {
        tol.assert_rel_l2(
            &grads[p.name.as_str()],
            &want[&p.name],
            &format!("{what}: {} gradient", p.name),
        );
    }
}

#[test]
fn layer_backward_steps_match_autograd_on_both_backends() {
    for (backend, dtype) in Backend::ALL
        .into_iter()
        .flat_map(|b| [(b, DType::F64), (b, DType::F32)])
    {
        let store = ParamStore::new(3, dtype, &Device::Cpu);
        let x = rand(8, &[3, 6, 9, 10], dtype);
        check_layer_backward(
            &Conv2d::new(&store, "conv", 6, 5, 3, 1, true, 1.0)
                .unwrap()
                .with_backend(backend),
            &x,
            "conv3x3 with bias",
        );
        check_layer_backward(
            &Conv2d::new(&store, "proj", 6, 4, 1, 1, false, 1.0)
                .unwrap()
                .with_backend(backend),
            &x,
            "conv1x1",
        );
        // square input: candle's own conv2d backward mis-sizes dx for stride 2 on non-square inputs
        let sq = rand(8, &[3, 6, 10, 10], dtype);
        check_layer_backward(
            &Conv2d::new(&store, "strided", 6, 4, 3, 2, false, 1.0)
                .unwrap()
                .with_backend(backend),
            &sq,
            "conv stride 2 (generic vjp)",
        );
        check_layer_backward(&Relu::new("relu").with_backend(backend), &x, "relu");
        for (name, cfg) in [
            (
                "bn-plain",
                BatchNormConfig {
                    reparam: false,
                    gamma_spread: 0.5,
                    ..Default::default()
                },
            ),
            (
                "bn-reparam",
                BatchNormConfig {
                    eps_i: 0.1,
                    gamma_spread: 0.5,
                    ..Default::default()
                },
            ),
        ] {
            let bn = InvBatchNorm::new(&store, name, 6, cfg)
                .unwrap()
                .with_backend(backend);
            // a negative gamma exercises the sign of |gamma + eps_i|
            bn.gamma()
                .var
                .set(
                    &Tensor::new(&[1.2, -0.7, 0.3, 2.0, -1.5, 0.9], &Device::Cpu)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap(),
                )
                .unwrap();
            check_layer_backward(&bn, &x, name);
        }
        let y = rand(9, &[4, 6, 8, 10], dtype);
        for slope in [0.01, 0.2, 3.0] {
            let act = InvLeakyReLU::new("act", slope)
                .unwrap()
                .with_backend(backend);
            check_layer_backward(&act, &y, &format!("leaky relu {slope}"));
        }
        check_layer_backward(&ChannelPool::new("pc"), &y, "channel pool");
        check_layer_backward(&BatchPool::new("pb"), &y, "batch pool");
        check_layer_backward(&MaxPool2::new("max"), &y, "max pool");
        check_layer_backward(
            &Head::new(&store, "head", 6, 5, 4).unwrap(),
            &y,
            "head, 4 groups",
        );
    }
}

#[test]
fn batch_norm_fast_forward_matches_the_graph_forward_and_inverts() {
    let store = ParamStore::new(4, DType::F64, &Device::Cpu);
    let bn = InvBatchNorm::new(
        &store,
        "bn",
        6,
        BatchNormConfig {
            eps_i: 0.1,
            gamma_spread: 0.5,
            ..Default::default()
        },
    )
    .unwrap();
    let x = rand(9, &[3, 6, 5, 4], DType::F64);
    let fast = bn.forward_pass(&x, Pass::Record).unwrap();
    let graph = bn.forward_pass(&x, Pass::Graph).unwrap();
    Tolerance::rel(1e-14).assert_rel_l2(&fast, &graph, "record vs graph");
    let replay = bn.forward_pass(&x, Pass::Replay).unwrap();
    Tolerance::EXACT.assert_rel_l2(&replay, &fast, "replay vs record");
    Tolerance::rel(1e-14).assert_rel_l2(&bn.inverse(&fast).unwrap(), &x, "inverse");
}

#[test]
fn channel_halves_are_read_in_place_with_the_same_results() {
    // Channel slices `narrow(1, ..)` of a contiguous tensor are read without a copy: same values
    // as on a contiguous copy, and the elementwise kernels equal candle's ops exactly.
    for dtype in [DType::F64, DType::F32] {
        let full = rand(11, &[3, 8, 9, 10], dtype);
        let other = rand(12, &[3, 8, 9, 10], dtype);
        let (a, b) = (full.narrow(1, 0, 4).unwrap(), full.narrow(1, 4, 4).unwrap());
        let c = other.narrow(1, 4, 4).unwrap();
        let w = rand(13, &[5, 4, 3, 3], dtype);
        let g = rand(14, &[3, 5, 9, 10], dtype);
        let ac = a.contiguous().unwrap();
        let same = |x: &Tensor, y: &Tensor, what: &str| {
            Tolerance::EXACT.assert_rel_l2(x, y, &format!("{dtype:?} {what}"))
        };
        same(
            &cpu::conv2d_same(&b, &w).unwrap(),
            &cpu::conv2d_same(&b.contiguous().unwrap(), &w).unwrap(),
            "conv",
        );
        same(
            &cpu::conv2d_same_weight_grad(&a, &g, 3).unwrap(),
            &cpu::conv2d_same_weight_grad(&ac, &g, 3).unwrap(),
            "weight grad",
        );
        let gw = rand(15, &[4, 5, 3, 3], dtype);
        same(
            &cpu::conv2d_same_input_grad(&c, &gw).unwrap(),
            &cpu::conv2d_same_input_grad(&c.contiguous().unwrap(), &gw).unwrap(),
            "input grad",
        );
        assert_eq!(
            cpu::channel_stats(&a).unwrap(),
            cpu::channel_stats(&ac).unwrap()
        );
        let p = [0.1, 0.2, -0.3, 0.4];
        same(
            &cpu::channel_affine(&a, &p, &[1.0; 4], &p, &p).unwrap(),
            &cpu::channel_affine(&ac, &p, &[1.0; 4], &p, &p).unwrap(),
            "affine",
        );
        let (m, s) = (vec![0.1; 4], vec![1.3; 4]);
        let r1 = cpu::batch_norm_backward(&a, &c, &m, &s, &p).unwrap();
        let r2 = cpu::batch_norm_backward(&ac, &c.contiguous().unwrap(), &m, &s, &p).unwrap();
        same(&r1.dx, &r2.dx, "bn backward");
        assert_eq!((r1.dscale, r1.dshift), (r2.dscale, r2.dshift));
        same(
            &cpu::add_images(&a, &c, false).unwrap(),
            &(&a + &c).unwrap(),
            "add",
        );
        same(
            &cpu::add_images(&b, &c, true).unwrap(),
            &(&b - &c).unwrap(),
            "sub",
        );
        same(
            &cpu::cat_channels(&b, &a).unwrap(),
            &Tensor::cat(&[&b, &a], 1).unwrap(),
            "cat",
        );
        for sub in [false, true] {
            let bc = if sub {
                (&b - &c).unwrap()
            } else {
                (&b + &c).unwrap()
            };
            same(
                &cpu::cat_add_channels(&a, &b, &c, sub).unwrap(),
                &Tensor::cat(&[&a, &bc], 1).unwrap(),
                "cat add",
            );
        }
        let odd = rand(16, &[3, 2, 9, 10], dtype);
        same(
            &cpu::cat_channels(&a, &odd).unwrap(),
            &Tensor::cat(&[&a, &odd], 1).unwrap(),
            "cat uneven",
        );
    }
}

/// Shapes of both regimes, odd batches and channel counts: small channels on large images (the
/// direct kernels' regime) and many channels on small images (im2col + GEMM's), including a
/// batch that leaves a ragged last group of images (33 4x4 images: groups of 16, 16, 1) and 1x1
/// and 5x5 kernels.
const REGIMES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (3, 5, 7, 32, 32, 3),
    (5, 9, 3, 17, 17, 3),
    (3, 129, 127, 8, 8, 3),
    (5, 67, 33, 4, 4, 3),
    (33, 41, 23, 4, 4, 3),
    (7, 65, 70, 3, 5, 5),
    (3, 301, 65, 4, 4, 1),
];

/// Every kernel path (direct, im2col + GEMM, and the automatic choice) equals candle's
/// convolution and its autograd gradients in f64 to rounding (1e-12 relative), on shapes from
/// both regimes.
#[test]
fn every_conv_path_matches_candle_in_f64_in_both_regimes() {
    for path in [
        cpu::ConvPath::Direct,
        cpu::ConvPath::Gemm,
        cpu::ConvPath::Auto,
    ] {
        for (s, &(b, ci, co, h, w, k)) in REGIMES.iter().enumerate() {
            let x = Var::from_tensor(&rand(400 + s as u64, &[b, ci, h, w], DType::F64)).unwrap();
            let wt = Var::from_tensor(&rand(500 + s as u64, &[co, ci, k, k], DType::F64)).unwrap();
            let g = rand(600 + s as u64, &[b, co, h, w], DType::F64);
            let y = x
                .as_tensor()
                .conv2d(wt.as_tensor(), k / 2, 1, 1, 1)
                .unwrap();
            let grads = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let out = cpu::conv2d_same_via(x.as_tensor(), wt.as_tensor(), path).unwrap();
            let dx = cpu::conv2d_same_input_grad_via(&g, wt.as_tensor(), path).unwrap();
            let dw = cpu::conv2d_same_weight_grad_via(x.as_tensor(), &g, k, path).unwrap();
            let tol = Tolerance::rel(1e-12);
            let what = format!("{path:?} shape {:?}", REGIMES[s]);
            tol.assert_rel_l2(&out, &y, &format!("{what}: y"));
            tol.assert_rel_l2(
                &dx,
                grads.get(x.as_tensor()).unwrap(),
                &format!("{what}: dx"),
            );
            tol.assert_rel_l2(
                &dw,
                grads.get(wt.as_tensor()).unwrap(),
                &format!("{what}: dw"),
            );
        }
    }
}

/// The im2col + GEMM path gives the same bits whatever the thread count (its image groups and
/// the order of the weight-gradient partial sums depend on the shape alone), in f32 and f64.
#[test]
fn gemm_conv_path_is_independent_of_the_thread_count() {
    let path = cpu::ConvPath::Gemm;
    for dtype in [DType::F32, DType::F64] {
        let (b, ci, co, h, w, k) = (33, 41, 23, 4, 4, 3);
        let x = rand(700, &[b, ci, h, w], dtype);
        let wt = rand(701, &[co, ci, k, k], dtype);
        let g = rand(702, &[b, co, h, w], dtype);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                [
                    cpu::conv2d_same_via(&x, &wt, path).unwrap(),
                    cpu::conv2d_same_input_grad_via(&g, &wt, path).unwrap(),
                    cpu::conv2d_same_weight_grad_via(&x, &g, k, path).unwrap(),
                ]
                .map(|t| revstab::util::to_f64_vec(&t).unwrap())
            })
        };
        let one = run(1);
        for threads in [2, 3] {
            assert_eq!(run(threads), one, "{dtype:?}: {threads} threads");
        }
    }
}
