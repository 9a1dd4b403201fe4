//! Measuring one point: the peak heap bytes of one training step of one network
//! ([`measure_point`], [`measure_point_segment`] -> [`PeakPoint`]), on its input batch
//! ([`batch_for`]), after the per-thread warm-up.

use super::analytic_bytes_per_pixel_in;
use crate::backend::Backend;
use crate::device::{device_name, dtype_name};
use crate::error::{Error, Result};
use crate::experiments::anchored::{plan_for, AnchorRecord};
use crate::layers::{Layer, Tape};
use crate::measure::alloc;
use crate::measure::anchors::Anchoring;
use crate::nets::{Arch, NetConfig, Network, Source, StepOptions};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One measured training step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeakPoint {
    /// Architecture.
    pub arch: Arch,
    /// Source of the activations in the backward.
    pub mode: Source,
    /// Blocks (units for layer-wise).
    pub depth: usize,
    /// Batch.
    pub batch: usize,
    /// Input height = width.
    pub size: usize,
    /// Channels after the stem.
    pub width: usize,
    /// Storage dtype.
    pub dtype: String,
    /// Peak live heap bytes during the step above the live bytes before it.
    pub peak_bytes: usize,
    /// `peak_bytes / (batch * size^2)`.
    pub bytes_per_pixel: f64,
    /// Bytes the forward kept on the tape for the backward.
    pub tape_bytes: usize,
    /// Primitive layers of the network.
    pub layers: usize,
    /// Bytes of the weights (allocated before the step, not in `peak_bytes`).
    pub weight_bytes: usize,
    /// Bytes of the parameter gradients the step returned (included in `peak_bytes`).
    pub grad_bytes: usize,
    /// The peak of the live bytes minus the parameter gradients live at that moment.
    pub act_peak_bytes: usize,
    /// `act_peak_bytes / (batch * size^2)`.
    pub act_bytes_per_pixel: f64,
    /// Bytes the step still held when it returned (gradients, logits, the head input).
    pub held_bytes: usize,
    /// Analytic `M'_z + M'_g` of the same network in this point's mode, bytes per pixel
    /// (when the model applies; [`analytic_bytes_per_pixel_in`]).
    pub analytic_bytes_per_pixel: Option<f64>,
    /// Live heap bytes before the step (everything else in the process).
    pub baseline_bytes: usize,
    /// Smallest and largest peak over the repeats (equal for one repeat).
    pub peak_min_bytes: usize,
    /// Wall time of one measured step, seconds.
    pub step_seconds: f64,
    /// Not measured: the stored step of the same network, copied (an architecture without an
    /// inverse, the ResNet, in reconstructed mode, whose step is its stored step); the CSVs'
    /// `measurement` column ([`measurement_label`](super::measurement_label)).
    #[serde(default)]
    pub copied_from_stored: bool,
    /// Anchored: the anchors the step ran with, planned on this point's batch after the
    /// network's first training forward and before the measured step (`None` otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchors: Option<AnchorRecord>,
}

fn bytes_of(t: &Tensor) -> usize {
    t.elem_count() * t.dtype().size_in_bytes()
}

/// The input batch of a measurement: `N(0, 1)` images from `seed` and labels `i mod classes`.
pub fn batch_for(
    cfg: &NetConfig,
    batch: usize,
    dtype: DType,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let mut rng = crate::util::rng_for(cfg.seed, "memory-input");
    let x = crate::util::randn(
        &mut rng,
        &[batch, cfg.net.in_channels, cfg.input_size, cfg.input_size],
        0.0,
        1.0,
        dtype,
        device,
    )?;
    let labels: Vec<u32> = (0..batch).map(|i| (i % cfg.classes) as u32).collect();
    let labels = Tensor::from_vec(labels, batch, device)?;
    Ok((x, labels))
}

thread_local! {
    /// The dtypes and backends this thread has warmed up in.
    static WARMED_UP: std::cell::RefCell<Vec<(DType, Backend)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Before the first measurement in a dtype and backend on this thread, one small training step of every
/// architecture in both modes, so that what candle and its kernels allocate once and keep (worker
/// threads, lazily built tables, and the calling thread's own matmul workspace, which `gemm`
/// keeps per thread) is not charged to the first point measured. Per thread, not per process:
/// a point measured from a new thread (each test runs on its own) would otherwise pay for that
/// thread's workspace (measured: 2.1 MB on the first layer-wise point).
fn warm_up_thread(dtype: DType, device: &Device, backend: Backend) -> Result<()> {
    if WARMED_UP.with(|d| d.borrow().contains(&(dtype, backend))) {
        return Ok(());
    }
    for arch in Arch::ALL {
        let mut cfg = NetConfig::new(arch);
        cfg.net.pools = Some(Vec::new());
        cfg.depth = 2;
        cfg.width = 16;
        let net = Network::build_with(&cfg, dtype, device, backend)?;
        let (x, labels) = batch_for(&cfg, 4, dtype, device)?;
        for mode in [Source::Stored, Source::Reconstructed] {
            drop(net.step(
                &x,
                &labels,
                mode,
                StepOptions {
                    grads: true,
                    ..Default::default()
                },
            )?);
        }
    }
    WARMED_UP.with(|d| d.borrow_mut().push((dtype, backend)));
    Ok(())
}

/// Build `cfg` and measure the peak of one training step with gradients in `mode`, `repeats`
/// times (the largest peak is kept). Before the first repeat the network runs one training
/// forward, so that its recorded and running batch-norm statistics (kept between steps) exist
/// already. Needs the counting allocator ([`alloc::is_installed`]) and nothing else allocating
/// meanwhile.
pub fn measure_point(
    cfg: &NetConfig,
    batch: usize,
    mode: Source,
    dtype: DType,
    device: &Device,
    backend: Backend,
    repeats: usize,
) -> Result<PeakPoint> {
    measure_point_segment(cfg, batch, mode, None, dtype, device, backend, repeats)
}

/// [`measure_point`] with the checkpointed source's segment length (`None`: the default
/// `ceil(sqrt(depth))`; read only in [`Source::Checkpointed`]).
pub fn measure_point_segment(
    cfg: &NetConfig,
    batch: usize,
    mode: Source,
    segment: Option<usize>,
    dtype: DType,
    device: &Device,
    backend: Backend,
    repeats: usize,
) -> Result<PeakPoint> {
    let anchoring = Anchoring::default();
    measure_point_with(
        cfg, batch, mode, segment, &anchoring, dtype, device, backend, repeats,
    )
}

/// [`measure_point_segment`] with the anchored source's anchoring (read only in
/// [`Source::Anchored`]): the anchors are planned once on the point's batch, after the
/// network's first training forward, with the batch-norm running statistics restored
/// ([`plan_for`]), and the measured step is the anchored step of that plan. The planner's own
/// steps run before the baseline is read: they are not part of the peak.
pub fn measure_point_with(
    cfg: &NetConfig,
    batch: usize,
    mode: Source,
    segment: Option<usize>,
    anchoring: &Anchoring,
    dtype: DType,
    device: &Device,
    backend: Backend,
    repeats: usize,
) -> Result<PeakPoint> {
    if !alloc::is_installed() {
        return Err(Error::config(
            "the counting allocator",
            "installed: add `#[global_allocator] static ALLOC: revstab::measure::alloc::CountingAlloc = revstab::measure::alloc::CountingAlloc;` to the binary",
            "a binary without it",
        ));
    }
    if !device.is_cpu() {
        let got = format!(
            "{} (the counting allocator does not see its memory)",
            device_name(device)
        );
        return Err(Error::config("memory measurement device", "the CPU", got));
    }
    warm_up_thread(dtype, device, backend)?;
    let net = Network::build_with(cfg, dtype, device, backend)?;
    let (x, labels) = batch_for(cfg, batch, dtype, device)?;
    let opts = StepOptions {
        grads: true,
        ..Default::default()
    };
    drop(net.chain.forward_tape(&x, &mut Tape::new(false), true)?);
    let anchors = match mode {
        Source::Anchored => Some(plan_for(&net, anchoring, &x, &labels)?),
        _ => None,
    };
    let plan = match &anchors {
        Some(a) => a.backward(),
        None => crate::nets::BackwardPlan::from(mode).with_default_segment(segment),
    };
    let weight_bytes: usize = net
        .named_params()
        .iter()
        .map(|(_, v)| bytes_of(v.as_tensor()))
        .sum();
    let mut peaks = Vec::with_capacity(repeats.max(1));
    let mut last = None;
    let mut seconds = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        drop(last.take());
        let baseline = alloc::current_bytes();
        let t0 = Instant::now();
        let (out, peak, act) = alloc::measure_peaks(|| net.step(&x, &labels, &plan, opts));
        seconds = seconds.min(t0.elapsed().as_secs_f64());
        let held = alloc::current_bytes().saturating_sub(baseline);
        let out = out?;
        peaks.push((peak, act));
        last = Some((out, held, baseline));
    }
    let (out, held, baseline) = last.expect("at least one repeat");
    let peak = peaks.iter().map(|p| p.0).max().unwrap_or(0);
    let act = peaks.iter().map(|p| p.1).max().unwrap_or(0);
    let grad_bytes: usize = out.grads.values().map(bytes_of).sum();
    let pixels = (batch * cfg.input_size * cfg.input_size) as f64;
    Ok(PeakPoint {
        arch: cfg.arch,
        mode,
        depth: cfg.depth,
        batch,
        size: cfg.input_size,
        width: cfg.width,
        dtype: dtype_name(dtype).into(),
        peak_bytes: peak,
        bytes_per_pixel: peak as f64 / pixels,
        tape_bytes: out.tape_bytes,
        layers: net.num_layers,
        weight_bytes,
        grad_bytes,
        act_peak_bytes: act,
        act_bytes_per_pixel: act as f64 / pixels,
        held_bytes: held,
        analytic_bytes_per_pixel: analytic_bytes_per_pixel_in(cfg, mode, dtype),
        baseline_bytes: baseline,
        peak_min_bytes: peaks.iter().map(|p| p.0).min().unwrap_or(0),
        step_seconds: seconds,
        copied_from_stored: false,
        anchors,
    })
}
