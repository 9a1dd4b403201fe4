//! The memory, time and exactness frontier (figure `tradeoff`): for each architecture
//! and depth, one training step's measured peak activation bytes per input pixel against its
//! time relative to the stored step, for every source of activations:
//!
//! - `stored`: every input kept by the forward;
//! - `checkpointed`, segments of `k` units or blocks ([`TradeoffConfig::segments_for`]: the
//!   powers of two up to the depth, `ceil(sqrt(depth))` and the depth itself);
//! - `reconstructed` (per-layer backward: the block inverse for reversible blocks, hidden
//!   activations rebuilt layer-wise in the hybrid and recomputed in RevNet/i-RevNet; layer-wise
//!   inverses in the layer-wise network) and `algorithm1` (Gomez et al.'s Algorithm 1); not for
//!   the ResNet, which has no inverse;
//! - `anchored` at each SNR target of [`TradeoffConfig::anchor_targets_db`] (default 30 and
//!   60 dB): reconstructed with the inputs of the planner's anchors stored, the plan made on
//!   the frontier's batch before anything is measured ([`crate::experiments::anchored`]); not
//!   for the ResNet.
//!
//! Each point carries its exactness: the lowest-layer reconstruction SNR (dB, the stored trace
//! as reference, as [`crate::train::lowest_snr`]) and the whole-network gradient angle to the
//! stored gradients (degrees, [`grad_angle`]), both measured on the same batch (infinite and 0
//! for the exact sources: their traces and gradients are bitwise the stored ones, and this is
//! measured, not assumed).
//!
//! Timing: the sources of one (architecture, depth) run interleaved, one step each in turn,
//! after `warmup` untimed rounds (as `bench`), on one network (a step does not change the
//! weights); the median of `steps` steps. Peak bytes: the highest live heap bytes during a step
//! above those live at its start, without the parameter gradients (the activation peak of
//! [`crate::measure::alloc::measure_peaks`]); zero unless the binary installs the counting
//! allocator. Nothing else may allocate meanwhile: the points run one after the other.

use crate::backend::Backend;
use crate::device::Precision;
use crate::error::{Error, Result};
use crate::experiments::anchored::{plan_for, AnchorRecord};
use crate::measure::anchors::Anchoring;
use crate::measure::grad_angle::grad_angle;
use crate::nets::{Arch, BackwardPlan, NetConfig, Network, StepOptions};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What the frontier measures. The defaults are small (width 16, batch 8 of 16x16 images, one
/// stage) so that the figures command stays cheap; the one-stage stack of `bench
/// --workload stack` is the larger workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TradeoffConfig {
    /// Architectures.
    pub archs: Vec<Arch>,
    /// Depths (units for layer-wise, blocks otherwise).
    pub depths: Vec<usize>,
    /// Channels after the stem.
    pub width: usize,
    /// Batch size.
    pub batch: usize,
    /// Input height = width.
    pub input_size: usize,
    /// Stages (poolings + 1, the architecture's default poolings).
    pub stages: usize,
    /// Convolution init relative to Kaiming normal (part of every SNR result).
    pub init_scale: f64,
    /// Storage dtype.
    pub dtype: Precision,
    /// Timed steps per source (median reported).
    pub steps: usize,
    /// Untimed rounds before them.
    pub warmup: usize,
    /// Seed of the weights and the batch.
    pub seed: u64,
    /// SNR targets (dB) of the anchored points, one point each (architectures with an
    /// inverse only).
    pub anchor_targets_db: Vec<f64>,
    /// Backend computing the layers; left out of the serialised config when default.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
}

impl Default for TradeoffConfig {
    fn default() -> Self {
        TradeoffConfig {
            archs: Arch::ALL.to_vec(),
            depths: vec![8, 16, 32],
            width: 16,
            batch: 8,
            input_size: 16,
            stages: 1,
            init_scale: 1.0,
            dtype: Precision::F32,
            steps: 15,
            warmup: 1,
            seed: 0,
            anchor_targets_db: vec![30.0, 60.0],
            backend: Backend::default(),
        }
    }
}

impl TradeoffConfig {
    /// Check every value (and that every network can be built).
    pub fn validate(&self) -> Result<()> {
        if self.archs.is_empty() || self.depths.is_empty() {
            let c = "tradeoff: archs and depths";
            return Err(Error::config(c, "at least one value each", "an empty list"));
        }
        if self.batch == 0 || self.steps == 0 || self.stages == 0 || self.stages > 4 {
            return Err(Error::config(
                "tradeoff: batch, steps and stages",
                "batch >= 1, steps >= 1 and stages in 1..=4",
                format!("{}, {} and {}", self.batch, self.steps, self.stages),
            ));
        }
        for &t in &self.anchor_targets_db {
            Anchoring::target(t).validate()?;
        }
        for &arch in &self.archs {
            for &depth in &self.depths {
                self.net_config(arch, depth).validate()?;
            }
        }
        Ok(())
    }

    /// The network of `arch` at `depth`.
    pub fn net_config(&self, arch: Arch, depth: usize) -> NetConfig {
        let mut c = NetConfig::new(arch);
        c.depth = depth;
        c.width = self.width;
        c.input_size = self.input_size;
        c.seed = self.seed;
        c.net.init_scale = self.init_scale;
        let mut pools = arch.default_pools();
        pools.truncate(self.stages.saturating_sub(1));
        c.net.pools = Some(pools);
        c
    }

    /// The checkpointed segment lengths at `depth`: the powers of two below it,
    /// `ceil(sqrt(depth))` and `depth` itself, increasing, each once.
    pub fn segments_for(depth: usize) -> Vec<usize> {
        let mut k: Vec<usize> = std::iter::successors(Some(1usize), |k| Some(k * 2))
            .take_while(|&k| k < depth)
            .collect();
        k.push(crate::backprop::default_segment(depth));
        k.push(depth);
        k.sort_unstable();
        k.dedup();
        k
    }

    /// Every source measured for `arch` at `depth`, stored first.
    pub fn sources(arch: Arch, depth: usize) -> Vec<BackwardPlan> {
        let mut v = vec![BackwardPlan::STORED];
        for k in Self::segments_for(depth) {
            v.push(BackwardPlan::checkpointed(Some(k)));
        }
        if arch.reconstructable() {
            v.push(BackwardPlan::RECONSTRUCTED);
            v.push(BackwardPlan::ALGORITHM1);
        }
        v
    }
}

/// One point of the frontier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeoffPoint {
    /// Architecture.
    pub arch: Arch,
    /// Depth.
    pub depth: usize,
    /// `stored`, `checkpointed`, `reconstructed`, `algorithm1` or `anchored`
    /// ([`BackwardPlan::name`]).
    pub source: String,
    /// Checkpointed: units or blocks per segment.
    pub segment: Option<usize>,
    /// Peak live heap bytes during the step above those before it, without the parameter
    /// gradients.
    pub act_peak_bytes: usize,
    /// The same with the parameter gradients.
    pub peak_bytes: usize,
    /// `act_peak_bytes / (batch * input_size^2)`.
    #[serde(with = "crate::results::text::num")]
    pub bytes_per_pixel: f64,
    /// Median seconds per step.
    #[serde(with = "crate::results::text::num")]
    pub median_s: f64,
    /// `median_s` over the stored source's.
    #[serde(with = "crate::results::text::num")]
    pub time_ratio: f64,
    /// Lowest-layer reconstruction SNR, dB (stored trace as reference; `inf`: exact).
    #[serde(with = "crate::results::text::num")]
    pub lowest_snr_db: f64,
    /// The layer whose input that is.
    pub lowest_layer: String,
    /// Whole-network angle between this source's and the stored gradients, degrees.
    #[serde(with = "crate::results::text::num")]
    pub grad_angle_deg: f64,
    /// Anchored: the plan it ran (its target, anchors and the bytes they hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchors: Option<AnchorRecord>,
}

/// The frontier's measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeoffData {
    /// Every point, by architecture, depth, then source.
    pub points: Vec<TradeoffPoint>,
}

/// Median of `v` (NaN when empty).
fn median(v: &[f64]) -> f64 {
    crate::experiments::bench::median(v)
}

/// Run the frontier (module docs). `progress` gets each point as its (arch, depth) is done.
pub fn run(cfg: &TradeoffConfig, mut progress: impl FnMut(&TradeoffPoint)) -> Result<TradeoffData> {
    cfg.validate()?;
    let dtype = cfg.dtype.dtype();
    let device = Device::Cpu;
    let mut points = Vec::new();
    for &arch in &cfg.archs {
        for &depth in &cfg.depths {
            let net_cfg = cfg.net_config(arch, depth);
            let net = Network::build_with(&net_cfg, dtype, &device, cfg.backend)?;
            let (x, labels) =
                crate::experiments::memory::batch_for(&net_cfg, cfg.batch, dtype, &device)?;
            let mut sources = TradeoffConfig::sources(arch, depth);
            let mut records: Vec<Option<AnchorRecord>> = vec![None; sources.len()];
            if arch.reconstructable() {
                for &t in &cfg.anchor_targets_db {
                    let rec = plan_for(&net, &Anchoring::target(t), &x, &labels)?;
                    sources.push(rec.backward());
                    records.push(Some(rec));
                }
            }
            let opts = |trace: bool| StepOptions {
                grads: true,
                trace,
                ..StepOptions::default()
            };
            // Exactness first (traces and gradients on the same batch).
            let reference = net.step(&x, &labels, &sources[0], opts(true))?;
            let mut exactness = Vec::with_capacity(sources.len());
            for s in &sources {
                let out = net.step(&x, &labels, s, opts(true))?;
                let angle = grad_angle(&reference.grads, &out.grads)?.whole_deg;
                let (layer, snr) = crate::train::lowest_snr(&reference, &out)?;
                exactness.push((layer, snr, angle));
            }
            drop(reference);
            // Time and memory, interleaved.
            let mut times = vec![Vec::new(); sources.len()];
            let mut peaks = vec![(0usize, 0usize); sources.len()];
            for round in 0..cfg.warmup + cfg.steps {
                for (i, s) in sources.iter().enumerate() {
                    let t0 = Instant::now();
                    let (out, peak, act) = crate::measure::alloc::measure_peaks(|| {
                        net.step(&x, &labels, s, opts(false))
                    });
                    let dt = t0.elapsed().as_secs_f64();
                    let out = out?;
                    if !out.loss.is_finite() {
                        return Err(Error::NonFinite {
                            context: format!("tradeoff loss ({arch} depth {depth} {})", s.name()),
                            count: 1,
                        });
                    }
                    drop(out);
                    if round >= cfg.warmup {
                        times[i].push(dt);
                        peaks[i] = (peaks[i].0.max(peak), peaks[i].1.max(act));
                    }
                }
            }
            let stored_median = median(&times[0]);
            let pixels = (cfg.batch * cfg.input_size * cfg.input_size) as f64;
            for (i, s) in sources.iter().enumerate() {
                let (layer, snr, angle) = exactness[i].clone();
                let med = median(&times[i]);
                let p = TradeoffPoint {
                    arch,
                    depth,
                    source: s.name().into(),
                    segment: s.segment,
                    act_peak_bytes: peaks[i].1,
                    peak_bytes: peaks[i].0,
                    bytes_per_pixel: peaks[i].1 as f64 / pixels,
                    median_s: med,
                    time_ratio: med / stored_median,
                    lowest_snr_db: snr,
                    lowest_layer: layer,
                    grad_angle_deg: angle,
                    anchors: records[i].clone(),
                };
                progress(&p);
                points.push(p);
            }
        }
    }
    Ok(TradeoffData { points })
}
