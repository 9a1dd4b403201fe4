//! Memory experiment (paper Table 1, DESIGN.md 4): the measured peak heap bytes of one training
//! step beside the analytic model of [`crate::measure::memory`], and how the peak scales with
//! depth, batch and resolution in stored and reconstructed mode.
//!
//! What is measured: [`Network::step`] with gradients on a fixed batch, inside
//! [`alloc::measure_peak`]. The number is the highest live heap bytes reached during the step
//! *above* the live bytes before it: the weights, the input batch and the labels are already
//! allocated and do not count; everything the step allocates does, including what it still
//! holds when it returns (the parameter gradients, the logits). Before the first point in a
//! dtype every architecture runs one small step (what candle allocates once and keeps, such as
//! worker threads and per-thread workspaces, is not charged to a point), and each network runs
//! one training forward before its measured step (its batch-norm statistics exist already).
//! The counter is process-wide, so allocations of candle's worker threads count too (they are
//! part of the step) and nothing else may allocate at the same time: measure one thing at a
//! time. It needs the [`alloc::CountingAlloc`] global allocator installed in the binary and sees
//! CPU memory only, so the device must be the CPU.
//!
//! Besides the total peak every point records the bytes of the parameter gradients the step
//! returns (`grad_bytes`) and `act_peak_bytes = peak_bytes - grad_bytes`, the peak without
//! them. The gradients grow with depth like the weights do (they belong with `M_theta` in
//! `M = M_theta + (M'_z + M'_g) h w bs`, not with the per-pixel figure), and the backward
//! computes them top down, so nearly all of them are live when the backward reaches the bottom,
//! where the activation working set peaks: `act_peak_bytes` is then a close lower bound of the
//! activation memory at the peak.
//!
//! Networks have one stage by default (`stages = 1`, no pooling): every layer has `width`
//! channels at the input resolution, the analytic model's stage-uniform layout with one stage,
//! so the model's `M'_z + M'_g` applies directly (and with `width = 32` the model's figures are
//! the paper's for the layer-wise, hybrid and i-RevNet networks). With the default poolings the
//! upper stages have 4-64x the channels, and at sizes that fit a small CPU their parameter
//! gradients, not the activations, dominate the peak; `stages = 2..4` measures them anyway.
//!
//! Entry point: [`MemoryConfig`] -> [`run`] -> [`MemoryResults`] (CSV, Markdown and JSON
//! writers; [`MemoryResults::write_all`] writes every file atomically).

use crate::device::{device_name, dtype_name, parse_device, parse_dtype};
use crate::error::{Error, Result};
use crate::layers::{Layer, Tape};
use crate::measure::alloc;
use crate::measure::memory::{analytic, table1, MemArch, MemConfig, Pool, Table1Row};
use crate::nets::{Arch, NetConfig, Network, PoolKind, Source, StepOptions};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// Configuration of the memory experiment. Every field has a default ([`MemoryConfig::default`];
/// [`MemoryConfig::quick`] is the smaller grid), so a config file may give only some of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Architectures measured.
    pub archs: Vec<Arch>,
    /// Sources of the activations in the backward (stored, reconstructed).
    pub modes: Vec<Source>,
    /// Seed of the weights and of the input batch.
    pub seed: u64,
    /// Storage dtype (`f16`, `bf16`, `f32`, `f64`).
    pub dtype: String,
    /// Device; only `cpu` can be measured (the counting allocator sees host memory only).
    pub device: String,
    /// Threads of candle's CPU kernels (sets `RAYON_NUM_THREADS`); `None` keeps the default.
    pub threads: Option<usize>,
    /// Whether this is the quick grid (recorded in `run.json`).
    pub quick: bool,
    /// Channels after the stem.
    pub width: usize,
    /// Depth of the per-architecture comparison (blocks, units for layer-wise); the batch and
    /// resolution sweeps use it too.
    pub depth: usize,
    /// Batch of the per-architecture comparison and of the depth and resolution sweeps.
    pub batch: usize,
    /// Input height = width of the comparison and of the depth and batch sweeps.
    pub input_size: usize,
    /// Stages of the networks (1 to 4): the first `stages - 1` of each architecture's default
    /// poolings ([`Arch::default_pools`]). Default 1: no pooling, every layer at the input
    /// resolution with `width` channels.
    pub stages: usize,
    /// Depths of the depth sweep.
    pub depths: Vec<usize>,
    /// Batches of the batch sweep.
    pub batches: Vec<usize>,
    /// Input sizes of the resolution sweep.
    pub sizes: Vec<usize>,
    /// Measured steps per point (after one warm-up step); the largest peak is kept.
    pub repeats: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            archs: Arch::ALL.to_vec(),
            modes: vec![Source::Stored, Source::Reconstructed],
            seed: 0,
            dtype: "f32".into(),
            device: "cpu".into(),
            threads: None,
            quick: false,
            width: 32,
            depth: 8,
            batch: 8,
            input_size: 16,
            stages: 1,
            depths: vec![2, 4, 8, 16, 32],
            batches: vec![4, 8, 16],
            sizes: vec![8, 16, 32],
            repeats: 1,
        }
    }
}

impl MemoryConfig {
    /// The quick grid (a smoke test, seconds): batch 2 of 8x8 images, depths up to 8, two points
    /// per batch/size sweep.
    pub fn quick() -> Self {
        MemoryConfig {
            quick: true,
            width: 16,
            depth: 4,
            batch: 2,
            input_size: 8,
            depths: vec![2, 4, 8],
            batches: vec![2, 4],
            sizes: vec![8, 16],
            ..Self::default()
        }
    }

    /// Check the configuration; every problem is an [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("memory experiment: {m}")));
        if self.archs.is_empty() || self.modes.is_empty() {
            return bad("archs and modes must not be empty".into());
        }
        if self.repeats == 0 {
            return bad("repeats must be >= 1".into());
        }
        if self.batch == 0 || self.batches.contains(&0) {
            return bad("batches must be >= 1".into());
        }
        if self.depth == 0 || self.depths.contains(&0) {
            return bad("depths must be >= 1".into());
        }
        if self.input_size == 0 || self.sizes.contains(&0) {
            return bad("input sizes must be >= 1".into());
        }
        if !(1..=4).contains(&self.stages) {
            return bad(format!("stages must be 1 to 4 (got {})", self.stages));
        }
        if self.threads == Some(0) {
            return bad("threads must be >= 1".into());
        }
        parse_dtype(&self.dtype)?;
        let device = parse_device(&self.device)?;
        if !device.is_cpu() {
            return bad(format!(
                "device `{}`: the counting allocator measures host memory only; use --device cpu",
                self.device
            ));
        }
        for &arch in &self.archs {
            for &depth in self.depths.iter().chain([&self.depth]) {
                for &size in self.sizes.iter().chain([&self.input_size]) {
                    self.net_config(arch, depth, size).validate()?;
                }
            }
        }
        Ok(())
    }

    /// The network measured for `arch` at `depth` and `size`.
    pub fn net_config(&self, arch: Arch, depth: usize, size: usize) -> NetConfig {
        let mut c = NetConfig::new(arch);
        c.depth = depth;
        c.width = self.width;
        c.input_size = size;
        c.seed = self.seed;
        c.pools.truncate(self.stages - 1);
        c
    }
}

/// The analytic model's description of a network ([`crate::measure::memory::MemConfig`]),
/// `None` when a stage has no block (the model needs at least one per stage).
pub fn mem_config(cfg: &NetConfig, bpe: usize) -> Option<MemConfig> {
    let arch = match cfg.arch {
        Arch::Layerwise => MemArch::LayerWise,
        Arch::Hybrid => MemArch::Hybrid,
        Arch::Revnet => MemArch::RevNet,
        Arch::Irevnet => MemArch::IRevNet,
        Arch::Resnet => MemArch::ResNet,
    };
    let mut channels = vec![cfg.width];
    let mut pools = Vec::new();
    for p in &cfg.pools {
        let c = *channels.last().expect("non-empty");
        let (pool, next) = match p {
            PoolKind::Channel => (Pool::Channel, 4 * c),
            PoolKind::Batch => (Pool::Batch, c),
            PoolKind::Max => (Pool::Max, 2 * c),
        };
        pools.push(pool);
        channels.push(next);
    }
    let blocks = cfg.units_per_stage();
    if blocks.contains(&0) {
        return None;
    }
    Some(MemConfig::new(arch, channels, pools, blocks).with_bpe(bpe))
}

/// Analytic `M'_z + M'_g` (bytes per input pixel) of a network, when the model applies.
pub fn analytic_bytes_per_pixel(cfg: &NetConfig, dtype: DType) -> Option<f64> {
    analytic(&mem_config(cfg, dtype.size_in_bytes())?)
        .ok()
        .map(|b| b.per_pixel)
}

/// The paper's printed bytes per pixel for the architecture family (Table 1, eq. 34).
pub fn paper_bytes_per_pixel(arch: Arch, rows: &[Table1Row]) -> Option<f64> {
    let m = mem_config(
        &NetConfig {
            pools: Vec::new(),
            depth: 1,
            ..NetConfig::new(arch)
        },
        4,
    )?
    .arch;
    rows.iter()
        .find(|r| r.arch == m)
        .map(|r| r.paper_bytes_per_pixel)
}

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
    /// `peak_bytes - grad_bytes`: the peak without the parameter gradients.
    pub act_peak_bytes: usize,
    /// `act_peak_bytes / (batch * size^2)`.
    pub act_bytes_per_pixel: f64,
    /// Bytes the step still held when it returned (gradients, logits, the head input).
    pub held_bytes: usize,
    /// Analytic `M'_z + M'_g` of the same network, bytes per pixel (when the model applies).
    pub analytic_bytes_per_pixel: Option<f64>,
    /// Live heap bytes before the step (everything else in the process).
    pub baseline_bytes: usize,
    /// Smallest and largest peak over the repeats (equal for one repeat).
    pub peak_min_bytes: usize,
    /// Wall time of one measured step, seconds.
    pub step_seconds: f64,
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
        &[batch, cfg.in_channels, cfg.input_size, cfg.input_size],
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
    /// The dtypes this thread has warmed up in.
    static WARMED_UP: std::cell::RefCell<Vec<DType>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Before the first measurement in a dtype on this thread, one small training step of every
/// architecture in both modes, so that what candle and its kernels allocate once and keep (worker
/// threads, lazily built tables, and the calling thread's own matmul workspace, which `gemm`
/// keeps per thread) is not charged to the first point measured. Per thread, not per process:
/// a point measured from a new thread (each test runs on its own) would otherwise pay for that
/// thread's workspace (measured: 2.1 MB on the first layer-wise point).
fn warm_up_thread(dtype: DType, device: &Device) -> Result<()> {
    if WARMED_UP.with(|d| d.borrow().contains(&dtype)) {
        return Ok(());
    }
    for arch in Arch::ALL {
        let mut cfg = NetConfig::new(arch);
        cfg.pools.clear();
        cfg.depth = 2;
        cfg.width = 16;
        let net = Network::build(&cfg, dtype, device)?;
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
    WARMED_UP.with(|d| d.borrow_mut().push(dtype));
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
    repeats: usize,
) -> Result<PeakPoint> {
    if !alloc::is_installed() {
        return Err(Error::Config(
            "the counting allocator is not installed: add `#[global_allocator] static ALLOC: revstab::measure::alloc::CountingAlloc = revstab::measure::alloc::CountingAlloc;` to the binary".into(),
        ));
    }
    if !device.is_cpu() {
        return Err(Error::Config(format!(
            "memory is measured on the CPU only (the counting allocator does not see {} memory)",
            device_name(device)
        )));
    }
    warm_up_thread(dtype, device)?;
    let net = Network::build(cfg, dtype, device)?;
    let (x, labels) = batch_for(cfg, batch, dtype, device)?;
    let opts = StepOptions {
        grads: true,
        ..Default::default()
    };
    drop(net.chain.forward_tape(&x, &mut Tape::new(false), true)?);
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
        let (out, peak) = alloc::measure_peak(|| net.step(&x, &labels, mode, opts));
        seconds = seconds.min(t0.elapsed().as_secs_f64());
        let held = alloc::current_bytes().saturating_sub(baseline);
        let out = out?;
        peaks.push(peak);
        last = Some((out, held, baseline));
    }
    let (out, held, baseline) = last.expect("at least one repeat");
    let peak = peaks.iter().copied().max().unwrap_or(0);
    let grad_bytes: usize = out.grads.values().map(bytes_of).sum();
    let pixels = (batch * cfg.input_size * cfg.input_size) as f64;
    let act = peak.saturating_sub(grad_bytes);
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
        analytic_bytes_per_pixel: analytic_bytes_per_pixel(cfg, dtype),
        baseline_bytes: baseline,
        peak_min_bytes: peaks.iter().copied().min().unwrap_or(0),
        step_seconds: seconds,
    })
}

/// Least-squares line `y = slope x + intercept` and its coefficient of determination.
/// `None` for fewer than two distinct x.
pub fn fit_line(xs: &[f64], ys: &[f64]) -> Option<(f64, f64, f64)> {
    let n = xs.len().min(ys.len());
    if n < 2 {
        return None;
    }
    let mx = xs[..n].iter().sum::<f64>() / n as f64;
    let my = ys[..n].iter().sum::<f64>() / n as f64;
    let sxx: f64 = xs[..n].iter().map(|x| (x - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = xs[..n]
        .iter()
        .zip(&ys[..n])
        .map(|(x, y)| (x - mx) * (y - my))
        .sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let syy: f64 = ys[..n].iter().map(|y| (y - my).powi(2)).sum();
    let sse: f64 = xs[..n]
        .iter()
        .zip(&ys[..n])
        .map(|(x, y)| (y - slope * x - intercept).powi(2))
        .sum();
    let r2 = if syy == 0.0 { 1.0 } else { 1.0 - sse / syy };
    Some((slope, intercept, r2))
}

/// Which sweep a scaling fit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    /// Depth (blocks; units for layer-wise): slope in bytes per extra block.
    Depth,
    /// Batch: slope in bytes per input pixel (`x = batch * size^2`).
    Batch,
    /// Resolution: slope in bytes per input pixel (`x = batch * size^2`).
    Size,
}

/// A least-squares fit of the peak along one sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingFit {
    /// Architecture.
    pub arch: Arch,
    /// Mode.
    pub mode: Source,
    /// Sweep.
    pub axis: Axis,
    /// Unit of the slopes (`bytes/block`, `bytes/pixel`).
    pub unit: String,
    /// The swept values (depths, batches or sizes), `;`-separated in the CSV.
    pub values: Vec<usize>,
    /// Slope of `peak_bytes`.
    pub slope: f64,
    /// Intercept of `peak_bytes`.
    pub intercept: f64,
    /// R^2 of the `peak_bytes` fit.
    pub r2: f64,
    /// Slope of `act_peak_bytes` (the peak without the parameter gradients).
    pub act_slope: f64,
    /// Peak at the last value over the peak at the first.
    pub ratio_last_first: f64,
}

/// One row of the summary table (one architecture, at the comparison point).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    /// Architecture.
    pub arch: Arch,
    /// Primitive layers at the comparison depth.
    pub layers: usize,
    /// Analytic `M'_z + M'_g` of the measured network, bytes per pixel.
    pub analytic_bytes_per_pixel: Option<f64>,
    /// The paper's printed bytes per pixel for its configuration of this family.
    pub paper_bytes_per_pixel: Option<f64>,
    /// Measured peak per pixel, stored mode.
    pub stored_bytes_per_pixel: Option<f64>,
    /// Measured peak per pixel, reconstructed mode.
    pub reconstructed_bytes_per_pixel: Option<f64>,
    /// Measured over analytic, in the mode the model describes (stored for ResNet,
    /// reconstructed otherwise).
    pub measured_over_analytic: Option<f64>,
    /// Marginal bytes per pixel (slope of the batch sweep) in that mode.
    pub marginal_bytes_per_pixel: Option<f64>,
    /// Depth-scaling slope, stored mode, bytes per block.
    pub depth_slope_stored: Option<f64>,
    /// Depth-scaling slope, reconstructed mode, bytes per block.
    pub depth_slope_reconstructed: Option<f64>,
    /// Bytes of parameter gradients per block (from the depth sweep): the part of the
    /// reconstructed slope that is the `M_theta`-like gradient memory, not activations.
    pub grad_bytes_per_block: Option<f64>,
}

/// Wall-clock timings of a run, seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// The whole run.
    pub total_s: f64,
    /// Building networks and measuring every point.
    pub measure_s: f64,
    /// Number of distinct points measured.
    pub points: usize,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryResults {
    /// The configuration.
    pub config: MemoryConfig,
    /// Crate version.
    pub crate_version: String,
    /// Git revision of the working tree, when known.
    pub git_revision: Option<String>,
    /// Device name.
    pub device: String,
    /// Storage dtype.
    pub dtype: String,
    /// Threads candle's CPU kernels used.
    pub threads: usize,
    /// The analytic Table 1 (paper configurations).
    pub table1: Vec<Table1Row>,
    /// Every measured point (each distinct configuration once).
    pub points: Vec<PeakPoint>,
    /// Fits along the sweeps.
    pub scaling: Vec<ScalingFit>,
    /// One row per architecture.
    pub summary: Vec<SummaryRow>,
    /// Timings.
    pub timings: Timings,
}

type Key = (Arch, Source, usize, usize, usize);

/// Run the experiment: every architecture and mode at the comparison point and along the depth,
/// batch and resolution sweeps. Points run one after the other; nothing else in the process
/// may allocate meanwhile (the counter is process-wide). `progress` is called after each point.
pub fn run_with(cfg: &MemoryConfig, mut progress: impl FnMut(&PeakPoint)) -> Result<MemoryResults> {
    let t0 = Instant::now();
    cfg.validate()?;
    if let Some(n) = cfg.threads {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        // Fails harmlessly when rayon's global pool already exists.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    let dtype = parse_dtype(&cfg.dtype)?;
    let device = parse_device(&cfg.device)?;
    let mut done: HashMap<Key, PeakPoint> = HashMap::new();
    let mut order: Vec<Key> = Vec::new();
    let mut measure =
        |arch: Arch, mode: Source, depth: usize, batch: usize, size: usize| -> Result<PeakPoint> {
            let key = (arch, mode, depth, batch, size);
            if let Some(p) = done.get(&key) {
                return Ok(p.clone());
            }
            // ResNet has no inverse: its reconstructed step is its stored step (Network::step).
            if !arch.reconstructable() && mode == Source::Reconstructed {
                if let Some(p) = done.get(&(arch, Source::Stored, depth, batch, size)) {
                    let p = PeakPoint { mode, ..p.clone() };
                    done.insert(key, p.clone());
                    order.push(key);
                    return Ok(p);
                }
            }
            let p = measure_point(
                &cfg.net_config(arch, depth, size),
                batch,
                mode,
                dtype,
                &device,
                cfg.repeats,
            )?;
            progress(&p);
            done.insert(key, p.clone());
            order.push(key);
            Ok(p)
        };
    let tm = Instant::now();
    let mut scaling = Vec::new();
    for &arch in &cfg.archs {
        for &mode in &cfg.modes {
            measure(arch, mode, cfg.depth, cfg.batch, cfg.input_size)?;
            let sweeps: [(Axis, &[usize]); 3] = [
                (Axis::Depth, &cfg.depths),
                (Axis::Batch, &cfg.batches),
                (Axis::Size, &cfg.sizes),
            ];
            for (axis, values) in sweeps {
                let mut pts = Vec::new();
                for &v in values {
                    let p = match axis {
                        Axis::Depth => measure(arch, mode, v, cfg.batch, cfg.input_size)?,
                        Axis::Batch => measure(arch, mode, cfg.depth, v, cfg.input_size)?,
                        Axis::Size => measure(arch, mode, cfg.depth, cfg.batch, v)?,
                    };
                    pts.push(p);
                }
                let x: Vec<f64> = pts
                    .iter()
                    .map(|p| match axis {
                        Axis::Depth => p.depth as f64,
                        _ => (p.batch * p.size * p.size) as f64,
                    })
                    .collect();
                let y: Vec<f64> = pts.iter().map(|p| p.peak_bytes as f64).collect();
                let ya: Vec<f64> = pts.iter().map(|p| p.act_peak_bytes as f64).collect();
                if let (Some((slope, intercept, r2)), Some((act_slope, _, _))) =
                    (fit_line(&x, &y), fit_line(&x, &ya))
                {
                    scaling.push(ScalingFit {
                        arch,
                        mode,
                        axis,
                        unit: if axis == Axis::Depth {
                            "bytes/block".into()
                        } else {
                            "bytes/pixel".into()
                        },
                        values: values.to_vec(),
                        slope,
                        intercept,
                        r2,
                        act_slope,
                        ratio_last_first: y[y.len() - 1] / y[0],
                    });
                }
            }
        }
    }
    let measure_s = tm.elapsed().as_secs_f64();
    let points: Vec<PeakPoint> = order.iter().map(|k| done[k].clone()).collect();
    let t1 = table1();
    let summary = summarize(cfg, &points, &scaling, &t1);
    Ok(MemoryResults {
        config: cfg.clone(),
        crate_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: crate::util::git_revision(),
        device: device_name(&device),
        dtype: dtype_name(dtype).into(),
        threads: candle_core::utils::get_num_threads(),
        table1: t1,
        timings: Timings {
            total_s: t0.elapsed().as_secs_f64(),
            measure_s,
            points: points.len(),
        },
        points,
        scaling,
        summary,
    })
}

/// [`run_with`] without progress reports.
pub fn run(cfg: &MemoryConfig) -> Result<MemoryResults> {
    run_with(cfg, |_| {})
}

fn summarize(
    cfg: &MemoryConfig,
    points: &[PeakPoint],
    scaling: &[ScalingFit],
    t1: &[Table1Row],
) -> Vec<SummaryRow> {
    let at = |arch: Arch, mode: Source| {
        points.iter().find(|p| {
            p.arch == arch
                && p.mode == mode
                && p.depth == cfg.depth
                && p.batch == cfg.batch
                && p.size == cfg.input_size
        })
    };
    let fit = |arch: Arch, mode: Source, axis: Axis| {
        scaling
            .iter()
            .find(|f| f.arch == arch && f.mode == mode && f.axis == axis)
            .map(|f| f.slope)
    };
    let grad_slope = |arch: Arch| {
        let pts: Vec<&PeakPoint> = cfg
            .depths
            .iter()
            .filter_map(|&d| {
                points.iter().find(|p| {
                    p.arch == arch
                        && p.depth == d
                        && p.batch == cfg.batch
                        && p.size == cfg.input_size
                })
            })
            .collect();
        let x: Vec<f64> = pts.iter().map(|p| p.depth as f64).collect();
        let y: Vec<f64> = pts.iter().map(|p| p.grad_bytes as f64).collect();
        fit_line(&x, &y).map(|f| f.0)
    };
    cfg.archs
        .iter()
        .map(|&arch| {
            let model_mode = if arch.reconstructable() {
                Source::Reconstructed
            } else {
                Source::Stored
            };
            let net = cfg.net_config(arch, cfg.depth, cfg.input_size);
            let analytic =
                analytic_bytes_per_pixel(&net, parse_dtype(&cfg.dtype).unwrap_or(DType::F32));
            let stored = at(arch, Source::Stored);
            let recon = at(arch, Source::Reconstructed);
            let model_point = at(arch, model_mode);
            SummaryRow {
                arch,
                layers: stored.or(recon).map(|p| p.layers).unwrap_or(0),
                analytic_bytes_per_pixel: analytic,
                paper_bytes_per_pixel: paper_bytes_per_pixel(arch, t1),
                stored_bytes_per_pixel: stored.map(|p| p.bytes_per_pixel),
                reconstructed_bytes_per_pixel: recon.map(|p| p.bytes_per_pixel),
                measured_over_analytic: match (model_point, analytic) {
                    (Some(p), Some(a)) if a > 0.0 => Some(p.bytes_per_pixel / a),
                    _ => None,
                },
                marginal_bytes_per_pixel: fit(arch, model_mode, Axis::Batch),
                depth_slope_stored: fit(arch, Source::Stored, Axis::Depth),
                depth_slope_reconstructed: fit(arch, Source::Reconstructed, Axis::Depth),
                grad_bytes_per_block: grad_slope(arch),
            }
        })
        .collect()
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

fn csv_string<T: Serialize>(rows: impl IntoIterator<Item = T>) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)
            .map_err(|e| Error::Config(format!("CSV serialisation: {e}")))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Config(format!("CSV serialisation: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Config(format!("CSV serialisation: {e}")))
}

#[derive(Serialize)]
struct MeasuredCsv<'a> {
    arch: &'a str,
    mode: &'a str,
    depth: usize,
    batch: usize,
    size: usize,
    width: usize,
    dtype: &'a str,
    peak_bytes: usize,
    bytes_per_pixel: f64,
    tape_bytes: usize,
    layers: usize,
    weight_bytes: usize,
    grad_bytes: usize,
    act_peak_bytes: usize,
    act_bytes_per_pixel: f64,
    held_bytes: usize,
    analytic_bytes_per_pixel: Option<f64>,
    peak_min_bytes: usize,
    step_seconds: f64,
}

#[derive(Serialize)]
struct ScalingCsv<'a> {
    arch: &'a str,
    mode: &'a str,
    axis: Axis,
    unit: &'a str,
    values: String,
    slope: f64,
    intercept: f64,
    r2: f64,
    act_slope: f64,
    ratio_last_first: f64,
}

impl MemoryResults {
    /// `table1.csv`: the analytic Table 1 rows (paper configurations).
    pub fn table1_csv(&self) -> Result<String> {
        csv_string(&self.table1)
    }

    /// `measured.csv`: one row per measured point.
    pub fn measured_csv(&self) -> Result<String> {
        csv_string(self.points.iter().map(|p| MeasuredCsv {
            arch: p.arch.as_str(),
            mode: p.mode.as_str(),
            depth: p.depth,
            batch: p.batch,
            size: p.size,
            width: p.width,
            dtype: &p.dtype,
            peak_bytes: p.peak_bytes,
            bytes_per_pixel: p.bytes_per_pixel,
            tape_bytes: p.tape_bytes,
            layers: p.layers,
            weight_bytes: p.weight_bytes,
            grad_bytes: p.grad_bytes,
            act_peak_bytes: p.act_peak_bytes,
            act_bytes_per_pixel: p.act_bytes_per_pixel,
            held_bytes: p.held_bytes,
            analytic_bytes_per_pixel: p.analytic_bytes_per_pixel,
            peak_min_bytes: p.peak_min_bytes,
            step_seconds: p.step_seconds,
        }))
    }

    /// `scaling.csv`: one row per (architecture, mode, sweep).
    pub fn scaling_csv(&self) -> Result<String> {
        csv_string(self.scaling.iter().map(|f| {
            ScalingCsv {
                arch: f.arch.as_str(),
                mode: f.mode.as_str(),
                axis: f.axis,
                unit: &f.unit,
                values: f
                    .values
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(";"),
                slope: f.slope,
                intercept: f.intercept,
                r2: f.r2,
                act_slope: f.act_slope,
                ratio_last_first: f.ratio_last_first,
            }
        }))
    }

    /// `run.json`: configuration, provenance, timings, summary and fits.
    pub fn run_json(&self) -> Result<String> {
        let v = serde_json::json!({
            "experiment": "memory",
            "config": self.config,
            "crate_version": self.crate_version,
            "git_revision": self.git_revision,
            "device": self.device,
            "dtype": self.dtype,
            "threads": self.threads,
            "timings": self.timings,
            "summary": self.summary,
            "scaling": self.scaling,
        });
        serde_json::to_string_pretty(&v)
            .map_err(|e| Error::Config(format!("JSON serialisation: {e}")))
    }

    /// The summary as a Markdown table, with a line on the measured point.
    pub fn markdown(&self) -> String {
        let c = &self.config;
        let mut s = format!(
            "Peak heap bytes of one training step above the live bytes before it, per input pixel (batch {} x {}x{}), width {}, depth {}, {}, {}; depth slopes fitted over depths {:?} (batch {}, {}x{}).\n\n",
            c.batch,
            c.input_size,
            c.input_size,
            c.width,
            c.depth,
            self.dtype,
            if c.stages == 1 { "one stage, no pooling".to_string() } else { format!("{} stages (the first {} default poolings)", c.stages, c.stages - 1) },
            c.depths,
            c.batch,
            c.input_size,
            c.input_size
        );
        s.push_str("| architecture | layers | analytic B/px | paper B/px | measured B/px stored | measured B/px reconstructed | measured / analytic | marginal B/px | depth slope stored (B/block) | depth slope reconstructed (B/block) | param grads (B/block) |\n");
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.summary {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.arch,
                r.layers,
                opt(r.analytic_bytes_per_pixel, 0),
                opt(r.paper_bytes_per_pixel, 0),
                opt(r.stored_bytes_per_pixel, 0),
                opt(r.reconstructed_bytes_per_pixel, 0),
                opt(r.measured_over_analytic, 2),
                opt(r.marginal_bytes_per_pixel, 0),
                opt(r.depth_slope_stored, 0),
                opt(r.depth_slope_reconstructed, 0),
                opt(r.grad_bytes_per_block, 0),
            ));
        }
        s.push_str(
            "\nanalytic: M'_z + M'_g of the same network (measure::memory); paper: its printed figure for its own configuration (c = 32 at the first stage; ours scales with the width). measured / analytic: in the mode the model describes (stored for ResNet, reconstructed otherwise). marginal: slope of the peak over the batch sweep (fixed costs removed). Depth slopes are least-squares fits of the peak; the reconstructed one is mostly the parameter gradients (last column), which grow with depth like the weights.\n",
        );
        if c.stages == 1 {
            s.push_str("With one stage (no pooling) an i-RevNet is a RevNet: the two rows measure the same network.\n");
        }
        s
    }

    /// Write `table1.csv`, `measured.csv`, `scaling.csv` and `run.json` into `dir` (created if
    /// needed), each atomically.
    pub fn write_all(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        crate::util::write_atomic(&dir.join("table1.csv"), self.table1_csv()?.as_bytes())?;
        crate::util::write_atomic(&dir.join("measured.csv"), self.measured_csv()?.as_bytes())?;
        crate::util::write_atomic(&dir.join("scaling.csv"), self.scaling_csv()?.as_bytes())?;
        crate::util::write_atomic(&dir.join("run.json"), self.run_json()?.as_bytes())?;
        Ok(())
    }
}

/// Check that `dir` can be created and written to (before a long run): creates it and writes
/// and removes a probe file.
pub fn check_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let probe = dir.join(format!(".write-probe.{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| Error::io(dir, e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
