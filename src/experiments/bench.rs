//! Training-step benchmark: time and peak memory of one real training step
//! of a [`Network`] (forward, the one backward, [`Sgd`] update) with stored activations, with
//! reconstructed activations and the per-layer backward, with reconstructed activations and
//! Gomez et al.'s Algorithm 1, checkpointed, and anchored (reconstructed with the inputs of
//! the planned or listed anchors stored: the plan is made once per depth on the benchmark's
//! batch and initial weights, before the first step, its batch-norm running statistics
//! restored, [`crate::experiments::anchored`]; the row records the anchors, `bench.csv` their
//! number and the bytes their inputs hold).
//!
//! Workload: the network of [`BenchConfig::net_config`], by default a RevNet
//! ([`Arch::Revnet`]) in one stage (no pooling): stem (3x3 conv, 3 -> `width` channels), `depth`
//! reversible blocks with F = G = `[conv3x3, BN, ReLU, conv3x3, BN]` on `width / 2` channels
//! (plain batch norm with batch statistics, no convolution bias), head (global average pool +
//! linear to 10 classes); batch 32 of 32x32 unit-Gaussian images with uniform random labels from
//! the seed; mean cross-entropy; [`Sgd`] with momentum 0.9 and weight decay 5e-4 at a constant
//! learning rate. Every step is exactly what [`crate::train`] does per batch:
//! [`Network::step`] with gradients, then [`Sgd::step`]. Any other architecture and pooling of
//! [`crate::nets`] can be benchmarked (`arch`, `pools`); the ResNet baseline has no
//! reconstructed mode, so its reconstructed modes are skipped ([`BenchConfig::skip_note`]).
//!
//! Every mode trains its own copy of the network from the same weights (the copies drift apart
//! by their updates; this changes no timing).
//!
//! Timing: the modes run interleaved, one step each in turn, after `warmup` untimed rounds, so
//! that a machine shared with other jobs slows them alike; the table gives the median of
//! `steps` steps and its ratio to the stored mode's median. Peak bytes are the highest live heap
//! bytes during a step above those live at its start (weights, momentum buffers, input, labels),
//! counted by [`crate::measure::alloc`] (zero unless the binary installs the counting
//! allocator).
//!
//! A run's results are one typed value, [`BenchResults`] (configs, rows, environment,
//! provenance): its `run.json`, from which `bench.csv` and `report`'s table are derived.

use crate::backend::Backend;
use crate::device::{DeviceSpec, Precision};
use crate::error::{Error, Result};
use crate::experiments::anchored::{plan_for, AnchorRecord};
use crate::measure::anchors::Anchoring;
use crate::nets::{
    Arch, BackwardPlan, LayerKind, NetConfig, NetOptions, Network, PoolKind, Source, StepOptions,
    StepOutput, Unit,
};
use crate::train::Sgd;
use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Instant;

mod results;
mod shapes;
pub use results::{loadavg, BenchResults, ThreadEnv, EXPERIMENT, NOTES};
pub use shapes::*;

/// The named backward plans a bench times by default, stored first (the reference of the
/// ratios).
pub const DEFAULT_MODES: [BackwardPlan; 3] = [
    BackwardPlan::STORED,
    BackwardPlan::RECONSTRUCTED,
    BackwardPlan::ALGORITHM1,
];

/// Whether `arch` has `mode` (the ResNet baseline has no reconstructed or anchored ones).
pub fn mode_available(mode: &BackwardPlan, arch: Arch) -> bool {
    !matches!(mode.source, Source::Reconstructed | Source::Anchored) || arch.reconstructable()
}

/// Parse a pooling list: `none` or empty (one stage), `default` (the architecture's
/// [`Arch::default_pools`]), or comma-separated `c` (channel pooling), `b` (batch pooling),
/// `max` (max pooling + 1x1 convolution).
pub fn parse_pools(list: &str, arch: Arch) -> Result<Vec<PoolKind>> {
    match list.trim().to_ascii_lowercase().as_str() {
        "" | "none" => return Ok(Vec::new()),
        "default" => return Ok(arch.default_pools()),
        _ => {}
    }
    list.split(',')
        .map(|p| match p.trim().to_ascii_lowercase().as_str() {
            "c" | "channel" => Ok(PoolKind::Channel),
            "b" | "batch" => Ok(PoolKind::Batch),
            "max" => Ok(PoolKind::Max),
            other => Err(Error::Unknown {
                kind: "pooling",
                got: other.into(),
                expected: "c, b, max (comma-separated), none, default".into(),
            }),
        })
        .collect()
}

/// The pooling list as [`parse_pools`] reads it (`none` when empty).
pub fn pools_name(pools: &[PoolKind]) -> String {
    if pools.is_empty() {
        return "none".into();
    }
    pools
        .iter()
        .map(|p| match p {
            PoolKind::Channel => "c",
            PoolKind::Batch => "b",
            PoolKind::Max => "max",
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Options of [`run`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BenchConfig {
    /// Depths (units for layer-wise, blocks otherwise).
    pub depths: Vec<usize>,
    /// Modes (the ratio column needs `stored`).
    pub modes: Vec<BackwardPlan>,
    /// Checkpointed mode: units or blocks per segment at every depth (`None`: each depth's
    /// `ceil(sqrt(depth))`); left out of the serialised config when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<usize>,
    /// Anchored mode: how the anchors are chosen (the planner's target, default 60 dB, or a
    /// list), planned once per depth on the benchmark's batch before the first step
    /// ([`crate::experiments::anchored`]); left out of the serialised config when default.
    #[serde(skip_serializing_if = "Anchoring::is_default")]
    pub anchors: Anchoring,
    /// Timed steps per mode and depth.
    pub steps: usize,
    /// Untimed rounds before them.
    pub warmup: usize,
    /// Threads of candle's CPU kernels and of the crate's own kernels: rayon's global pool and
    /// gemm (`None`: candle's default).
    pub threads: Option<usize>,
    /// Threads of candle's elementwise ops (its barrier pool, `CANDLE_NUM_THREADS`; `None`: as
    /// `threads`). Its workers spin after every op and, beside the rayon pool, oversubscribe
    /// the cores: 1 (the default) keeps at most `threads` threads busy.
    pub elementwise_threads: Option<usize>,
    /// Architecture.
    pub arch: Arch,
    /// Channels after the stem (the channels of the first stage's blocks, both halves).
    #[serde(alias = "channels")]
    pub width: usize,
    /// Batch size.
    pub batch: usize,
    /// Input height = width.
    pub size: usize,
    /// Storage dtype.
    pub dtype: Precision,
    /// SGD learning rate (constant).
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// SGD (coupled L2) weight decay.
    pub weight_decay: f64,
    /// Seed of the weights, input and labels.
    pub seed: u64,
    /// Backend computing the layers (`kernels`, the default, or `candle`: the "before" column);
    /// left out of the serialised config when default.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
    /// Device (`cpu`, `cuda[:N]`, `metal[:N]`); off the CPU every timed step ends with a
    /// device synchronisation.
    pub device: DeviceSpec,
    /// The network options (the `[net]` table; default here: no pooling, one stage). With
    /// `nested`, every depth is a prefix of the deepest network of `depths`.
    pub net: NetOptions,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            depths: vec![4, 8, 16],
            modes: DEFAULT_MODES.to_vec(),
            segment: None,
            anchors: Anchoring::default(),
            steps: 5,
            warmup: 1,
            threads: Some(2),
            elementwise_threads: Some(1),
            arch: Arch::Revnet,
            width: 32,
            batch: 32,
            size: 32,
            dtype: Precision::F32,
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 5e-4,
            seed: 0,
            backend: Backend::default(),
            device: DeviceSpec::Cpu,
            net: NetOptions {
                pools: Some(Vec::new()),
                ..NetOptions::default()
            },
        }
    }
}

impl BenchConfig {
    /// Check the options (the network's through [`NetConfig::validate`]).
    pub fn validate(&self) -> Result<()> {
        self.net.check_fg_for(&[self.arch])?;
        let bad = |c: &str, e: &str, g: String| Err(Error::config(c, e, g));
        let anchored = self.modes.iter().any(|m| m.source == Source::Anchored);
        self.anchors.check_use(anchored, Some("bench"))?;
        if self.depths.is_empty() || self.depths.contains(&0) {
            let got = format!("{:?}", self.depths);
            return bad("depths", "a non-empty list of values >= 1", got);
        }
        if self.modes.is_empty() {
            return bad("modes", "at least one mode", "none".into());
        }
        if self.modes_to_run().is_empty() {
            let e = format!(
                "a mode {} has (it has no reconstructed mode: add `stored`)",
                self.arch
            );
            return bad("modes", &e, format!("{:?}", self.modes));
        }
        if self.steps == 0 {
            return bad("steps", ">= 1", "0".into());
        }
        if self.threads == Some(0) || self.elementwise_threads == Some(0) {
            let got = format!("{:?} and {:?}", self.threads, self.elementwise_threads);
            return bad("threads and elementwise_threads", ">= 1 each", got);
        }
        if self.batch == 0 {
            return bad("batch", ">= 1", "0".into());
        }
        crate::limits::check_distinct("depths", &self.depths)?;
        crate::limits::check_distinct("modes", &self.modes)?;
        for t in [self.threads, self.elementwise_threads]
            .into_iter()
            .flatten()
        {
            crate::limits::check_threads(t)?;
        }
        // Memory up front, as every tool: the deepest network timed.
        crate::limits::check_memory(
            &format!(
                "bench: {} at depth {}",
                self.arch,
                self.depths.iter().max().unwrap_or(&1)
            ),
            crate::limits::network_bytes_estimate(
                self.depths.iter().copied().max().unwrap_or(1),
                self.width,
                self.batch,
                self.size,
                self.dtype.dtype().size_in_bytes(),
            ),
        )?;
        if !(self.lr.is_finite() && self.lr >= 0.0)
            || !(0.0..1.0).contains(&self.momentum)
            || !(self.weight_decay.is_finite() && self.weight_decay >= 0.0)
        {
            let got = format!("{}, {} and {}", self.lr, self.momentum, self.weight_decay);
            let e = "lr >= 0, momentum in [0, 1) and weight_decay >= 0 (finite)";
            return bad("lr, momentum and weight_decay", e, got);
        }
        self.device.open()?;
        for &d in &self.depths {
            self.net_config(d).validate()?;
            if self.modes.iter().any(|m| m.source == Source::Checkpointed) {
                crate::backprop::segment_length(self.segment, d)?;
            }
            // A list names layers of each network: checked before anything runs.
            if anchored && self.anchors.list.is_some() && self.arch.reconstructable() {
                let net = Network::build(&self.net_config(d), DType::F32, &Device::Cpu)?;
                self.anchors.check_against(&net)?;
            }
        }
        Ok(())
    }

    /// The network at `depth`: [`NetConfig::new`] for `arch` (slope 0.2, 3 input channels, 10
    /// classes, batch-norm `eps` 1e-5) with this config's pools, width, input size, init and
    /// seed.
    pub fn net_config(&self, depth: usize) -> NetConfig {
        let c = NetConfig {
            depth,
            width: self.width,
            input_size: self.size,
            seed: self.seed,
            ..NetConfig::new(self.arch)
        };
        let deepest = self.depths.iter().copied().max().unwrap_or(depth);
        c.with_net(&self.net, deepest)
    }

    /// The requested modes that the architecture has, in the requested order.
    pub fn modes_to_run(&self) -> Vec<BackwardPlan> {
        self.modes
            .iter()
            .filter(|m| mode_available(m, self.arch))
            .cloned()
            .collect()
    }

    /// A note naming the requested modes that are skipped because the architecture lacks them.
    pub fn skip_note(&self) -> Option<String> {
        let skipped: Vec<&str> = self
            .modes
            .iter()
            .filter(|m| !mode_available(m, self.arch))
            .map(|m| m.name())
            .collect();
        (!skipped.is_empty()).then(|| {
            format!(
                "{} stores every activation (no inverse): skipped mode(s) {}",
                self.arch,
                skipped.join(", ")
            )
        })
    }

    /// A one-line description of the workload.
    pub fn describe(&self) -> String {
        format!(
            "{} (pools {}), width {}, batch {} of {}x{}, {}, backend {}, SGD lr {} momentum {} weight decay {}",
            self.arch,
            pools_name(&self.net.pools_for(self.arch)),
            self.width,
            self.batch,
            self.size,
            self.size,
            self.dtype,
            self.backend,
            self.lr,
            self.momentum,
            self.weight_decay
        )
    }
}

/// The input batch of `cfg`: `(batch, in_channels, size, size)` unit-Gaussian images and
/// uniform random labels in `0..classes`, both from `seed`.
pub fn batch_for(
    cfg: &NetConfig,
    batch: usize,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let mut rng = crate::util::rng_for(seed, "bench-input");
    let x = crate::util::randn(
        &mut rng,
        &[batch, cfg.net.in_channels, cfg.input_size, cfg.input_size],
        0.0,
        1.0,
        dtype,
        device,
    )?;
    let mut rng = crate::util::rng_for(seed, "bench-labels");
    let labels: Vec<u32> = (0..batch)
        .map(|_| rng.gen_range(0..cfg.classes as u32))
        .collect();
    let labels = Tensor::from_vec(labels, batch, device)?;
    Ok((x, labels))
}

/// One mode's network and optimiser: a training step is [`Network::step`] in the mode, then
/// [`Sgd::step`], as in [`crate::train::train`].
pub struct Trainee {
    /// The mode.
    pub mode: BackwardPlan,
    /// Checkpointed mode: units or blocks per segment (`None`: `ceil(sqrt(depth))`).
    pub segment: Option<usize>,
    /// The network (its own copy of the weights).
    pub net: Network,
    /// Its optimiser (momentum buffers).
    pub sgd: Sgd,
    /// The parameters, in layer order.
    pub params: Vec<(String, Var)>,
}

impl Trainee {
    /// Build `net` in `dtype` on `device`, computed by `backend`, for `mode`, with a fresh
    /// optimiser.
    pub fn build(
        net: &NetConfig,
        mode: BackwardPlan,
        sgd: Sgd,
        dtype: DType,
        device: &Device,
        backend: Backend,
    ) -> Result<Trainee> {
        if !mode_available(&mode, net.arch) {
            let e = format!("a mode of {}", net.arch);
            return Err(Error::config(
                "mode",
                e,
                format!("{} (it has none)", mode.name()),
            ));
        }
        let net = Network::build_with(net, dtype, device, backend)?;
        let params = net.named_params();
        Ok(Trainee {
            mode,
            segment: None,
            net,
            sgd,
            params,
        })
    }

    /// Forward and backward in this mode, no update.
    pub fn grads(&self, x: &Tensor, labels: &Tensor) -> Result<StepOutput> {
        let opts = StepOptions {
            grads: true,
            ..StepOptions::default()
        };
        let plan = self.mode.clone().with_default_segment(self.segment);
        self.net.step(x, labels, plan, opts)
    }

    /// One training step at learning rate `lr`: [`Trainee::grads`], then [`Sgd::step`] unless
    /// the loss or a gradient is not finite (the weights are then left as they were). Returns
    /// the loss (not finite on divergence).
    pub fn step(&mut self, x: &Tensor, labels: &Tensor, lr: f64) -> Result<f64> {
        let out = self.grads(x, labels)?;
        if !out.loss.is_finite() {
            return Ok(out.loss);
        }
        self.sgd.step(&self.params, &out.grads, lr)?;
        Ok(out.loss)
    }
}

/// One row of the table: a mode at a depth. Its floats that are not finite are written `null`
/// (serde_json's rule) and read back as NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    /// Architecture.
    pub arch: Arch,
    /// Mode.
    pub mode: BackwardPlan,
    /// Depth.
    pub depth: usize,
    /// Checkpointed mode: the units or blocks per segment it ran with (`None` in other modes).
    pub segment: Option<usize>,
    /// Primitive layers of the network ([`Network::num_layers`]).
    pub layers: usize,
    /// Median seconds per step.
    #[serde(deserialize_with = "results::nan_if_null")]
    pub median_s: f64,
    /// Fastest step.
    #[serde(deserialize_with = "results::nan_if_null")]
    pub min_s: f64,
    /// Slowest step.
    #[serde(deserialize_with = "results::nan_if_null")]
    pub max_s: f64,
    /// `batch / median_s`.
    #[serde(deserialize_with = "results::nan_if_null")]
    pub images_per_s: f64,
    /// `median_s` over the stored mode's (NaN without a stored row).
    #[serde(deserialize_with = "results::nan_if_null")]
    pub ratio_to_stored: f64,
    /// Highest live heap bytes during a step, above those live at its start.
    pub peak_bytes: usize,
    /// Convolution GFLOP/s of the step ([`step_conv_flops`] over the median).
    #[serde(deserialize_with = "results::nan_if_null")]
    pub conv_gflops: f64,
    /// Loss of the last timed step.
    #[serde(deserialize_with = "results::nan_if_null")]
    pub last_loss: f64,
    /// Every timed step, seconds, in order.
    pub times_s: Vec<f64>,
    /// Anchored mode: the anchors it ran with, planned on the benchmark's batch (`None` in
    /// other modes; left out of `run.json` then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchors: Option<AnchorRecord>,
}

pub use crate::util::median;

/// Use `n` threads for candle's CPU kernels (rayon's global pool and gemm) and the crate's own
/// kernels. Call it before any tensor work; rayon's global pool can be built only once per
/// process.
pub fn set_threads(n: usize) {
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    // Fails harmlessly when the global pool already exists.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
}

/// Use `n` threads for candle's elementwise ops (its barrier pool, sized once from
/// `CANDLE_NUM_THREADS` at its first use): call it before any tensor work.
pub fn set_elementwise_threads(n: usize) {
    std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
}

/// Run the benchmark: for every depth, the modes ([`BenchConfig::modes_to_run`]) interleaved
/// step by step. `progress` gets each row when its depth is done. Errors: a configuration
/// error, an engine error, or [`Error::NonFinite`] when a step's loss is not finite.
pub fn run(cfg: &BenchConfig, mut progress: impl FnMut(&BenchRow)) -> Result<Vec<BenchRow>> {
    cfg.validate()?;
    if let Some(n) = cfg.elementwise_threads.or(cfg.threads) {
        set_elementwise_threads(n);
    }
    if let Some(n) = cfg.threads {
        set_threads(n);
    }
    let dtype = cfg.dtype.dtype();
    let device = cfg.device.open()?;
    let modes = cfg.modes_to_run();
    let mut rows = Vec::new();
    for &depth in &cfg.depths {
        let net_cfg = cfg.net_config(depth);
        let mut trainees = modes
            .iter()
            .map(|m| {
                let m = m.clone();
                let sgd = Sgd::new(cfg.momentum, cfg.weight_decay);
                Ok(Trainee {
                    segment: cfg.segment,
                    ..Trainee::build(&net_cfg, m, sgd, dtype, &device, cfg.backend)?
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (x, labels) = batch_for(&net_cfg, cfg.batch, cfg.seed, dtype, &device)?;
        // Anchored: planned once, on this batch and the initial weights, before any step.
        let mut records: Vec<Option<AnchorRecord>> = vec![None; trainees.len()];
        for (k, trainee) in trainees.iter_mut().enumerate() {
            if trainee.mode.source == Source::Anchored {
                let rec = plan_for(&trainee.net, &cfg.anchors, &x, &labels)?;
                trainee.mode = rec.backward();
                records[k] = Some(rec);
            }
        }
        let mut times = vec![Vec::new(); trainees.len()];
        let mut peaks = vec![0usize; trainees.len()];
        let mut losses = vec![f64::NAN; trainees.len()];
        for round in 0..cfg.warmup + cfg.steps {
            for (k, trainee) in trainees.iter_mut().enumerate() {
                let t0 = Instant::now();
                let (loss, peak) = crate::measure::alloc::measure_peak(|| {
                    rayon::scope(|_| {
                        let loss = trainee.step(&x, &labels, cfg.lr)?;
                        // The update's kernels are queued on a GPU: wait for them (no-op on the CPU).
                        device.synchronize()?;
                        Ok::<_, Error>(loss)
                    })
                });
                let dt = t0.elapsed().as_secs_f64();
                let loss = loss?;
                if !loss.is_finite() {
                    return Err(Error::NonFinite {
                        context: format!(
                            "bench loss ({} {} depth {depth}, round {round}; try a smaller --lr)",
                            cfg.arch,
                            trainee.mode.name()
                        ),
                        count: 1,
                    });
                }
                losses[k] = loss;
                if round >= cfg.warmup {
                    times[k].push(dt);
                    peaks[k] = peaks[k].max(peak);
                }
            }
        }
        let stored_median = modes
            .iter()
            .position(|m| *m == BackwardPlan::STORED)
            .map(|k| median(&times[k]));
        let flops = step_conv_flops(&net_cfg, cfg.batch);
        for (k, mode) in modes.iter().enumerate() {
            let mode = mode.clone();
            let med = median(&times[k]);
            let row = BenchRow {
                arch: cfg.arch,
                mode: mode.clone(),
                depth,
                segment: (mode.source == Source::Checkpointed)
                    .then(|| crate::backprop::segment_length(cfg.segment, depth))
                    .transpose()?,
                layers: trainees[k].net.num_layers,
                median_s: med,
                min_s: times[k].iter().copied().fold(f64::INFINITY, f64::min),
                max_s: times[k].iter().copied().fold(0.0, f64::max),
                images_per_s: cfg.batch as f64 / med,
                ratio_to_stored: stored_median.map_or(f64::NAN, |s| med / s),
                peak_bytes: peaks[k],
                conv_gflops: flops / med / 1e9,
                last_loss: losses[k],
                times_s: times[k].clone(),
                anchors: records[k].clone(),
            };
            progress(&row);
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The header of [`csv_line`].
pub const CSV_HEADER: &str = "arch,pools,mode,depth,layers,width,batch,size,dtype,threads,steps,median_s,min_s,max_s,images_per_s,ratio_to_stored,peak_bytes,conv_gflops,segment,n_anchors,anchor_bytes";

/// One CSV line of `row` under `cfg`.
pub fn csv_line(cfg: &BenchConfig, row: &BenchRow) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{:.6},{:.6},{:.6},{:.3},{:.4},{},{:.3},{},{},{}",
        row.arch,
        // Commas would split the field: the pools are joined with `+` here.
        pools_name(&cfg.net.pools_for(cfg.arch)).replace(',', "+"),
        row.mode.name(),
        row.depth,
        row.layers,
        cfg.width,
        cfg.batch,
        cfg.size,
        cfg.dtype,
        cfg.threads
            .unwrap_or_else(candle_core::utils::get_num_threads),
        row.times_s.len(),
        row.median_s,
        row.min_s,
        row.max_s,
        row.images_per_s,
        row.ratio_to_stored,
        row.peak_bytes,
        row.conv_gflops,
        row.segment.map_or(String::new(), |k| k.to_string()),
        row.anchors
            .as_ref()
            .map_or(String::new(), |a| a.n_anchors.to_string()),
        row.anchors
            .as_ref()
            .map_or(String::new(), |a| a.bytes_held.to_string())
    )
}

/// The whole CSV file.
pub fn to_csv(cfg: &BenchConfig, rows: &[BenchRow]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for r in rows {
        s.push_str(&csv_line(cfg, r));
        s.push('\n');
    }
    s
}

/// The table printed by the `bench` binary (mode first: `scripts/bench_vs_pytorch.sh` reads the
/// `stored` lines' depth and median columns).
pub fn format_table(rows: &[BenchRow]) -> String {
    let mut s = format!(
        "{:<18} {:>3} {:>12} {:>10} {:>9} {:>14} {:>8}\n",
        "mode", "D", "median s/step", "images/s", "ratio", "peak bytes", "GFLOP/s"
    );
    for r in rows {
        let mode = match (r.segment, &r.anchors) {
            (Some(k), _) => format!("{}(k={k})", r.mode.name()),
            (None, Some(a)) => format!("{}(n={})", r.mode.name(), a.n_anchors),
            (None, None) => r.mode.name().to_string(),
        };
        s.push_str(&format!(
            "{:<18} {:>3} {:>12.4} {:>10.1} {:>9.3} {:>14} {:>8.2}\n",
            mode,
            r.depth,
            r.median_s,
            r.images_per_s,
            r.ratio_to_stored,
            r.peak_bytes,
            r.conv_gflops
        ));
    }
    s
}
