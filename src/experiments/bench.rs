//! Training-step benchmark of a RevNet-style stack (issue 7): time and peak memory of one step
//! (forward, backward, SGD update) with stored activations, with reconstructed activations and
//! the per-layer backward, and with reconstructed activations and Gomez et al.'s Algorithm 1.
//!
//! Workload ([`StackSpec`]): `depth` reversible blocks ([`AdditiveCoupling`]) on `channels`
//! channels (two halves), F = G = `[conv3x3, BN (plain, batch statistics), ReLU, conv3x3]`
//! (no batch norm at the end), [`InnerRebuild::Recompute`], no stem and no head; the loss is
//! `sum(y * r)` for a fixed random tensor `r` (so the gradient of the output is `r`). Weights
//! are Kaiming-normal scaled by `init_scale`, drawn from the seed: the three modes start from
//! the same weights (each mode trains its own copy, so they drift apart by their updates; this
//! changes no timing).
//!
//! Timing: the modes run interleaved, one step each in turn, after `warmup` untimed rounds, so
//! that a machine shared with other jobs slows them alike; the table gives the median of
//! `steps` steps and its ratio to the stored mode's median. Peak bytes are the highest live heap
//! bytes during a step above those live at its start (weights, input, probe), counted by
//! [`crate::measure::alloc`] (zero unless the binary installs the counting allocator).

use crate::device::parse_dtype;
use crate::error::{Error, Result};
use crate::layers::{
    AdditiveCoupling, BackCtx, BackwardMode, BatchNormConfig, Chain, Conv2d, InnerRebuild,
    InvBatchNorm, Layer, ParamStore, Relu, Role, Tape,
};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;

/// Where the backward takes activations from, and how a block's backward runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BenchMode {
    /// Every activation stored by the forward.
    Stored,
    /// Reconstructed: block inverse, then the per-layer backward with F/G recomputed
    /// ([`BackwardMode::PerLayer`]).
    Reconstructed,
    /// Reconstructed with Gomez et al.'s Algorithm 1 ([`BackwardMode::Algorithm1`]).
    Algorithm1,
}

impl BenchMode {
    /// The three modes, stored first (the reference of the ratios).
    pub const ALL: [BenchMode; 3] = [
        BenchMode::Stored,
        BenchMode::Reconstructed,
        BenchMode::Algorithm1,
    ];

    /// Name used in tables and result files.
    pub fn as_str(self) -> &'static str {
        match self {
            BenchMode::Stored => "stored",
            BenchMode::Reconstructed => "reconstructed",
            BenchMode::Algorithm1 => "algorithm1",
        }
    }
}

/// Shape of the benchmarked stack and its input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackSpec {
    /// Reversible blocks.
    pub depth: usize,
    /// Channels (both halves).
    pub channels: usize,
    /// Batch size.
    pub batch: usize,
    /// Input height = width.
    pub size: usize,
    /// Convolution init relative to Kaiming normal.
    pub init_scale: f64,
    /// Seed of the weights, input and probe.
    pub seed: u64,
}

impl StackSpec {
    /// The issue-7 workload at `depth`: 32 channels, batch 32, 32x32 inputs, Kaiming init.
    pub fn new(depth: usize) -> Self {
        StackSpec {
            depth,
            channels: 32,
            batch: 32,
            size: 32,
            init_scale: 1.0,
            seed: 0,
        }
    }

    /// Convolution multiply-adds of one forward through the stack (4 convolutions per block).
    pub fn forward_macs(&self) -> f64 {
        let half = (self.channels / 2) as f64;
        4.0 * self.depth as f64
            * self.batch as f64
            * (self.size * self.size) as f64
            * half
            * half
            * 9.0
    }
}

/// A stack of reversible blocks built for one [`BenchMode`].
pub struct RevStack {
    /// The shape.
    pub spec: StackSpec,
    /// The mode the stack's backward runs in.
    pub mode: BenchMode,
    /// The parameters.
    pub params: ParamStore,
    /// The blocks, bottom to top.
    pub chain: Chain,
}

/// What one step computed.
pub struct StepResult {
    /// `sum(y * r)`.
    pub loss: f64,
    /// Parameter gradients by name.
    pub grads: HashMap<String, Tensor>,
}

impl RevStack {
    /// Build the stack of `spec` for `mode` in `dtype` on `device`.
    pub fn build(
        spec: &StackSpec,
        mode: BenchMode,
        dtype: DType,
        device: &Device,
    ) -> Result<RevStack> {
        if spec.depth == 0
            || spec.batch == 0
            || spec.size == 0
            || spec.channels == 0
            || spec.channels % 2 != 0
        {
            return Err(Error::Config(format!("bench stack needs depth, batch, size >= 1 and an even number of channels (got {spec:?})")));
        }
        let store = ParamStore::new(spec.seed, dtype, device);
        let bn = BatchNormConfig {
            reparam: false,
            ..BatchNormConfig::default()
        };
        let half = spec.channels / 2;
        let backward = if mode == BenchMode::Algorithm1 {
            BackwardMode::Algorithm1
        } else {
            BackwardMode::PerLayer
        };
        let mut blocks: Vec<Box<dyn Layer>> = Vec::new();
        for b in 0..spec.depth {
            let p = format!("b{b}");
            let chain = |side: &str| -> Result<Chain> {
                let q = format!("{p}.{side}");
                let layers: Vec<Box<dyn Layer>> = vec![
                    Box::new(Conv2d::new(
                        &store,
                        &format!("{q}.conv1"),
                        half,
                        half,
                        3,
                        1,
                        false,
                        spec.init_scale,
                    )?),
                    Box::new(InvBatchNorm::new(&store, &format!("{q}.bn1"), half, bn)?),
                    Box::new(Relu::new(&format!("{q}.relu"))),
                    Box::new(Conv2d::new(
                        &store,
                        &format!("{q}.conv2"),
                        half,
                        half,
                        3,
                        1,
                        false,
                        spec.init_scale,
                    )?),
                ];
                Chain::new(q, layers, InnerRebuild::Recompute, Some(Role::Hidden))
            };
            let block = AdditiveCoupling::new(
                &p,
                spec.channels,
                chain("F")?,
                chain("G")?,
                Role::BlockInput,
            )?
            .with_backward(backward);
            blocks.push(Box::new(block));
        }
        let chain = Chain::new("stack", blocks, InnerRebuild::LayerwiseInverse, None)?;
        Ok(RevStack {
            spec: spec.clone(),
            mode,
            params: store,
            chain,
        })
    }

    /// The input batch and the probe `r` of the loss `sum(y * r)`, unit Gaussian, from the seed.
    pub fn batch(&self) -> Result<(Tensor, Tensor)> {
        let s = &self.spec;
        let shape = [s.batch, s.channels, s.size, s.size];
        let mut rng = crate::util::rng_for(s.seed, "bench-input");
        let x = crate::util::randn(
            &mut rng,
            &shape,
            0.0,
            1.0,
            self.params.dtype,
            &self.params.device,
        )?;
        let mut rng = crate::util::rng_for(s.seed, "bench-probe");
        let r = crate::util::randn(
            &mut rng,
            &shape,
            0.0,
            1.0,
            self.params.dtype,
            &self.params.device,
        )?;
        Ok((x, r))
    }

    /// One training step: forward (recording the batch statistics), loss `sum(y * r)`, the one
    /// backward in this stack's mode, and an SGD update `w -= lr g` when `lr` is given.
    pub fn step(&self, x: &Tensor, probe: &Tensor, lr: Option<f64>) -> Result<StepResult> {
        let stored = self.mode == BenchMode::Stored;
        let mut tape = Tape::new(stored);
        let y = self.chain.forward_tape(x, &mut tape, true)?;
        let loss = y
            .mul(probe)?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        let mut ctx = BackCtx {
            stored,
            tape,
            grads: Some(HashMap::new()),
            trace: None,
        };
        self.chain.backward(&y, Some(probe), &mut ctx, None)?;
        drop(y);
        let grads = ctx.grads.take().unwrap_or_default();
        if let Some(lr) = lr {
            for p in self.chain.params() {
                let g = grads
                    .get(&p.name)
                    .ok_or_else(|| Error::Config(format!("no gradient for {}", p.name)))?;
                let w = p.var.as_tensor();
                p.var.set(&(w - (g * lr)?)?)?;
            }
        }
        Ok(StepResult { loss, grads })
    }
}

/// Options of [`run`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BenchConfig {
    /// Depths (reversible blocks).
    pub depths: Vec<usize>,
    /// Modes (the ratio column needs `stored`).
    pub modes: Vec<BenchMode>,
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
    /// Channels.
    pub channels: usize,
    /// Batch size.
    pub batch: usize,
    /// Input height = width.
    pub size: usize,
    /// Storage dtype.
    pub dtype: String,
    /// SGD learning rate.
    pub lr: f64,
    /// Convolution init relative to Kaiming normal.
    pub init_scale: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            depths: vec![4, 8, 16],
            modes: BenchMode::ALL.to_vec(),
            steps: 5,
            warmup: 1,
            threads: Some(2),
            elementwise_threads: Some(1),
            channels: 32,
            batch: 32,
            size: 32,
            dtype: "f32".into(),
            lr: 1e-3,
            init_scale: 1.0,
            seed: 0,
        }
    }
}

impl BenchConfig {
    /// Check the options.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.depths.is_empty() || self.depths.contains(&0) {
            return bad(format!(
                "depths must be a non-empty list of values >= 1 (got {:?})",
                self.depths
            ));
        }
        if self.modes.is_empty() {
            return bad("modes must not be empty".into());
        }
        if self.steps == 0 {
            return bad("steps must be >= 1".into());
        }
        if self.threads == Some(0) || self.elementwise_threads == Some(0) {
            return bad("threads and elementwise_threads must be >= 1".into());
        }
        if self.channels == 0 || self.channels % 2 != 0 || self.batch == 0 || self.size == 0 {
            return bad(format!(
                "channels must be even and >= 2, batch and size >= 1 (got {}, {}, {})",
                self.channels, self.batch, self.size
            ));
        }
        if !(self.lr.is_finite() && self.lr >= 0.0)
            || !(self.init_scale.is_finite() && self.init_scale > 0.0)
        {
            return bad(format!(
                "lr must be >= 0 and init_scale > 0 (got {} and {})",
                self.lr, self.init_scale
            ));
        }
        parse_dtype(&self.dtype)?;
        Ok(())
    }

    /// The stack of depth `depth`.
    pub fn spec(&self, depth: usize) -> StackSpec {
        StackSpec {
            depth,
            channels: self.channels,
            batch: self.batch,
            size: self.size,
            init_scale: self.init_scale,
            seed: self.seed,
        }
    }
}

/// One row of the table: a mode at a depth.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRow {
    /// Mode.
    pub mode: BenchMode,
    /// Depth.
    pub depth: usize,
    /// Median seconds per step.
    pub median_s: f64,
    /// Fastest step.
    pub min_s: f64,
    /// Slowest step.
    pub max_s: f64,
    /// `batch / median_s`.
    pub images_per_s: f64,
    /// `median_s` over the stored mode's (NaN without a stored row).
    pub ratio_to_stored: f64,
    /// Highest live heap bytes during a step, above those live at its start.
    pub peak_bytes: usize,
    /// Convolution GFLOP/s of the step counting 3 forward-equivalents (forward, dX, dW).
    pub conv_gflops: f64,
    /// Every timed step, seconds, in order.
    pub times_s: Vec<f64>,
}

/// Median of `v` (mean of the middle two for even lengths; NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => s[n / 2],
        _ => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

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

/// Run the benchmark: for every depth, the modes interleaved step by step. `progress` gets each
/// row when its depth is done.
pub fn run(cfg: &BenchConfig, mut progress: impl FnMut(&BenchRow)) -> Result<Vec<BenchRow>> {
    cfg.validate()?;
    if let Some(n) = cfg.elementwise_threads.or(cfg.threads) {
        set_elementwise_threads(n);
    }
    if let Some(n) = cfg.threads {
        set_threads(n);
    }
    let dtype = parse_dtype(&cfg.dtype)?;
    let device = Device::Cpu;
    let mut rows = Vec::new();
    for &depth in &cfg.depths {
        let spec = cfg.spec(depth);
        let stacks = cfg
            .modes
            .iter()
            .map(|&m| RevStack::build(&spec, m, dtype, &device))
            .collect::<Result<Vec<_>>>()?;
        let (x, probe) = stacks[0].batch()?;
        let mut times = vec![Vec::new(); stacks.len()];
        let mut peaks = vec![0usize; stacks.len()];
        for round in 0..cfg.warmup + cfg.steps {
            for (k, stack) in stacks.iter().enumerate() {
                let t0 = Instant::now();
                let (res, peak) = crate::measure::alloc::measure_peak(|| {
                    rayon::scope(|_| stack.step(&x, &probe, Some(cfg.lr)))
                });
                let dt = t0.elapsed().as_secs_f64();
                let res = res?;
                if !res.loss.is_finite() {
                    return Err(Error::NonFinite {
                        context: format!("bench loss ({} depth {depth})", stack.mode.as_str()),
                        count: 1,
                    });
                }
                if round >= cfg.warmup {
                    times[k].push(dt);
                    peaks[k] = peaks[k].max(peak);
                }
            }
        }
        let stored_median = cfg
            .modes
            .iter()
            .position(|m| *m == BenchMode::Stored)
            .map(|k| median(&times[k]));
        let flops = 2.0 * 3.0 * spec.forward_macs();
        for (k, &mode) in cfg.modes.iter().enumerate() {
            let med = median(&times[k]);
            let row = BenchRow {
                mode,
                depth,
                median_s: med,
                min_s: times[k].iter().copied().fold(f64::INFINITY, f64::min),
                max_s: times[k].iter().copied().fold(0.0, f64::max),
                images_per_s: cfg.batch as f64 / med,
                ratio_to_stored: stored_median.map_or(f64::NAN, |s| med / s),
                peak_bytes: peaks[k],
                conv_gflops: flops / med / 1e9,
                times_s: times[k].clone(),
            };
            progress(&row);
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The header of [`csv_line`].
pub const CSV_HEADER: &str = "mode,depth,channels,batch,size,dtype,threads,steps,median_s,min_s,max_s,images_per_s,ratio_to_stored,peak_bytes,conv_gflops";

/// One CSV line of `row` under `cfg`.
pub fn csv_line(cfg: &BenchConfig, row: &BenchRow) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{:.6},{:.6},{:.6},{:.3},{:.4},{},{:.3}",
        row.mode.as_str(),
        row.depth,
        cfg.channels,
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
        row.conv_gflops
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

/// The table printed by the `bench` binary.
pub fn format_table(rows: &[BenchRow]) -> String {
    let mut s = format!(
        "{:<14} {:>3} {:>12} {:>10} {:>9} {:>14} {:>8}\n",
        "mode", "D", "median s/step", "images/s", "ratio", "peak bytes", "GFLOP/s"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<14} {:>3} {:>12.4} {:>10.1} {:>9.3} {:>14} {:>8.2}\n",
            r.mode.as_str(),
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
