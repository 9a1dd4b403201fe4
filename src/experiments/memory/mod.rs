//! Memory experiment (paper Table 1, docs/design.md section 5): the measured peak heap bytes of one training
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
//! returns (`grad_bytes`) and `act_peak_bytes`, the peak of the live bytes *minus the parameter
//! gradients live at that moment*: the backward declares every gradient it keeps to the
//! counting allocator ([`crate::backprop::Grads`], [`alloc::measure_peaks`]). The gradients grow
//! with depth like the weights do (they belong with `M_theta` in
//! `M = M_theta + (M'_z + M'_g) h w bs`, not with the per-pixel figure); subtracting all of
//! them from the whole peak would undercount when the peak comes early in the backward (wide
//! top stages), which is why they are tracked as they appear. The scratch buffers that
//! compute a weight gradient (a few weight-sized partial sums, whatever the batch) are counted
//! with the activations: they are fixed costs, which the marginal figure removes. Every per-pixel figure of the summary ([`SummaryRow`],
//! `summary.csv`) is made of `act_peak_bytes`: activations and activation gradients only,
//! weights and parameter gradients excluded (those are in `measured.csv`, `weight_bytes` and
//! `grad_bytes`).
//!
//! Networks have one stage by default (`stages = 1`, no pooling): every layer has `width`
//! channels at the input resolution, the analytic model's stage-uniform layout with one stage,
//! so the model's `M'_z + M'_g` applies directly (and with `width = 32` the model's figures are
//! the paper's for the layer-wise, hybrid and i-RevNet networks). The paper preset
//! ([`MemoryConfig::paper`], `memory --preset paper`, `experiments/memory-paper.toml`) measures
//! the paper's own configurations instead: width 32, 32x32 inputs, all three poolings of each
//! architecture (`stages = 4`: 32-128-512-512 channels for layer-wise and hybrid, 32-128-512-2048
//! for the i-RevNet, 32-64-128-256 for RevNet and ResNet) and the paper's blocks per stage
//! where the even spread of [`NetConfig::units_per_stage`] can give them ([`ArchDepth`]).
//!
//! Entry point: [`MemoryConfig`] -> [`run`] -> [`MemoryResults`] (CSV, Markdown and JSON
//! writers; [`MemoryResults::write_all`] writes every file atomically: `summary.csv`,
//! `measured.csv`, `scaling.csv`, `table1.csv`, `run.json`; [`MemorySummary`] reads the printed
//! table back from `run.json`, for `report`).

use crate::backend::Backend;
use crate::device::{device_name, dtype_name, DeviceSpec, Precision};
use crate::error::{Error, Result};
use crate::layers::{Layer, Tape};
use crate::measure::alloc;
use crate::measure::memory::{analytic, table1, MemConfig, Table1Row};
use crate::nets::{
    Accounting, Arch, BackwardPlan, NetConfig, NetOptions, Network, PoolKind, Source, Stem,
    StepOptions,
};
use crate::results::fit::{fit_xy, LineFit};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;

mod output;
pub use output::*;

/// Configuration of the memory experiment. Every field has a default ([`MemoryConfig::default`];
/// [`MemoryConfig::quick`] is the smaller grid), so a config file may give only some of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Architectures measured.
    pub archs: Vec<Arch>,
    /// Sources of the activations in the backward (stored, reconstructed, checkpointed).
    pub modes: Vec<Source>,
    /// Checkpointed mode: units or blocks per segment at every depth measured (`None`: each
    /// depth's `ceil(sqrt(depth))`); left out of the serialised config when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<usize>,
    /// Seed of the weights and of the input batch.
    pub seed: u64,
    /// Storage dtype (`f16`, `bf16`, `f32`, `f64`).
    pub dtype: Precision,
    /// Device; only `cpu` can be measured (the counting allocator sees host memory only).
    pub device: DeviceSpec,
    /// Threads of candle's CPU kernels (sets `RAYON_NUM_THREADS`); `None` keeps the default.
    pub threads: Option<usize>,
    /// Whether this is the quick grid (recorded in `run.json`).
    pub quick: bool,
    /// Channels after the stem.
    pub width: usize,
    /// Depth of the per-architecture comparison (blocks, units for layer-wise); the batch and
    /// resolution sweeps use it too. [`MemoryConfig::arch_depths`] overrides it per
    /// architecture.
    pub depth: usize,
    /// Per-architecture depths of the comparison and of the batch and resolution sweeps,
    /// overriding `depth` for the architectures listed (at most once each); the depth sweep
    /// uses `depths` for every architecture. Empty by default.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arch_depths: Vec<ArchDepth>,
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
    /// Backend computing the layers (`kernels`, the default, or `candle`); left out of the
    /// serialised config when default.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
    /// The network options (the `[net]` table; `pools` unset: the architecture's cut to
    /// `stages`). The analytic model covers the convolutional stem and the default F/G chains
    /// only: others leave its columns empty; the init changes no byte. With `nested`, every
    /// network of an architecture is a prefix of its deepest one (depth sweep and comparison).
    pub net: NetOptions,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            archs: Arch::ALL.to_vec(),
            modes: vec![Source::Stored, Source::Reconstructed],
            segment: None,
            seed: 0,
            dtype: Precision::F32,
            device: DeviceSpec::Cpu,
            threads: None,
            quick: false,
            width: 32,
            depth: 8,
            arch_depths: Vec::new(),
            batch: 8,
            input_size: 16,
            stages: 1,
            depths: vec![2, 4, 8, 16, 32],
            batches: vec![4, 8, 16],
            sizes: vec![8, 16, 32],
            repeats: 1,
            backend: Backend::default(),
            net: NetOptions::default(),
        }
    }
}

/// The depth of one architecture in a [`MemoryConfig`] ([`MemoryConfig::arch_depths`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchDepth {
    /// Architecture.
    pub arch: Arch,
    /// Blocks (units for layer-wise).
    pub depth: usize,
}

/// Named configurations of the memory experiment ([`MemoryConfig::preset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// `MemoryConfig::default()`: one stage, width 32, 16x16, depths 2-32 (seconds).
    Default,
    /// `MemoryConfig::quick()`: the smoke-test grid (under a second in release).
    Quick,
    /// `MemoryConfig::paper()`: the paper's configurations (Table 1) at 32x32 (under a minute
    /// on 2 cores).
    Paper,
}

impl MemoryConfig {
    /// The configuration of a [`Preset`].
    pub fn preset(p: Preset) -> Self {
        match p {
            Preset::Default => Self::default(),
            Preset::Quick => Self::quick(),
            Preset::Paper => Self::paper(),
        }
    }

    /// The paper's configurations (Hascoet et al. Table 1 and eq. 34), measured: width 32,
    /// batch 8 of 32x32 images, f32, every architecture with all three of its default
    /// poolings (`stages = 4`; layer-wise and hybrid `[P_c, P_c, P_b]`: 32-128-512-512
    /// channels; i-RevNet `[P_c, P_c, P_c]`: 32-128-512-2048; RevNet and ResNet max pooling,
    /// which doubles the channels: 32-64-128-256, the paper's ResNet; its RevNet has
    /// 40-80-256-320, which one width cannot give). Blocks per stage: 2-2-2-2 for ResNet and
    /// RevNet (depth 8), 2-2-2-1 for i-RevNet and hybrid (depth 7), as the paper; layer-wise
    /// 14 units, spread 4-4-3-3 (the paper's fit is 4-4-4-2; the model's per-pixel figure does
    /// not depend on it). The marginal bytes per pixel come from the batch sweep 2, 4, 8; there
    /// is no depth or resolution sweep. About 45 s in release on 2 cores (the i-RevNet's top
    /// stage alone has 37.7M weights).
    pub fn paper() -> Self {
        MemoryConfig {
            width: 32,
            depth: 8,
            arch_depths: vec![
                ArchDepth {
                    arch: Arch::Layerwise,
                    depth: 14,
                },
                ArchDepth {
                    arch: Arch::Hybrid,
                    depth: 7,
                },
                ArchDepth {
                    arch: Arch::Irevnet,
                    depth: 7,
                },
            ],
            batch: 8,
            input_size: 32,
            stages: 4,
            depths: Vec::new(),
            batches: vec![2, 4, 8],
            sizes: Vec::new(),
            ..Self::default()
        }
    }

    /// Depth of `arch` at the comparison point and in the batch and resolution sweeps:
    /// its entry of [`MemoryConfig::arch_depths`], else `depth`.
    pub fn depth_for(&self, arch: Arch) -> usize {
        self.arch_depths
            .iter()
            .find(|a| a.arch == arch)
            .map_or(self.depth, |a| a.depth)
    }

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

    /// Check the configuration; every problem is an [`Error::Config`] naming the field (or the
    /// error of a value's parser).
    pub fn validate(&self) -> Result<()> {
        self.net.check_fg_for(&self.archs)?;
        let bad = |c: &str, e: &str, g: String| {
            Err(Error::config(format!("memory experiment: {c}"), e, g))
        };
        if self.archs.is_empty() || self.modes.is_empty() {
            let got = format!("{} archs and {} modes", self.archs.len(), self.modes.len());
            return bad("archs and modes", "at least one value each", got);
        }
        if self.repeats == 0 {
            return bad("repeats", ">= 1", "0".into());
        }
        if self.batch == 0 || self.batches.contains(&0) {
            let got = format!("batch {}, batches {:?}", self.batch, self.batches);
            return bad("batch and batches", "values >= 1", got);
        }
        if self.depth == 0
            || self.depths.contains(&0)
            || self.arch_depths.iter().any(|a| a.depth == 0)
        {
            return bad("depths", "values >= 1", "a depth of 0".into());
        }
        for (i, a) in self.arch_depths.iter().enumerate() {
            if self.arch_depths[..i].iter().any(|b| b.arch == a.arch) {
                let got = format!("{} listed twice", a.arch);
                return bad("arch_depths", "one entry per architecture", got);
            }
        }
        if self.input_size == 0 || self.sizes.contains(&0) {
            let got = format!("input_size {}, sizes {:?}", self.input_size, self.sizes);
            return bad("input sizes", "values >= 1", got);
        }
        if !(1..=4).contains(&self.stages) {
            return bad("stages", "1 to 4", self.stages.to_string());
        }
        if self.threads == Some(0) {
            return bad("threads", ">= 1", "0".into());
        }
        if let Some(t) = self.threads {
            crate::limits::check_threads(t)?;
        }
        use crate::limits::check_distinct;
        check_distinct("archs", &self.archs)?;
        check_distinct("modes", &self.modes)?;
        check_distinct("depths", &self.depths)?;
        check_distinct("batches", &self.batches)?;
        check_distinct("sizes", &self.sizes)?;
        // Memory up front, as every tool: the largest network measured.
        let most = |v: &[usize], one: usize| v.iter().copied().chain([one]).max().unwrap_or(one);
        let deepest = self
            .archs
            .iter()
            .map(|&a| most(&self.depths, self.depth_for(a)))
            .max()
            .unwrap_or(self.depth);
        crate::limits::check_memory(
            "memory experiment: its largest network",
            crate::limits::network_bytes_estimate(
                deepest,
                self.width,
                most(&self.batches, self.batch),
                most(&self.sizes, self.input_size),
                self.dtype.dtype().size_in_bytes(),
            ),
        )?;
        let device = self.device.open()?;
        if !device.is_cpu() {
            let e = "cpu (the counting allocator measures host memory only; use --device cpu)";
            return bad("device", e, format!("`{}`", self.device));
        }
        for &arch in &self.archs {
            for &depth in self.depths.iter().chain([&self.depth_for(arch)]) {
                for &size in self.sizes.iter().chain([&self.input_size]) {
                    self.net_config(arch, depth, size).validate()?;
                }
                if self.modes.contains(&Source::Checkpointed) {
                    crate::backprop::segment_length(self.segment, depth)?;
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
        let mut net = self.net.clone();
        if net.pools.is_none() {
            let mut pools = arch.default_pools();
            pools.truncate(self.stages - 1);
            net.pools = Some(pools);
        }
        let deepest = self
            .depths
            .iter()
            .copied()
            .chain([self.depth_for(arch), depth])
            .max();
        c.with_net(&net, deepest.unwrap_or(depth))
    }
}

/// The analytic model's description of a network ([`crate::measure::memory::MemConfig`]),
/// `None` when a stage has no block (the model needs at least one per stage).
pub fn mem_config(cfg: &NetConfig, bpe: usize) -> Option<MemConfig> {
    let channels = stage_channels(cfg);
    let blocks = cfg.units_per_stage();
    // The model knows the convolutional stem and the default F/G chains only.
    let default_fg = cfg
        .net
        .fg
        .as_ref()
        .is_none_or(|f| *f == cfg.arch.default_fg());
    if blocks.contains(&0) || cfg.net.stem != Stem::Conv || !default_fg {
        return None;
    }
    Some(MemConfig::new(cfg.arch, channels, cfg.pools(), blocks).with_bpe(bpe))
}

/// Channels of each stage of a network: `width`, then x4 after `P_c`, x1 after `P_b`, x2 after
/// max pooling (its 1x1 projection doubles them).
pub fn stage_channels(cfg: &NetConfig) -> Vec<usize> {
    let mut channels = vec![cfg.width];
    for p in &cfg.pools() {
        let c = *channels.last().expect("non-empty");
        channels.push(match p {
            PoolKind::Channel => 4 * c,
            PoolKind::Batch => c,
            PoolKind::Max => 2 * c,
        });
    }
    channels
}

/// The poolings of a network as the paper writes them (`P_c-P_c-P_b`, `Max-Max-Max`; `none`
/// for one stage).
pub fn pools_label(cfg: &NetConfig) -> String {
    let pools = cfg.pools();
    if pools.is_empty() {
        return "none".into();
    }
    pools
        .iter()
        .map(|&p| p.symbol())
        .collect::<Vec<_>>()
        .join("-")
}

fn dash_joined(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("-")
}

/// Analytic `M'_z + M'_g` (bytes per input pixel) of a network, when the model applies, in the
/// mode the model describes: reconstructed for the reversible architectures, stored for the
/// ResNet (which has no other).
pub fn analytic_bytes_per_pixel(cfg: &NetConfig, dtype: DType) -> Option<f64> {
    analytic(&mem_config(cfg, dtype.size_in_bytes())?)
        .ok()
        .map(|b| b.per_pixel)
}

/// The analytic model of a reversible network trained in *stored* mode: the paper's ResNet
/// accounting (eq. 7-10: every convolution and batch norm stores its input, activation
/// functions and poolings store nothing, live at the peak = every stored input + one gradient
/// buffer) applied to the same stages, channels, poolings and blocks. It is the
/// [`Accounting::StoredInputs`] model of [`crate::measure::memory`] with the layers per block of the
/// architecture: a RevNet, i-RevNet or hybrid block has two `[conv, BN]` pairs in each of F and
/// G on `c/2` channels, the `4c` per block of a ResNet basic block (two pairs on `c`); a
/// layer-wise unit has one (invertible) convolution and one batch norm, `2c` per unit. Not
/// counted, as in the paper: the inputs of the (leaky) ReLUs, which our stored mode keeps too
/// (its tape holds 3 activations per layer-wise unit and 5 per block), and the coupling
/// temporaries. For the ResNet this is its ordinary model. `None` where [`mem_config`] is.
pub fn mem_config_stored(cfg: &NetConfig, bpe: usize) -> Option<MemConfig> {
    let mut m = mem_config(cfg, bpe)?;
    if let Some(k) = cfg.arch.spec().memory.stored_convs_per_unit {
        m.convs_per_module = k;
    }
    m.accounting = Accounting::StoredInputs;
    Some(m)
}

/// Analytic stored-mode `M'_z + M'_g` of a network ([`mem_config_stored`]), bytes per pixel.
pub fn analytic_stored_bytes_per_pixel(cfg: &NetConfig, dtype: DType) -> Option<f64> {
    analytic(&mem_config_stored(cfg, dtype.size_in_bytes())?)
        .ok()
        .map(|b| b.per_pixel)
}

/// Analytic `M'_z + M'_g` of a network trained in `mode`: the stored-mode model
/// ([`analytic_stored_bytes_per_pixel`]) for a reversible architecture in stored mode,
/// otherwise [`analytic_bytes_per_pixel`] (a ResNet's reconstructed step is its stored step).
pub fn analytic_bytes_per_pixel_in(cfg: &NetConfig, mode: Source, dtype: DType) -> Option<f64> {
    if mode == Source::Checkpointed {
        // The model counts stored and reconstructed steps only.
        None
    } else if mode == Source::Stored && cfg.arch.reconstructable() {
        analytic_stored_bytes_per_pixel(cfg, dtype)
    } else {
        analytic_bytes_per_pixel(cfg, dtype)
    }
}

/// The paper's printed bytes per pixel for the architecture family (Table 1, eq. 34).
pub fn paper_bytes_per_pixel(arch: Arch, rows: &[Table1Row]) -> Option<f64> {
    rows.iter()
        .find(|r| r.arch == arch)
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
    /// `measurement` column ([`measurement_label`]).
    #[serde(default)]
    pub copied_from_stored: bool,
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
    let plan = BackwardPlan::from(mode).with_default_segment(segment);
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
        let (out, peak, act) = alloc::measure_peaks(|| net.step(&x, &labels, plan, opts));
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
    })
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
    /// Slope of `act_peak_bytes` (the peak without the parameter gradients). Along the batch
    /// sweep: the marginal activation bytes per input pixel, fixed costs removed.
    pub act_slope: f64,
    /// Intercept of `act_peak_bytes`.
    pub act_intercept: f64,
    /// R^2 of the `act_peak_bytes` fit.
    pub act_r2: f64,
    /// Peak at the last value over the peak at the first.
    pub ratio_last_first: f64,
    /// Every point of the fit is a copy of the stored step ([`PeakPoint::copied_from_stored`]).
    #[serde(default)]
    pub copied_from_stored: bool,
}

/// One row of the summary (`summary.csv`): one architecture in one mode at its comparison
/// point (depth [`MemoryConfig::depth_for`], batch `batch`, `input_size`). Every `*_bpx`
/// figure is bytes per input pixel (`batch * input_size^2`) of activations and activation
/// gradients: the weights (allocated before the step) and the parameter gradients
/// (`grad_bytes`, subtracted from the peak) are excluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Architecture.
    pub arch: Arch,
    /// Source of the activations in the backward.
    pub mode: Source,
    /// Analytic `M'_z + M'_g` of the same network in this mode
    /// ([`analytic_bytes_per_pixel_in`]): the model of [`crate::measure::memory`] in
    /// reconstructed mode and for the ResNet, the stored-mode model of [`mem_config_stored`]
    /// (every convolution and batch-norm input stored + one gradient buffer) for a reversible
    /// architecture in stored mode. `None` (empty in the CSV) where the model does not apply:
    /// a stage without a block.
    pub analytic_bpx: Option<f64>,
    /// Measured: `act_peak_bytes / (batch * input_size^2)` at the comparison point.
    pub measured_bpx: f64,
    /// Marginal: the least-squares slope of `act_peak_bytes` over the batch sweep per input
    /// pixel (fixed costs, such as weight-sized temporaries, removed). `None` with fewer than
    /// two distinct batches.
    pub marginal_bpx: Option<f64>,
    /// `marginal_bpx / analytic_bpx`.
    pub marginal_over_analytic: Option<f64>,
    /// `measured_bpx / analytic_bpx`.
    pub measured_over_analytic: Option<f64>,
    /// R^2 of the marginal fit.
    pub marginal_r2: Option<f64>,
    /// The paper's printed `M'_z + M'_g` for its configuration of this family (Table 1, eq.
    /// 34), in the mode it describes only (reconstructed; stored and reconstructed for the
    /// ResNet).
    pub paper_bpx: Option<f64>,
    /// The whole peak per input pixel, parameter gradients included.
    pub peak_bpx: f64,
    /// Bytes of the parameter gradients at the comparison point (not in the `*_bpx` figures).
    pub grad_bytes: usize,
    /// Bytes of the weights (not in any peak).
    pub weight_bytes: usize,
    /// Bytes the forward kept on the tape at the comparison point.
    pub tape_bytes: usize,
    /// Primitive layers.
    pub layers: usize,
    /// Blocks (units for layer-wise).
    pub depth: usize,
    /// Channels after the stem.
    pub width: usize,
    /// Input height = width.
    pub input_size: usize,
    /// Batch of the comparison point.
    pub batch: usize,
    /// The batch sweep of the marginal fit.
    pub batches: Vec<usize>,
    /// Poolings, e.g. `P_c-P_c-P_b` ([`pools_label`]).
    pub pools: String,
    /// Channels per stage, e.g. `32-128-512-512`.
    pub channels: String,
    /// Blocks (units) per stage, e.g. `2-2-2-1`.
    pub blocks: String,
    /// Storage dtype.
    pub dtype: String,
    /// Slope of the peak along the depth sweep, bytes per block (`None` without one).
    pub depth_slope: Option<f64>,
    /// Slope of the peak without parameter gradients along the depth sweep, bytes per block.
    pub depth_act_slope: Option<f64>,
    /// Slope of the parameter-gradient bytes along the depth sweep, bytes per block: the
    /// `M_theta`-like part of `depth_slope`.
    pub grad_bytes_per_block: Option<f64>,
    /// The comparison point is a copy of the stored step ([`PeakPoint::copied_from_stored`]).
    #[serde(default)]
    pub copied_from_stored: bool,
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
    /// The backend that computed the layers ([`Backend::as_str`]).
    pub backend: String,
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
    /// One row per architecture and mode (`summary.csv`).
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
    let dtype = cfg.dtype.dtype();
    let device = cfg.device.open()?;
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
                    let p = PeakPoint {
                        mode,
                        copied_from_stored: true,
                        ..p.clone()
                    };
                    done.insert(key, p.clone());
                    order.push(key);
                    return Ok(p);
                }
            }
            let p = measure_point_segment(
                &cfg.net_config(arch, depth, size),
                batch,
                mode,
                cfg.segment,
                dtype,
                &device,
                cfg.backend,
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
        let depth = cfg.depth_for(arch);
        for &mode in &cfg.modes {
            measure(arch, mode, depth, cfg.batch, cfg.input_size)?;
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
                        Axis::Batch => measure(arch, mode, depth, v, cfg.input_size)?,
                        Axis::Size => measure(arch, mode, depth, cfg.batch, v)?,
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
                if let (Some(fit), Some(act)) = (fit_xy(&x, &y), fit_xy(&x, &ya)) {
                    let LineFit {
                        slope,
                        intercept,
                        r2,
                    } = fit;
                    let (act_slope, act_intercept, act_r2) = (act.slope, act.intercept, act.r2);
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
                        act_intercept,
                        act_r2,
                        ratio_last_first: y[y.len() - 1] / y[0],
                        copied_from_stored: pts.iter().all(|p| p.copied_from_stored),
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
        backend: cfg.backend.as_str().into(),
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

/// The points [`run_with`] measures, in its order: `(arch, mode, depth, batch, size)`, each
/// once (a point met again in another sweep is reused; ResNet's reconstructed step is its
/// stored one and is not measured again when that was measured). For `--dry-run`.
pub fn plan(cfg: &MemoryConfig) -> Vec<(Arch, Source, usize, usize, usize)> {
    let mut order: Vec<Key> = Vec::new();
    let mut add = |k: Key| {
        let (arch, mode, depth, batch, size) = k;
        let copied = !arch.reconstructable()
            && mode == Source::Reconstructed
            && order.contains(&(arch, Source::Stored, depth, batch, size));
        if !order.contains(&k) && !copied {
            order.push(k);
        }
    };
    for &arch in &cfg.archs {
        let depth = cfg.depth_for(arch);
        for &mode in &cfg.modes {
            add((arch, mode, depth, cfg.batch, cfg.input_size));
            for &v in &cfg.depths {
                add((arch, mode, v, cfg.batch, cfg.input_size));
            }
            for &v in &cfg.batches {
                add((arch, mode, depth, v, cfg.input_size));
            }
            for &v in &cfg.sizes {
                add((arch, mode, depth, cfg.batch, v));
            }
        }
    }
    order
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
    let dtype = cfg.dtype.dtype();
    let fit = |arch: Arch, mode: Source, axis: Axis| {
        scaling
            .iter()
            .find(|f| f.arch == arch && f.mode == mode && f.axis == axis)
    };
    let grad_slope = |arch: Arch, mode: Source| {
        let pts: Vec<&PeakPoint> = cfg
            .depths
            .iter()
            .filter_map(|&d| {
                points.iter().find(|p| {
                    p.arch == arch
                        && p.mode == mode
                        && p.depth == d
                        && p.batch == cfg.batch
                        && p.size == cfg.input_size
                })
            })
            .collect();
        let x: Vec<f64> = pts.iter().map(|p| p.depth as f64).collect();
        let y: Vec<f64> = pts.iter().map(|p| p.grad_bytes as f64).collect();
        fit_xy(&x, &y).map(|f| f.slope)
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let mut rows = Vec::new();
    for &arch in &cfg.archs {
        let depth = cfg.depth_for(arch);
        let net = cfg.net_config(arch, depth, cfg.input_size);
        for &mode in &cfg.modes {
            let Some(p) = points.iter().find(|p| {
                p.arch == arch
                    && p.mode == mode
                    && p.depth == depth
                    && p.batch == cfg.batch
                    && p.size == cfg.input_size
            }) else {
                continue;
            };
            let analytic = analytic_bytes_per_pixel_in(&net, mode, dtype);
            let marginal = fit(arch, mode, Axis::Batch);
            let marginal_bpx = marginal.map(|f| f.act_slope);
            let depth_fit = fit(arch, mode, Axis::Depth);
            let model_mode = mode == Source::Reconstructed
                || (!arch.reconstructable() && mode != Source::Checkpointed);
            rows.push(SummaryRow {
                arch,
                mode,
                analytic_bpx: analytic,
                measured_bpx: p.act_bytes_per_pixel,
                marginal_bpx,
                marginal_over_analytic: ratio(marginal_bpx, analytic),
                measured_over_analytic: ratio(Some(p.act_bytes_per_pixel), analytic),
                marginal_r2: marginal.map(|f| f.act_r2),
                paper_bpx: if model_mode {
                    paper_bytes_per_pixel(arch, t1)
                } else {
                    None
                },
                peak_bpx: p.bytes_per_pixel,
                grad_bytes: p.grad_bytes,
                weight_bytes: p.weight_bytes,
                tape_bytes: p.tape_bytes,
                layers: p.layers,
                depth,
                width: cfg.width,
                input_size: cfg.input_size,
                batch: cfg.batch,
                batches: cfg.batches.clone(),
                pools: pools_label(&net),
                channels: dash_joined(&stage_channels(&net)),
                blocks: dash_joined(&net.units_per_stage()),
                dtype: p.dtype.clone(),
                depth_slope: depth_fit.map(|f| f.slope),
                depth_act_slope: depth_fit.map(|f| f.act_slope),
                grad_bytes_per_block: grad_slope(arch, mode),
                copied_from_stored: p.copied_from_stored,
            });
        }
    }
    rows
}
