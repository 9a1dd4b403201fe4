//! The anchors experiment (`anchors`): how many anchors the planner needs, and the bytes they
//! hold per input pixel, against depth and against slope, for several SNR targets, at
//! initialisation and after a short training.
//!
//! Each network of the grid ((architecture, depth) at `slope`, and (architecture, slope) at
//! `slope_depth`) is built from `seed`, planned on the probe batch (the first `batch` samples
//! of the built-in synthetic training set, in file order, the batch anchored training plans
//! on) for every target ([`crate::measure::anchors::plan_anchors`]), then trained briefly
//! ([`crate::train::train`], stored activations, the recipe of [`AnchorsTrain`]) and planned
//! again on the trained weights with the same batch.
//!
//! Conventions: SNR in dB against the stored activation in the same dtype (`+inf` exact);
//! bytes per pixel = anchor bytes / (batch x input height x input width); a network whose
//! training diverged keeps its initial plans and has NaN in its trained rows.
//!
//! Resumable: each finished network is written atomically to `<points>/<key>.json`
//! (`figures` uses `<results>/anchors.points/<config key>/`), and a later run of the same
//! config reads it instead of computing it again.

use crate::backend::Backend;
use crate::device::{DeviceSpec, Precision};
use crate::error::{Error, Result};
use crate::measure::anchors::{lowest_predicted_db, plan_anchors, predict_plan};
use crate::nets::{Arch, Network};
use crate::results::text::num;
use crate::train::{train, TrainConfig, TrainOptions};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The short training of each network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnchorsTrain {
    /// Epochs over the training samples.
    pub epochs: usize,
    /// Synthetic training samples.
    pub samples: usize,
    /// Training batch.
    pub batch: usize,
    /// Peak learning rate of the one-cycle schedule (the other settings: `train`'s defaults).
    #[serde(with = "num")]
    pub lr: f64,
}

impl Default for AnchorsTrain {
    fn default() -> Self {
        AnchorsTrain {
            epochs: 3,
            samples: 1024,
            batch: 32,
            lr: 0.05,
        }
    }
}

/// Anchors needed vs depth and vs slope (`anchors`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnchorsConfig {
    /// Architectures.
    pub archs: Vec<Arch>,
    /// SNR targets (dB) of the planner.
    pub targets_db: Vec<f64>,
    /// Depths of the depth sweep (at `slope`).
    pub depths: Vec<usize>,
    /// Slope of the depth sweep.
    #[serde(with = "num")]
    pub slope: f64,
    /// Slopes of the slope sweep (at `slope_depth`).
    pub slopes: Vec<f64>,
    /// Depth of the slope sweep.
    pub slope_depth: usize,
    /// Width (channels after the stem).
    pub width: usize,
    /// Probe batch (planning).
    pub batch: usize,
    /// Input height = width.
    pub input_size: usize,
    /// Seed of the weights, the data and its order.
    pub seed: u64,
    /// Storage dtype.
    pub dtype: Precision,
    /// Device.
    pub device: DeviceSpec,
    /// Backend.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
    /// The short training.
    pub train: AnchorsTrain,
}

impl Default for AnchorsConfig {
    fn default() -> Self {
        AnchorsConfig {
            archs: vec![Arch::Layerwise, Arch::Hybrid],
            targets_db: vec![30.0, 60.0, 90.0],
            depths: vec![1, 2, 4, 8, 16, 32],
            slope: 0.2,
            slopes: vec![0.01, 0.05, 0.1, 0.2, 0.5, 1.0],
            slope_depth: 8,
            width: 8,
            batch: 16,
            input_size: 16,
            seed: 0,
            dtype: Precision::F32,
            device: DeviceSpec::Cpu,
            backend: Backend::default(),
            train: AnchorsTrain::default(),
        }
    }
}

impl AnchorsConfig {
    /// Check the values (and that every network builds).
    pub fn validate(&self) -> Result<()> {
        let bad = |c: &str, e: &str, g: String| Err(Error::config(format!("anchors: {c}"), e, g));
        self.device.open()?;
        if self.archs.is_empty() || self.targets_db.is_empty() {
            return bad(
                "archs and targets_db",
                "at least one value each",
                "none".into(),
            );
        }
        if self.depths.is_empty() && self.slopes.is_empty() {
            return bad("depths and slopes", "at least one value", "none".into());
        }
        if let Some(t) = self.targets_db.iter().find(|t| !t.is_finite()) {
            return bad("targets_db", "finite numbers of dB", t.to_string());
        }
        if self.batch == 0 || self.train.batch == 0 || self.train.epochs == 0 {
            let got = format!(
                "{}, {}, {}",
                self.batch, self.train.batch, self.train.epochs
            );
            return bad("batch, train.batch, train.epochs", ">= 1 each", got);
        }
        if self.batch > self.train.samples || self.train.batch > self.train.samples {
            let got = format!("{} and {}", self.batch, self.train.batch);
            let e = "batches of at most train.samples";
            return bad("batch and train.batch", e, got);
        }
        if !(self.train.lr > 0.0 && self.train.lr.is_finite()) {
            return bad("train.lr", "a finite value > 0", self.train.lr.to_string());
        }
        for n in self.nets() {
            let tc = self.train_config(&n);
            tc.validate()?;
            tc.check_data_channels()?;
        }
        Ok(())
    }

    /// The networks of the grid, each once: (arch, depth, slope), the depth sweep first.
    pub fn nets(&self) -> Vec<AnchorsNet> {
        let mut out: Vec<AnchorsNet> = Vec::new();
        for &arch in &self.archs {
            let sweep = self.depths.iter().map(|&d| (d, self.slope));
            let slopes = self.slopes.iter().map(|&s| (self.slope_depth, s));
            for (depth, slope) in sweep.chain(slopes) {
                let n = AnchorsNet { arch, depth, slope };
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        out
    }

    /// The data spec of the training and the probe batch.
    pub fn data(&self) -> String {
        format!(
            "synthetic:train={},test={},size={},seed={}",
            self.train.samples,
            self.batch.max(16),
            self.input_size,
            self.seed
        )
    }

    /// The `train` configuration of network `n`.
    pub fn train_config(&self, n: &AnchorsNet) -> TrainConfig {
        TrainConfig {
            arch: n.arch,
            depth: n.depth,
            width: self.width,
            slope: n.slope,
            epochs: self.train.epochs,
            batch: self.train.batch,
            lr: self.train.lr,
            data: self.data(),
            data_seed: self.seed,
            seed: self.seed,
            dtype: self.dtype,
            device: self.device,
            backend: self.backend,
            eval_samples: self.batch.max(16),
            eval_batch: self.batch.max(16),
            ..TrainConfig::default()
        }
    }
}

/// One network of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnchorsNet {
    /// Architecture.
    pub arch: Arch,
    /// Depth (units or blocks).
    pub depth: usize,
    /// Slope.
    #[serde(with = "num")]
    pub slope: f64,
}

impl AnchorsNet {
    /// A stable, file-name-safe key.
    pub fn key(&self) -> String {
        format!("{}-d{}-n{}", self.arch, self.depth, self.slope)
    }
}

/// One plan: a network, its weights (`init` or `trained`), a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnchorsPoint {
    /// The network.
    #[serde(flatten)]
    pub net: AnchorsNet,
    /// `init` or `trained`.
    pub weights: String,
    /// The planner's target (dB).
    #[serde(with = "num")]
    pub target_db: f64,
    /// Anchors placed (0 when the training diverged: the floats are then NaN).
    pub anchors: usize,
    /// Their names, top down, joined by `;`.
    pub anchor_names: String,
    /// Rebuilt inputs of the network (the anchorable layers).
    pub rebuilt: usize,
    /// Bytes the anchors hold.
    pub bytes_held: usize,
    /// Bytes per input pixel (module docs).
    #[serde(with = "num")]
    pub bytes_per_pixel: f64,
    /// Lowest measured SNR (dB) of the rebuilt inputs under the plan.
    #[serde(with = "num")]
    pub lowest_snr_db: f64,
    /// The depth law's lowest prediction (dB) for the same anchors.
    #[serde(with = "num")]
    pub lowest_predicted_db: f64,
    /// Mean training loss of the last epoch (NaN for `init`; NaN when training diverged).
    #[serde(with = "num")]
    pub train_loss: f64,
}

/// Result of the anchors experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnchorsData {
    /// The probe batch, as text.
    pub probe: String,
    /// One row per network, weights and target, in grid order.
    pub points: Vec<AnchorsPoint>,
}

/// The plans of `net` for every target of `c` on the probe batch.
fn plans(
    c: &AnchorsConfig,
    n: &AnchorsNet,
    net: &Network,
    probe: &(candle_core::Tensor, candle_core::Tensor),
    weights: &str,
    train_loss: f64,
) -> Result<Vec<AnchorsPoint>> {
    let pixels = (c.batch * c.input_size * c.input_size) as f64;
    let mut out = Vec::new();
    for &t in &c.targets_db {
        let plan = plan_anchors(net, &probe.0, &probe.1, t)?;
        let rows = predict_plan(net, &probe.0, &probe.1, &plan, c.seed)?;
        let held = plan.bytes_held();
        out.push(AnchorsPoint {
            net: *n,
            weights: weights.into(),
            target_db: t,
            anchors: plan.anchors.len(),
            anchor_names: plan.anchors.join(";"),
            rebuilt: rows.len(),
            bytes_held: held,
            bytes_per_pixel: held as f64 / pixels,
            lowest_snr_db: plan.lowest_snr_db(),
            lowest_predicted_db: lowest_predicted_db(&rows),
            train_loss,
        });
    }
    Ok(out)
}

/// Every row of network `n`: planned at initialisation, trained, planned again.
fn run_net(
    c: &AnchorsConfig,
    n: &AnchorsNet,
    data: &crate::data::DataSplit,
) -> Result<Vec<AnchorsPoint>> {
    let tc = c.train_config(n);
    let device = c.device.open()?;
    let (x, y) = data
        .train
        .batch_iter(c.batch, None, None)?
        .next()
        .ok_or_else(|| Error::internal("anchors probe", "no batch"))??;
    let probe = (x.to_device(&device)?, y.to_device(&device)?);
    let init = Network::build_with(
        &tc.net_config_for(data)?,
        c.dtype.dtype(),
        &device,
        c.backend,
    )?;
    let mut out = plans(c, n, &init, &probe, "init", f64::NAN)?;
    match train(&tc, data, &TrainOptions::default()) {
        Ok((trained, outcome)) => {
            out.extend(plans(
                c,
                n,
                &trained,
                &probe,
                "trained",
                outcome.train_loss,
            )?);
        }
        Err(Error::Diverged { .. }) => {
            for p in out.clone() {
                out.push(AnchorsPoint {
                    weights: "trained".into(),
                    anchors: 0,
                    anchor_names: String::new(),
                    bytes_held: 0,
                    bytes_per_pixel: f64::NAN,
                    lowest_snr_db: f64::NAN,
                    lowest_predicted_db: f64::NAN,
                    train_loss: f64::NAN,
                    ..p
                });
            }
        }
        Err(e) => return Err(e),
    }
    Ok(out)
}

/// Run the experiment (module docs), networks in parallel on the current rayon pool; with
/// `points`, finished networks are read from and written to that directory. One line per
/// network on stderr as it finishes.
pub fn run_anchors(c: &AnchorsConfig, points: Option<&Path>) -> Result<AnchorsData> {
    c.validate()?;
    let data = crate::data::parse_data_spec(&c.data(), c.seed)?.load()?;
    if let Some(dir) = points {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let nets = c.nets();
    let total = nets.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let per_net: Vec<Vec<AnchorsPoint>> = nets
        .par_iter()
        .map(|n| -> Result<Vec<AnchorsPoint>> {
            let file = points.map(|d| d.join(format!("{}.json", n.key())));
            let start = std::time::Instant::now();
            let (rows, read) = super::cached_point(file.as_deref(), || run_net(c, n, &data))?;
            let k = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if !read {
                eprintln!(
                    "anchors: {} depth {} slope {} planned and trained ({k}/{total}, {:.1} s)",
                    n.arch,
                    n.depth,
                    n.slope,
                    start.elapsed().as_secs_f64()
                );
            }
            Ok(rows)
        })
        .collect::<Result<_>>()?;
    Ok(AnchorsData {
        probe: format!(
            "the first {} training samples of `{}` (file order)",
            c.batch,
            c.data()
        ),
        points: per_net.into_iter().flatten().collect(),
    })
}
