//! Criterion suite (issue 7): layer kernels against candle's ops, one real training step
//! (`Network::step`, then `Sgd::step`) of the `bench` binary's default network (one-stage RevNet,
//! width 32, batch 32 of 32x32) in the three modes, and one small snr-sweep point. Sample sizes are
//! the minimum (10) with short measurement times so that `cargo bench` takes a few minutes.
//!
//! `cargo bench --bench training` (or `-- layers`, `-- step`, `-- snr_sweep` for one group).

use candle_core::{DType, Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use revstab::backend::{cpu, Backend};
use revstab::experiments::bench::{
    batch_for, set_elementwise_threads, set_threads, BenchConfig, Trainee,
};
use revstab::experiments::snr_sweep::{run_point, Point, SweepConfig};
use revstab::layers::{BatchNormConfig, InvBatchNorm, Layer, ParamStore, Pass};
use revstab::nets::Arch;
use revstab::train::Sgd;
use std::time::Duration;

fn rand(seed: u64, shape: &[usize]) -> Tensor {
    let mut rng = revstab::util::rng_for(seed, "criterion");
    revstab::util::randn(&mut rng, shape, 0.0, 1.0, DType::F32, &Device::Cpu).unwrap()
}

/// One 3x3 convolution and one batch norm of the workload: batch 32, 16 channels, 32x32, f32.
fn layers(c: &mut Criterion) {
    set_elementwise_threads(1);
    set_threads(2);
    let x = rand(1, &[32, 16, 32, 32]);
    let g = rand(2, &[32, 16, 32, 32]);
    let w = rand(3, &[16, 16, 3, 3]);
    let mut group = c.benchmark_group("layers");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("conv3x3_forward/kernel", |b| {
        b.iter(|| cpu::conv2d_same(&x, &w).unwrap())
    });
    group.bench_function("conv3x3_forward/candle", |b| {
        b.iter(|| x.conv2d(&w, 1, 1, 1, 1).unwrap())
    });
    group.bench_function("conv3x3_dx/kernel", |b| {
        b.iter(|| cpu::conv2d_same_input_grad(&g, &w).unwrap())
    });
    group.bench_function("conv3x3_dx/candle_conv_transpose2d", |b| {
        b.iter(|| g.conv_transpose2d(&w, 1, 0, 1, 1).unwrap())
    });
    let wf = w.flip_spatial_transposed();
    group.bench_function("conv3x3_dx/candle_conv2d_flipped", |b| {
        b.iter(|| g.conv2d(&wf, 1, 1, 1, 1).unwrap())
    });
    group.bench_function("conv3x3_dw/kernel", |b| {
        b.iter(|| cpu::conv2d_same_weight_grad(&x, &g, 3).unwrap())
    });
    group.bench_function("conv3x3_dw/candle", |b| {
        b.iter(|| {
            x.transpose(0, 1)
                .unwrap()
                .conv2d(&g.transpose(0, 1).unwrap(), 1, 1, 1, 1)
                .unwrap()
                .transpose(0, 1)
                .unwrap()
        })
    });
    let store = ParamStore::new(0, DType::F32, &Device::Cpu);
    let bn = InvBatchNorm::new(
        &store,
        "bn",
        16,
        BatchNormConfig {
            reparam: false,
            ..Default::default()
        },
    )
    .unwrap();
    let xv = Var::from_tensor(&x).unwrap();
    group.bench_function("batchnorm_forward/kernel", |b| {
        b.iter(|| bn.forward_pass(&x, Pass::Record).unwrap())
    });
    group.bench_function("batchnorm_forward/candle", |b| {
        b.iter(|| bn.forward_pass(&x, Pass::Graph).unwrap())
    });
    // The closed form the batch norm's backward runs (gamma = 1: scale 1), statistics included.
    let ones = vec![1.0; 16];
    group.bench_function("batchnorm_backward/closed_form", |b| {
        b.iter(|| {
            let (mean, var) = cpu::channel_stats(&x).unwrap();
            let s: Vec<f64> = var.iter().map(|v| (v + 1e-5).sqrt()).collect();
            cpu::batch_norm_backward(&x, &g, &mean, &s, &ones).unwrap()
        })
    });
    group.bench_function("batchnorm_backward/candle_autograd", |b| {
        b.iter(|| {
            let y = bn.forward_pass(xv.as_tensor(), Pass::Graph).unwrap();
            (y * &g).unwrap().sum_all().unwrap().backward().unwrap()
        })
    });
    group.bench_function("conv3x3_backward/candle_autograd", |b| {
        b.iter(|| {
            let y = xv.as_tensor().conv2d(&w, 1, 1, 1, 1).unwrap();
            (y * &g).unwrap().sum_all().unwrap().backward().unwrap()
        })
    });
    group.finish();
}

/// A training step (forward, backward, SGD with momentum and weight decay) of the `bench`
/// binary's default network at depth 4 in each mode.
fn step(c: &mut Criterion) {
    set_elementwise_threads(1);
    set_threads(2);
    let cfg = BenchConfig::default();
    let net = cfg.net_config(4);
    let (x, labels) = batch_for(&net, cfg.batch, cfg.seed, DType::F32, &Device::Cpu).unwrap();
    let mut group = c.benchmark_group("step");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for mode in revstab::experiments::bench::DEFAULT_MODES {
        let sgd = Sgd::new(cfg.momentum, cfg.weight_decay);
        let mut trainee = Trainee::build(
            &net,
            mode.clone(),
            sgd,
            DType::F32,
            &Device::Cpu,
            Backend::default(),
        )
        .unwrap();
        group.bench_with_input(BenchmarkId::new("depth4", mode.name()), &mode, |b, _| {
            b.iter(|| trainee.step(&x, &labels, cfg.lr).unwrap())
        });
    }
    group.finish();
}

/// One point of the snr-sweep: layer-wise network, depth 4, slope 0.2, f32, the default batch.
fn snr_sweep(c: &mut Criterion) {
    set_elementwise_threads(1);
    set_threads(2);
    let cfg = SweepConfig::default();
    let point = Point {
        index: 0,
        arch: Arch::Layerwise,
        depth: 4,
        slope: 0.2,
        eps_i: 0.0,
        width: 8,
        dtype: revstab::device::Precision::F32,
        seed: 0,
    };
    let mut group = c.benchmark_group("snr_sweep");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("run_point/layerwise_d4_f32", |b| {
        b.iter(|| run_point(&cfg, &point, &Device::Cpu).unwrap())
    });
    group.finish();
}

/// `w'[i, o, a, b] = w[o, i, k-1-a, k-1-b]`: the weights whose convolution is the input gradient.
trait FlipSpatialTransposed {
    fn flip_spatial_transposed(&self) -> Tensor;
}

impl FlipSpatialTransposed for Tensor {
    fn flip_spatial_transposed(&self) -> Tensor {
        let k = self.dim(2).unwrap();
        let rev = Tensor::new((0..k as u32).rev().collect::<Vec<_>>(), &Device::Cpu).unwrap();
        self.index_select(&rev, 2)
            .unwrap()
            .index_select(&rev, 3)
            .unwrap()
            .transpose(0, 1)
            .unwrap()
            .contiguous()
            .unwrap()
    }
}

// No plots: criterion's plotters backend needs system fonts, which a bare machine lacks.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = layers, step, snr_sweep
}
criterion_main!(benches);
