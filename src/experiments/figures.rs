//! The figures of the papers (DESIGN.md 5), each regenerated from cached experiment results.
//!
//! Every figure id (`fig05`, `fig06`, `fig10`, `fig11`, `fig12`, `fig13`, `fig14`, `fig15`,
//! `revnet-fig4`, `table1`, `precision`, `bn-eps`, `memory-scaling`, `tradeoff`, `lipschitz`)
//! has
//! - a render function `fn(&Results, &Path) -> Result<()>` (e.g. [`fig10`]) that reads its
//!   results and writes `<out>/<id>.png`, `<out>/<id>.svg` and `<out>/<id>.csv` (`table1` also
//!   `<out>/table1.md`); a missing or malformed result file is an error naming the file;
//! - a data source ([`DataSource`]): an experiment run here from `experiments/<id>.toml`
//!   ([`ExperimentConfig`], cached as `<results>/<id>.json`, see [`ensure_results`]), or the
//!   output of the `train` binary (accuracy sweep for `fig12`/`fig15`, angle experiment for
//!   `revnet-fig4`), which is only read: those runs take minutes and are started explicitly.
//!   The two memory figures have built-in configs used when their file does not exist
//!   ([`load_config`]): `table1` the paper's configurations ([`MemoryConfig::paper`], the
//!   `memory --preset paper` run: under a minute in release, once), `memory-scaling` the default
//!   grid ([`MemoryConfig::default`], depths 2-32: about 5 s in release, once).
//!
//! Provenance: each figure's caption line and the first line of its CSV (a `# ` comment) say
//! which config (path and key), seed, dtype, initialisation and git revision produced the
//! results. The key is a hash of the parsed config; cached results are reused while the key
//! matches and recomputed when it changes (or on request).
//!
//! Conventions of the SNR figures: SNR in dB against the stored activation in the same dtype
//! (the paper's reference); theory (alpha formulas, the depth law of eq. 19) as lines,
//! measurements as markers. With pure rounding the first reconstructions are often exact
//! (`+inf`, left out of the plots), so the rounding-only depth-law prediction is anchored at the
//! first finite measurement and then adds each layer's `10 log10(alpha)`
//! ([`anchored_prediction`]); with injected output noise it is anchored at the output SNR
//! ([`crate::measure::trace`]).

use crate::backend::Backend;
use crate::device::{device_name, f64_device, has_f64, parse_device, parse_dtype};
use crate::error::{Error, Result};
use crate::experiments::memory::{Axis as MemAxis, MemoryConfig};
use crate::experiments::snr_sweep::{fmt_f, parse_f, run_point, Point, SweepConfig};
use crate::experiments::tradeoff::{TradeoffConfig, TradeoffData, TradeoffPoint};
use crate::experiments::training::mean_std;
use crate::layers::{BatchNormConfig, InvBatchNorm, InvLeakyReLU, ParamStore, Role};
use crate::measure::alpha::{
    alpha_general_bn, alpha_general_bn_printed, alpha_leaky_relu, alpha_toy_bn, empirical_alpha,
    BnChannels,
};
use crate::measure::trace::{SnrTrace, TracePoint};
use crate::nets::{Arch, Source};
use crate::plot::{render, render_table, Chart, Figure, Series, Span, Style};
use crate::util::write_atomic;
use candle_core::{DType, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

// =============================================================================================
// registry

/// Every figure id, in the order the figures binary produces them.
pub const FIGURE_IDS: [&str; 15] = [
    "fig05",
    "fig06",
    "fig10",
    "fig11",
    "fig12",
    "fig13",
    "fig14",
    "fig15",
    "revnet-fig4",
    "table1",
    "precision",
    "bn-eps",
    "memory-scaling",
    "tradeoff",
    "lipschitz",
];

/// Where a figure's data come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSource {
    /// An experiment run by [`run_experiment`] from `experiments/<id>.toml` (`table1`,
    /// `memory-scaling`: a built-in config unless that file exists), cached as
    /// `<results>/<id>.json`.
    Experiment,
    /// The accuracy sweep of the `train` binary (`accuracy.csv`, `run.json` in
    /// [`Results::accuracy_dir`]).
    Accuracy,
    /// The angle experiment of the `train` binary (`angles.csv`, `run.json` in
    /// [`Results::angles_dir`]).
    Angles,
}

/// One figure: id, what it shows, its data and its render function.
#[derive(Clone, Copy)]
pub struct FigureSpec {
    /// Figure id (file stem).
    pub id: &'static str,
    /// What it shows (and the paper figure it reproduces).
    pub what: &'static str,
    /// Where its data come from.
    pub source: DataSource,
    /// Render from results into an output directory.
    pub render: fn(&Results, &Path) -> Result<()>,
}

/// The figures in [`FIGURE_IDS`] order.
pub fn specs() -> Vec<FigureSpec> {
    use DataSource::*;
    let s = |id, what, source, render| FigureSpec {
        id,
        what,
        source,
        render,
    };
    vec![
        s(
            "fig05",
            "alpha vs rho, toy batch norm: theory and empirical (Hascoet Fig. 5)",
            Experiment,
            fig05 as fn(&Results, &Path) -> Result<()>,
        ),
        s(
            "fig06",
            "alpha vs slope n, leaky ReLU: theory and empirical (Hascoet Fig. 6)",
            Experiment,
            fig06,
        ),
        s(
            "fig10",
            "SNR per layer through a layer-wise network (Hascoet Fig. 10)",
            Experiment,
            fig10,
        ),
        s(
            "fig11",
            "lowest-layer SNR vs depth and vs slope, layer-wise (Hascoet Fig. 11)",
            Experiment,
            fig11,
        ),
        s(
            "fig12",
            "accuracy with and without reconstruction, layer-wise (Hascoet Fig. 12)",
            Accuracy,
            fig12,
        ),
        s(
            "fig13",
            "SNR per layer through a hybrid network (Hascoet Fig. 13)",
            Experiment,
            fig13,
        ),
        s(
            "fig14",
            "lowest block-input SNR vs depth and vs slope, hybrid (Hascoet Fig. 14)",
            Experiment,
            fig14,
        ),
        s(
            "fig15",
            "accuracy with and without reconstruction, hybrid (Hascoet Fig. 15)",
            Accuracy,
            fig15,
        ),
        s(
            "revnet-fig4",
            "gradient angle, loss and error through training (Gomez Fig. 4)",
            Angles,
            revnet_fig4,
        ),
        s(
            "table1",
            "memory per architecture: paper, analytic model, measured (Hascoet Table 1)",
            Experiment,
            table1,
        ),
        s(
            "precision",
            "lowest SNR vs depth for f16, bf16, f32, f64 (beyond the papers)",
            Experiment,
            precision,
        ),
        s(
            "bn-eps",
            "alpha and lowest SNR vs the eps_i reparameterisation (beyond the papers)",
            Experiment,
            bn_eps,
        ),
        s(
            "memory-scaling",
            "peak training-step memory vs depth, batch and resolution, stored vs reconstructed (beyond the papers)",
            Experiment,
            memory_scaling,
        ),
        s(
            "tradeoff",
            "peak bytes/pixel vs step time: stored, checkpointed (k), reconstructed, per arch and depth (beyond the papers)",
            Experiment,
            tradeoff,
        ),
        s(
            "lipschitz",
            "forward and inverse local Lipschitz constants per layer beside alpha (Behrmann et al. 2021; beyond the papers)",
            Experiment,
            crate::experiments::lipschitz::lipschitz,
        ),
    ]
}

/// The spec of `id`; an unknown id is an error listing the valid ones.
pub fn spec(id: &str) -> Result<FigureSpec> {
    specs()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Error::Unknown {
            kind: "figure id",
            got: id.into(),
            expected: FIGURE_IDS.join(", "),
        })
}

/// The experiment kind (`experiment = "..."` in its config) that produces figure `id`.
pub fn experiment_kind(id: &str) -> Option<&'static str> {
    match id {
        "fig05" | "fig06" => Some("alpha"),
        "fig10" | "fig13" | "lipschitz" => Some("trace"),
        "fig11" | "fig14" => Some("scaling"),
        "precision" => Some("precision"),
        "bn-eps" => Some("bn-eps"),
        "table1" | "memory-scaling" => Some("memory"),
        "tradeoff" => Some("tradeoff"),
        _ => None,
    }
}

// =============================================================================================
// configs

/// Settings shared by the SNR experiments: the networks (besides architecture, depth, slope)
/// and the input batch (unit Gaussian from the seed, as `snr-sweep`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetSettings {
    /// Channels after the stem.
    pub width: usize,
    /// Batch size.
    pub batch: usize,
    /// Input height = width.
    pub input_size: usize,
    /// Convolution init scale relative to Kaiming normal.
    pub init_scale: f64,
    /// Batch-norm gamma init spread (`gamma = exp(spread N(0,1))`).
    pub gamma_spread: f64,
    /// Batch-norm `eps_i`.
    pub eps_i: f64,
    /// Classes of the head.
    pub classes: usize,
    /// Device (`cpu`, `cuda[:N]`, `metal[:N]`).
    pub device: String,
    /// Backend computing the layers (`kernels`, the default, or `candle`); left out of the
    /// serialised config (and so of its key) when default.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
}

impl Default for NetSettings {
    fn default() -> Self {
        NetSettings {
            width: 8,
            batch: 8,
            input_size: 16,
            init_scale: 0.5,
            gamma_spread: 0.0,
            eps_i: 0.0,
            classes: 10,
            device: "cpu".into(),
            backend: Backend::default(),
        }
    }
}

impl NetSettings {
    /// The `snr-sweep` config carrying these settings (its grid fields are not used).
    pub fn sweep_config(&self, noise_std: f64, depth_law: bool) -> SweepConfig {
        SweepConfig {
            widths: vec![self.width],
            batch: self.batch,
            input_size: self.input_size,
            device: self.device.clone(),
            noise_std,
            init_scale: self.init_scale,
            gamma_spread: self.gamma_spread,
            classes: self.classes,
            depth_law,
            backend: self.backend,
            ..SweepConfig::default()
        }
    }

    /// A point of the grid (index is only a label).
    #[allow(clippy::too_many_arguments)]
    pub fn point(
        &self,
        index: usize,
        arch: Arch,
        depth: usize,
        slope: f64,
        eps_i: f64,
        dtype: &str,
        seed: u64,
    ) -> Point {
        Point {
            index,
            arch,
            depth,
            slope,
            eps_i,
            width: self.width,
            dtype: dtype.trim().to_ascii_lowercase(),
            seed,
        }
    }

    /// The initialisation and input, for captions.
    pub fn describe(&self) -> String {
        format!(
            "width {}, batch {} of {}x{} unit-Gaussian inputs, conv init {} x Kaiming, BN gamma {}",
            self.width,
            self.batch,
            self.input_size,
            self.input_size,
            self.init_scale,
            if self.gamma_spread > 0.0 {
                format!("exp({} N(0,1))", self.gamma_spread)
            } else {
                "1".into()
            }
        )
    }
}

/// The layer of an alpha experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlphaLayer {
    /// Toy batch norm: 2 channels, `beta = 0`, `gamma = [1, rho]` (Fig. 5).
    ToyBn,
    /// Leaky ReLU of slope `n` (Fig. 6).
    LeakyRelu,
}

/// Empirical alpha of one layer over a log-spaced parameter range, beside its theory
/// (`fig05`, `fig06`): unit Gaussian input, white output noise (paper: std `1e-5`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlphaConfig {
    /// The layer.
    pub layer: AlphaLayer,
    /// Smallest parameter value (`rho` or `n`), > 0.
    pub from: f64,
    /// Largest parameter value.
    pub to: f64,
    /// Measured points (log-spaced, both ends included).
    pub points: usize,
    /// Points of the theory line.
    pub theory_points: usize,
    /// Samples of the Gaussian input.
    pub samples: usize,
    /// Std of the white noise added to the output.
    pub noise_std: f64,
    /// Seed of input and noise.
    pub seed: u64,
    /// Dtypes of layer, input and output (one marker series each).
    pub dtypes: Vec<String>,
    /// Backend computing the layer (`kernels`, the default, or `candle`); left out of the
    /// serialised config (and so of its key) when default.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
    /// Device (`cpu`, `cuda[:N]`, `metal[:N]`); the f64 points run on the CPU when the device
    /// has no f64. Left out of the serialised config (and so of its key) when `cpu`.
    #[serde(skip_serializing_if = "is_cpu")]
    pub device: String,
}

fn is_cpu(device: &String) -> bool {
    device == "cpu"
}

impl Default for AlphaConfig {
    fn default() -> Self {
        AlphaConfig {
            layer: AlphaLayer::ToyBn,
            from: 1e-3,
            to: 1e3,
            points: 25,
            theory_points: 200,
            samples: 100_000,
            noise_std: 1e-5,
            seed: 0,
            dtypes: vec!["f64".into(), "f32".into()],
            backend: Backend::default(),
            device: "cpu".into(),
        }
    }
}

/// Per-layer SNR trace of one network (`fig10`, `fig13`): once with pure rounding and, when
/// `noise_std > 0`, once with white noise of that std added to the head's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceConfig {
    /// Architecture.
    pub arch: Arch,
    /// Depth (units or blocks).
    pub depth: usize,
    /// Leaky-ReLU slope.
    pub slope: f64,
    /// Seed of weights and input.
    pub seed: u64,
    /// Storage dtype.
    pub dtype: String,
    /// Std of the output noise of the second trace (0: rounding only).
    pub noise_std: f64,
    /// Estimate each top-level layer's forward and inverse Lipschitz constants in the
    /// rounding-only trace ([`crate::measure::lipschitz`]; `lip_forward`, `lip_inverse`, NaN
    /// when off). Left out of the serialised config (and its key) when off.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lipschitz: bool,
    /// Network and input settings.
    pub net: NetSettings,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            arch: Arch::Layerwise,
            depth: 8,
            slope: 0.2,
            seed: 0,
            dtype: "f32".into(),
            noise_std: 1e-3,
            lipschitz: false,
            net: NetSettings::default(),
        }
    }
}

/// The depth sweep of a scaling experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthSweep {
    /// Slope of every point.
    pub slope: f64,
    /// Depths.
    pub depths: Vec<usize>,
}

/// The slope sweep of a scaling experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlopeSweep {
    /// Depth of every point.
    pub depth: usize,
    /// Slopes.
    pub slopes: Vec<f64>,
}

/// Lowest reconstructed SNR vs depth at a fixed slope and vs slope at a fixed depth
/// (`fig11`, `fig14`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalingConfig {
    /// Architecture.
    pub arch: Arch,
    /// Seed of weights and input.
    pub seed: u64,
    /// Storage dtype.
    pub dtype: String,
    /// The depth sweep.
    pub depth_sweep: DepthSweep,
    /// The slope sweep.
    pub slope_sweep: SlopeSweep,
    /// Network and input settings.
    pub net: NetSettings,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        ScalingConfig {
            arch: Arch::Layerwise,
            seed: 0,
            dtype: "f32".into(),
            depth_sweep: DepthSweep {
                slope: 0.5,
                depths: vec![1, 2, 3, 4, 6, 8, 12, 16, 24, 32],
            },
            slope_sweep: SlopeSweep {
                depth: 3,
                slopes: vec![0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
            },
            net: NetSettings::default(),
        }
    }
}

/// Lowest SNR vs depth per storage dtype (`precision`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrecisionConfig {
    /// Architectures (one panel each).
    pub archs: Vec<Arch>,
    /// Storage dtypes (one series each).
    pub dtypes: Vec<String>,
    /// Depths.
    pub depths: Vec<usize>,
    /// Slope.
    pub slope: f64,
    /// Seed of weights and input.
    pub seed: u64,
    /// Network and input settings.
    pub net: NetSettings,
}

impl Default for PrecisionConfig {
    fn default() -> Self {
        PrecisionConfig {
            archs: vec![Arch::Layerwise, Arch::Hybrid],
            dtypes: vec!["f16".into(), "bf16".into(), "f32".into(), "f64".into()],
            depths: vec![1, 2, 4, 8, 16, 32],
            slope: 0.2,
            seed: 0,
            net: NetSettings::default(),
        }
    }
}

/// The single-layer part of the `bn-eps` experiment: alpha of one invertible batch norm with
/// spread gammas, unit Gaussian input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BnAlphaSettings {
    /// Channels.
    pub channels: usize,
    /// Samples of the input.
    pub samples: usize,
    /// Gamma init spread.
    pub gamma_spread: f64,
    /// Output noise std.
    pub noise_std: f64,
}

impl Default for BnAlphaSettings {
    fn default() -> Self {
        BnAlphaSettings {
            channels: 16,
            samples: 20_000,
            gamma_spread: 1.5,
            noise_std: 1e-5,
        }
    }
}

/// The network part of the `bn-eps` experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BnSnrSettings {
    /// Architecture.
    pub arch: Arch,
    /// Depths (one series each).
    pub depths: Vec<usize>,
    /// Slope.
    pub slope: f64,
}

impl Default for BnSnrSettings {
    fn default() -> Self {
        BnSnrSettings {
            arch: Arch::Layerwise,
            depths: vec![4, 8],
            slope: 0.2,
        }
    }
}

/// alpha of a batch norm and lowest network SNR vs `eps_i` (`bn-eps`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BnEpsConfig {
    /// `eps_i` values (>= 0; 0 is drawn as a reference line on the log axis).
    pub eps_i: Vec<f64>,
    /// Seed.
    pub seed: u64,
    /// Storage dtype.
    pub dtype: String,
    /// The single batch norm.
    pub alpha: BnAlphaSettings,
    /// The networks.
    pub snr: BnSnrSettings,
    /// Network and input settings (`net.eps_i` is replaced by each `eps_i`).
    pub net: NetSettings,
}

impl Default for BnEpsConfig {
    fn default() -> Self {
        BnEpsConfig {
            eps_i: vec![0.0, 0.01, 0.03, 0.1, 0.3, 1.0],
            seed: 0,
            dtype: "f32".into(),
            alpha: BnAlphaSettings::default(),
            snr: BnSnrSettings::default(),
            net: NetSettings {
                gamma_spread: 1.5,
                ..NetSettings::default()
            },
        }
    }
}

/// An experiment config, tagged by its `experiment` key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "experiment", rename_all = "kebab-case")]
pub enum ExperimentConfig {
    /// `fig05`, `fig06`.
    Alpha(AlphaConfig),
    /// `fig10`, `fig13`.
    Trace(TraceConfig),
    /// `fig11`, `fig14`.
    Scaling(ScalingConfig),
    /// `precision`.
    Precision(PrecisionConfig),
    /// `bn-eps`.
    BnEps(BnEpsConfig),
    /// `table1`, `memory-scaling`: the memory experiment ([`crate::experiments::memory`]).
    Memory(MemoryConfig),
    /// `tradeoff`: the memory, time and exactness frontier ([`crate::experiments::tradeoff`]).
    Tradeoff(TradeoffConfig),
}

impl ExperimentConfig {
    /// The `experiment` key.
    pub fn kind(&self) -> &'static str {
        match self {
            ExperimentConfig::Alpha(_) => "alpha",
            ExperimentConfig::Trace(_) => "trace",
            ExperimentConfig::Scaling(_) => "scaling",
            ExperimentConfig::Precision(_) => "precision",
            ExperimentConfig::BnEps(_) => "bn-eps",
            ExperimentConfig::Memory(_) => "memory",
            ExperimentConfig::Tradeoff(_) => "tradeoff",
        }
    }

    /// Parse a TOML config; errors name the file.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<ExperimentConfig> {
        toml::from_str(text)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.to_string().trim())))
    }

    /// Check every value (and that every network can be built).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        let check_net = |n: &NetSettings| -> Result<()> {
            parse_device(&n.device)?;
            if n.batch == 0 {
                return bad("net.batch must be >= 1".into());
            }
            Ok(())
        };
        match self {
            ExperimentConfig::Alpha(c) => {
                parse_device(&c.device)?;
                if c.dtypes.is_empty() {
                    return bad("alpha: dtypes needs at least one value".into());
                }
                for d in &c.dtypes {
                    parse_dtype(d)?;
                }
                if !(c.from > 0.0 && c.to > c.from && c.to.is_finite()) {
                    return bad(format!(
                        "alpha: need 0 < from < to (got {} and {})",
                        c.from, c.to
                    ));
                }
                if c.points < 2 || c.theory_points < 2 || c.samples < 2 {
                    return bad("alpha: points, theory_points and samples must be >= 2".into());
                }
                if !(c.noise_std > 0.0 && c.noise_std.is_finite()) {
                    return bad(format!(
                        "alpha: noise_std must be > 0 (got {})",
                        c.noise_std
                    ));
                }
            }
            ExperimentConfig::Trace(c) => {
                parse_dtype(&c.dtype)?;
                check_net(&c.net)?;
                if !(c.noise_std >= 0.0 && c.noise_std.is_finite()) {
                    return bad(format!(
                        "trace: noise_std must be >= 0 (got {})",
                        c.noise_std
                    ));
                }
                let sweep = c.net.sweep_config(0.0, true);
                sweep
                    .net_config(&c.net.point(
                        0,
                        c.arch,
                        c.depth,
                        c.slope,
                        c.net.eps_i,
                        &c.dtype,
                        c.seed,
                    ))
                    .validate()?;
            }
            ExperimentConfig::Scaling(c) => {
                parse_dtype(&c.dtype)?;
                check_net(&c.net)?;
                if c.depth_sweep.depths.is_empty() && c.slope_sweep.slopes.is_empty() {
                    return bad("scaling: no depths and no slopes".into());
                }
                for p in scaling_points(c) {
                    c.net.sweep_config(0.0, true).net_config(&p).validate()?;
                }
            }
            ExperimentConfig::Precision(c) => {
                check_net(&c.net)?;
                if c.archs.is_empty() || c.dtypes.is_empty() || c.depths.is_empty() {
                    return bad(
                        "precision: archs, dtypes and depths need at least one value each".into(),
                    );
                }
                for d in &c.dtypes {
                    parse_dtype(d)?;
                }
                for p in precision_points(c) {
                    c.net.sweep_config(0.0, false).net_config(&p).validate()?;
                }
            }
            ExperimentConfig::BnEps(c) => {
                parse_dtype(&c.dtype)?;
                check_net(&c.net)?;
                if c.eps_i.is_empty() || c.eps_i.iter().any(|e| !(e.is_finite() && *e >= 0.0)) {
                    return bad(format!(
                        "bn-eps: eps_i must be a non-empty list of values >= 0 (got {:?})",
                        c.eps_i
                    ));
                }
                if c.alpha.channels == 0
                    || c.alpha.samples < 2
                    || !(c.alpha.noise_std > 0.0)
                    || !(c.alpha.gamma_spread >= 0.0)
                {
                    return bad("bn-eps: alpha.channels >= 1, alpha.samples >= 2, alpha.noise_std > 0, alpha.gamma_spread >= 0".into());
                }
                for p in bn_eps_points(c) {
                    c.net.sweep_config(0.0, true).net_config(&p).validate()?;
                }
            }
            ExperimentConfig::Memory(c) => c.validate()?,
            ExperimentConfig::Tradeoff(c) => c.validate()?,
        }
        Ok(())
    }

    /// The cache key: a hash of the parsed config (comments and formatting do not count).
    pub fn key(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        let mut h: u64 = 0xcbf29ce484222325;
        for b in text.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        format!("{h:016x}")
    }

    /// Run the experiment on `device` (`cpu`, `cuda[:N]`, `metal[:N]`) instead of its config's:
    /// `figures --device`. A device other than `cpu` is part of the config's key, so results
    /// computed on another device are not reused for it.
    pub fn set_device(&mut self, device: &str) {
        let device = device.to_string();
        match self {
            ExperimentConfig::Alpha(c) => c.device = device,
            ExperimentConfig::Trace(c) => c.net.device = device,
            ExperimentConfig::Scaling(c) => c.net.device = device,
            ExperimentConfig::Precision(c) => c.net.device = device,
            ExperimentConfig::BnEps(c) => c.net.device = device,
            ExperimentConfig::Memory(c) => c.device = device,
            // The tradeoff measures live heap bytes with the counting allocator: CPU only.
            ExperimentConfig::Tradeoff(_) => {}
        }
    }

    /// The device the experiment runs on, as configured.
    pub fn device(&self) -> &str {
        match self {
            ExperimentConfig::Alpha(c) => &c.device,
            ExperimentConfig::Trace(c) => &c.net.device,
            ExperimentConfig::Scaling(c) => &c.net.device,
            ExperimentConfig::Precision(c) => &c.net.device,
            ExperimentConfig::BnEps(c) => &c.net.device,
            ExperimentConfig::Memory(c) => &c.device,
            ExperimentConfig::Tradeoff(_) => "cpu",
        }
    }

    /// The backend computing the layers of the experiment.
    pub fn backend(&self) -> Backend {
        match self {
            ExperimentConfig::Alpha(c) => c.backend,
            ExperimentConfig::Trace(c) => c.net.backend,
            ExperimentConfig::Scaling(c) => c.net.backend,
            ExperimentConfig::Precision(c) => c.net.backend,
            ExperimentConfig::BnEps(c) => c.net.backend,
            ExperimentConfig::Memory(c) => c.backend,
            ExperimentConfig::Tradeoff(c) => c.backend,
        }
    }

    fn seed_dtype_init(&self) -> (String, String, String) {
        match self {
            ExperimentConfig::Tradeoff(c) => (
                c.seed.to_string(),
                c.dtype.clone(),
                format!(
                    "width {}, batch {} of {}x{} unit-Gaussian images, {} stage{}, convolutions Kaiming normal x {}, {} timed steps per source after {} untimed (median), sources interleaved",
                    c.width,
                    c.batch,
                    c.input_size,
                    c.input_size,
                    c.stages,
                    if c.stages == 1 { "" } else { "s" },
                    c.init_scale,
                    c.steps,
                    c.warmup
                ),
            ),
            ExperimentConfig::Alpha(c) => (
                c.seed.to_string(),
                c.dtypes.join("/"),
                format!(
                    "{} unit-Gaussian samples, output noise std {:e}",
                    c.samples, c.noise_std
                ),
            ),
            ExperimentConfig::Trace(c) => (c.seed.to_string(), c.dtype.clone(), c.net.describe()),
            ExperimentConfig::Scaling(c) => (c.seed.to_string(), c.dtype.clone(), c.net.describe()),
            ExperimentConfig::Precision(c) => {
                (c.seed.to_string(), c.dtypes.join("/"), c.net.describe())
            }
            ExperimentConfig::BnEps(c) => (c.seed.to_string(), c.dtype.clone(), c.net.describe()),
            ExperimentConfig::Memory(c) => (
                c.seed.to_string(),
                c.dtype.clone(),
                format!(
                    "width {}, depth {}{}, batch {} of {}x{}, {} stage{}",
                    c.width,
                    c.depth,
                    if c.arch_depths.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " ({})",
                            c.arch_depths
                                .iter()
                                .map(|a| format!("{} {}", a.arch, a.depth))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                    c.batch,
                    c.input_size,
                    c.input_size,
                    c.stages,
                    if c.stages == 1 { "" } else { "s" }
                ),
            ),
        }
    }
}

/// The config of figure `id`: `<experiments>/<id>.toml`, or when that file does not exist the
/// built-in memory grid of `table1` (the paper preset, [`MemoryConfig::paper`]) and
/// `memory-scaling` (default). Returns the config
/// and the path (or `built-in`) that names it. A missing or invalid file, or a config of the wrong kind, is an
/// error naming the file.
pub fn load_config(id: &str, experiments: &Path) -> Result<(ExperimentConfig, String)> {
    let kind = experiment_kind(id).ok_or_else(|| Error::Config(format!("{id} is not computed from an experiment config (it reads the output of the `train` binary)")))?;
    let path = experiments.join(format!("{id}.toml"));
    let cfg = match std::fs::read_to_string(&path) {
        Ok(text) => ExperimentConfig::from_toml_str(&text, &path)?,
        // The paper's own configurations (width 32, 32x32, every pooling), measured: the same
        // run as `memory --preset paper`, so the measured columns of the table are the
        // summary.csv of that run.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && id == "table1" => {
            return Ok((
                ExperimentConfig::Memory(MemoryConfig::paper()),
                "built-in MemoryConfig::paper()".into(),
            ));
        }
        // The default grid (depths 2-32, batch 8 of 16x16): about 5 s in release, and the
        // quick grid's small depths and inputs leave the fixed costs dominant.
        // Small networks (width 16, batch 8 of 16x16, one stage) so that every figure stays
        // cheap: tens of seconds in release on 2 cores.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && id == "tradeoff" => {
            return Ok((
                ExperimentConfig::Tradeoff(TradeoffConfig::default()),
                "built-in TradeoffConfig::default()".into(),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && id == "memory-scaling" => {
            return Ok((
                ExperimentConfig::Memory(MemoryConfig::default()),
                "built-in MemoryConfig::default()".into(),
            ));
        }
        Err(e) => {
            return Err(Error::Config(format!(
                "config of {id} not readable: {}: {e}",
                path.display()
            )))
        }
    };
    if cfg.kind() != kind {
        return Err(Error::Config(format!(
            "{}: experiment = \"{}\", but {id} needs experiment = \"{kind}\"",
            path.display(),
            cfg.kind()
        )));
    }
    cfg.validate()
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    Ok((cfg, path.display().to_string()))
}

// =============================================================================================
// results

/// Floats in result files: finite values as JSON numbers, `inf`, `-inf`, `nan` as strings.
pub(crate) mod num {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_str(&crate::experiments::snr_sweep::fmt_f(*v))
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum N {
            F(f64),
            S(String),
        }
        match N::deserialize(d)? {
            N::F(v) => Ok(v),
            N::S(s) => crate::experiments::snr_sweep::parse_f(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// What produced a result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// `git rev-parse --short HEAD` (`-dirty` with uncommitted changes) when it ran.
    pub git_revision: String,
    /// Crate version.
    pub crate_version: String,
    /// Seed(s).
    pub seed: String,
    /// Dtype(s).
    pub dtype: String,
    /// Device.
    pub device: String,
    /// The backend configured for the layers ([`Backend::Kernels`] in results cached before it
    /// was recorded: the only backend then, short of the `bench --kernels off` switch).
    #[serde(default)]
    pub backend: Backend,
    /// The backend that actually ran ([`crate::device::backend_that_ran`]: `candle` off the
    /// CPU, whatever was configured); empty in results cached before it was recorded.
    #[serde(default)]
    pub backend_that_ran: String,
    /// Initialisation and input.
    pub init: String,
    /// Wall time of the experiment, seconds.
    #[serde(with = "num")]
    pub seconds: f64,
    /// Threads running points in parallel.
    pub threads: usize,
    /// Unix time at the end of the run.
    pub created_unix: u64,
}

/// One cached experiment result (`<results>/<id>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultFile {
    /// Figure id.
    pub id: String,
    /// Config file (or `built-in ...`).
    pub config_path: String,
    /// [`ExperimentConfig::key`] of `config`.
    pub config_key: String,
    /// The config.
    pub config: ExperimentConfig,
    /// Provenance.
    pub provenance: Provenance,
    /// The measurements.
    pub data: ResultData,
}

impl ResultFile {
    /// The provenance line of figures and CSVs.
    pub fn caption(&self) -> String {
        let p = &self.provenance;
        format!(
            "{}: config {} (key {}), seed {}, {}, {}; results from rev {} ({}, {:.1} s)",
            self.id,
            self.config_path,
            &self.config_key[..8.min(self.config_key.len())],
            p.seed,
            p.dtype,
            p.init,
            p.git_revision,
            p.device,
            p.seconds
        )
    }
}

/// The measurements of an experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ResultData {
    /// See [`AlphaData`].
    Alpha(AlphaData),
    /// See [`TraceData`].
    Trace(TraceData),
    /// See [`ScalingData`].
    Scaling(ScalingData),
    /// See [`PrecisionData`].
    Precision(PrecisionData),
    /// See [`BnEpsData`].
    BnEps(BnEpsData),
    /// See [`MemoryData`].
    Memory(MemoryData),
    /// See [`TradeoffData`].
    Tradeoff(TradeoffData),
}

/// A point of a curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Xy {
    /// x.
    #[serde(with = "num")]
    pub x: f64,
    /// y.
    #[serde(with = "num")]
    pub y: f64,
}

/// One measured alpha.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlphaPoint {
    /// Dtype of the measurement.
    pub dtype: String,
    /// `rho` or `n`.
    #[serde(with = "num")]
    pub x: f64,
    /// Theory.
    #[serde(with = "num")]
    pub theory: f64,
    /// Measured `snr_in / snr_out`.
    #[serde(with = "num")]
    pub empirical: f64,
    /// SNR of the reconstructed input, dB.
    #[serde(with = "num")]
    pub snr_in_db: f64,
    /// SNR of the noisy output, dB.
    #[serde(with = "num")]
    pub snr_out_db: f64,
}

/// Result of an alpha experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlphaData {
    /// The layer.
    pub layer: AlphaLayer,
    /// The theory curve `(x, alpha)`.
    pub theory: Vec<Xy>,
    /// The measurements.
    pub points: Vec<AlphaPoint>,
}

/// One traced activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRow {
    /// Position top down.
    pub index: usize,
    /// The layer whose input this is.
    pub layer: String,
    /// `layer`, `block-input` or `hidden`.
    pub role: String,
    /// SNR vs the stored activation (same dtype), dB.
    #[serde(with = "num")]
    pub snr_db: f64,
    /// SNR vs the f64 shadow, dB.
    #[serde(with = "num")]
    pub snr_db_f64: f64,
    /// `10 log10(alpha)` of the layer (NaN for hidden entries).
    #[serde(with = "num")]
    pub alpha_db: f64,
    /// Depth-law prediction, dB (NaN for hidden entries).
    #[serde(with = "num")]
    pub predicted_snr_db: f64,
    /// Rounding-aware depth-law prediction, dB ([`crate::measure::trace`]; NaN for hidden
    /// entries).
    #[serde(with = "num")]
    pub predicted_snr_db_rounding: f64,
    /// Coherent (amplitude-sum) rounding-aware prediction, dB (NaN for hidden entries).
    #[serde(with = "num")]
    pub predicted_snr_db_coherent: f64,
    /// Local Lipschitz constant of the layer's forward (plain ratio; NaN when not measured).
    #[serde(with = "num")]
    pub lip_forward: f64,
    /// Local Lipschitz constant of the layer's inverse (plain ratio; NaN when not measured).
    #[serde(with = "num")]
    pub lip_inverse: f64,
}

/// One trace of a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRun {
    /// Std of the noise added to the head input (0: rounding only).
    #[serde(with = "num")]
    pub noise_std: f64,
    /// SNR of the head input the backward started from, dB.
    #[serde(with = "num")]
    pub output_snr_db: f64,
    /// Entries top down.
    pub entries: Vec<TraceRow>,
}

/// Result of a trace experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceData {
    /// Architecture.
    pub arch: Arch,
    /// Depth.
    pub depth: usize,
    /// Slope.
    #[serde(with = "num")]
    pub slope: f64,
    /// Primitive layers of the network.
    pub layers: usize,
    /// Rounding only, then (optionally) with output noise.
    pub runs: Vec<TraceRun>,
}

/// The lowest reconstruction of one network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LowestRow {
    /// Architecture.
    pub arch: Arch,
    /// Storage dtype.
    pub dtype: String,
    /// Depth.
    pub depth: usize,
    /// Slope.
    #[serde(with = "num")]
    pub slope: f64,
    /// `eps_i`.
    #[serde(with = "num")]
    pub eps_i: f64,
    /// Primitive layers.
    pub layers: usize,
    /// The lowest top-level entry (lowest layer input / block input).
    pub lowest_layer: String,
    /// Its SNR vs the stored activation, dB.
    #[serde(with = "num")]
    pub lowest_snr_db: f64,
    /// Its SNR vs the f64 shadow, dB.
    #[serde(with = "num")]
    pub lowest_snr_db_f64: f64,
    /// Depth-law prediction of it ([`anchored_prediction`]), dB; NaN without the depth law.
    #[serde(with = "num")]
    pub predicted_db: f64,
    /// Rounding-aware depth-law prediction of it ([`crate::measure::trace`]), dB; NaN without
    /// the depth law.
    #[serde(with = "num")]
    pub predicted_rounding_db: f64,
    /// Coherent (amplitude-sum) rounding-aware prediction of it, dB; NaN without the depth law.
    #[serde(with = "num")]
    pub predicted_coherent_db: f64,
    /// Smallest SNR of all entries (hidden included), dB.
    #[serde(with = "num")]
    pub min_snr_db: f64,
    /// Seconds the point took.
    #[serde(with = "num")]
    pub seconds: f64,
}

/// Result of a scaling experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingData {
    /// Architecture.
    pub arch: Arch,
    /// Slope of the depth sweep.
    #[serde(with = "num")]
    pub depth_sweep_slope: f64,
    /// Depth of the slope sweep.
    pub slope_sweep_depth: usize,
    /// Depth sweep, by depth.
    pub depth_sweep: Vec<LowestRow>,
    /// Slope sweep, by slope.
    pub slope_sweep: Vec<LowestRow>,
}

/// Result of the precision experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecisionData {
    /// Slope of every network.
    #[serde(with = "num")]
    pub slope: f64,
    /// One row per (arch, dtype, depth).
    pub rows: Vec<LowestRow>,
}

/// alpha of one batch norm at one `eps_i`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BnAlphaRow {
    /// `eps_i`.
    #[serde(with = "num")]
    pub eps_i: f64,
    /// Squared general formula (DESIGN.md 4).
    #[serde(with = "num")]
    pub theory: f64,
    /// The paper's printed eq. 25g/26d.
    #[serde(with = "num")]
    pub printed: f64,
    /// Measured.
    #[serde(with = "num")]
    pub empirical: f64,
    /// Smallest `|gamma + eps_i|`.
    #[serde(with = "num")]
    pub min_scale: f64,
}

/// Result of the `bn-eps` experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BnEpsData {
    /// Channels of the single batch norm.
    pub channels: usize,
    /// Its gammas (before `eps_i`).
    pub gammas: Vec<f64>,
    /// alpha per `eps_i`.
    pub alpha: Vec<BnAlphaRow>,
    /// Networks: one row per (depth, eps_i).
    pub snr: Vec<LowestRow>,
}

/// One row of the memory table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryRow {
    /// Model (paper name).
    pub model: String,
    /// Architecture measured for it.
    pub arch: Arch,
    /// Channels per stage (paper configuration).
    pub channels: String,
    /// Pooling (paper configuration).
    pub pooling: String,
    /// Paper's `M'_z + M'_g`, bytes per pixel.
    #[serde(with = "num")]
    pub paper_bytes_per_pixel: f64,
    /// Analytic model, same configuration.
    #[serde(with = "num")]
    pub analytic_bytes_per_pixel: f64,
    /// Paper's `M_theta`, bytes.
    #[serde(with = "num")]
    pub paper_weight_bytes: f64,
    /// Analytic `M_theta`, bytes.
    #[serde(with = "num")]
    pub analytic_weight_bytes: f64,
    /// Paper's peak for 32 images of 240x240 (text), bytes.
    #[serde(with = "num")]
    pub paper_peak_bytes: f64,
    /// Analytic peak for the same batch, bytes.
    #[serde(with = "num")]
    pub analytic_peak_bytes: f64,
    /// Layers of the measured network.
    pub measured_layers: usize,
    /// Channels per stage of the measured network (e.g. `32-128-512-512`).
    #[serde(default)]
    pub measured_channels: String,
    /// Blocks (units) per stage of the measured network (e.g. `2-2-2-1`).
    #[serde(default)]
    pub measured_blocks: String,
    /// Analytic bytes per pixel of the measured network, in the mode the model describes
    /// (reconstructed; stored for the ResNet): `analytic_bpx` of `summary.csv`.
    #[serde(with = "num")]
    pub measured_analytic_bytes_per_pixel: f64,
    /// Measured activation peak (peak minus parameter gradients) per input pixel, stored
    /// activations: `measured_bpx` of `summary.csv`.
    #[serde(with = "num")]
    pub measured_stored_bytes_per_pixel: f64,
    /// The same, reconstructed activations.
    #[serde(with = "num")]
    pub measured_reconstructed_bytes_per_pixel: f64,
    /// Measured over analytic, in the mode the model describes.
    #[serde(with = "num")]
    pub measured_over_analytic: f64,
    /// Marginal activation bytes per input pixel (slope over the batch sweep) in the mode the
    /// model describes: `marginal_bpx` of `summary.csv`.
    #[serde(default = "nan", with = "num")]
    pub measured_marginal_bytes_per_pixel: f64,
    /// Marginal over analytic.
    #[serde(default = "nan", with = "num")]
    pub marginal_over_analytic: f64,
}

fn nan() -> f64 {
    f64::NAN
}

/// One measured point of a sweep of the memory experiment (`memory-scaling`): the peak of one
/// training step ([`crate::experiments::memory::PeakPoint`]). The comparison point belongs
/// to all three sweeps and is listed in each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryPoint {
    /// The sweep (`depth`, `batch`, `size`).
    pub sweep: MemAxis,
    /// Architecture.
    pub arch: Arch,
    /// Source of the activations in the backward.
    pub mode: Source,
    /// Blocks (units for layer-wise).
    pub depth: usize,
    /// Batch (images).
    pub batch: usize,
    /// Input height = width (pixels).
    pub size: usize,
    /// Primitive layers of the network.
    pub layers: usize,
    /// Peak live heap bytes of the step above the live bytes before it.
    pub peak_bytes: usize,
    /// `peak_bytes` without the parameter gradients.
    pub act_peak_bytes: usize,
    /// Bytes of the parameter gradients (in `peak_bytes`).
    pub grad_bytes: usize,
    /// Bytes the forward kept on the tape.
    pub tape_bytes: usize,
    /// Bytes of the weights (not in `peak_bytes`).
    pub weight_bytes: usize,
}

/// Result of the memory experiment, as the table and the scaling figure need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryData {
    /// Rows in Table 1 order (plus the layer-wise network of eq. 34).
    pub rows: Vec<MemoryRow>,
    /// The analytic table with the paper's figures and notes, Markdown.
    pub analytic_markdown: String,
    /// The measured summary, Markdown.
    pub measured_markdown: String,
    /// The points of the depth, batch and resolution sweeps, per architecture and mode
    /// (empty in results cached before they were recorded).
    #[serde(default)]
    pub points: Vec<MemoryPoint>,
}

/// Where result files live.
#[derive(Debug, Clone)]
pub struct Results {
    /// Cached experiment results (`<dir>/<id>.json`).
    pub dir: PathBuf,
    /// Output of `train --config experiments/accuracy.toml` (`accuracy.csv`, `run.json`).
    pub accuracy_dir: PathBuf,
    /// Output of `train --config experiments/revnet-fig4.toml` (`angles.csv`, `run.json`).
    pub angles_dir: PathBuf,
}

impl Results {
    /// Results cached in `dir`; training results in `results/accuracy` and `results/angles`
    /// (the `train` binary's defaults).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Results {
            dir: dir.into(),
            accuracy_dir: PathBuf::from("results/accuracy"),
            angles_dir: PathBuf::from("results/angles"),
        }
    }

    /// The cache file of `id`.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Read the cached result of `id`; a missing or malformed file is an error naming it.
    pub fn load(&self, id: &str) -> Result<ResultFile> {
        let path = self.path(id);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(missing(&path, format!("results for {id} not available: run `cargo run --release --bin figures -- --only {id}` first")));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let r: ResultFile = serde_json::from_str(&text).map_err(|e| malformed(&path, e))?;
        if r.id != id {
            return Err(malformed(
                &path,
                format!("it holds the results of `{}`, not `{id}`", r.id),
            ));
        }
        Ok(r)
    }

    /// Write a result atomically.
    pub fn store(&self, r: &ResultFile) -> Result<()> {
        let text = serde_json::to_string_pretty(r)
            .map_err(|e| Error::Config(format!("serialising results of {}: {e}", r.id)))?;
        write_atomic(&self.path(&r.id), text.as_bytes())
    }
}

/// A result file that does not parse: an I/O error (`InvalidData`) naming it.
pub(crate) fn malformed(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed result file: {what}"),
        ),
    )
}

/// A result file that does not exist: an I/O error (`NotFound`) naming it and what to run.
fn missing(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        std::io::Error::new(std::io::ErrorKind::NotFound, what.to_string()),
    )
}

// =============================================================================================
// running experiments

/// What [`ensure_results`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheStatus {
    /// Cached results with the same config key were reused.
    Reused,
    /// Computed now (seconds); the string says why.
    Computed(f64, String),
}

/// Make sure `<results>/<id>.json` holds results of the current config of `id`: reuse them
/// when the config key matches (unless `rerun`), otherwise run the experiment and store it.
pub fn ensure_results(
    id: &str,
    experiments: &Path,
    results: &Results,
    rerun: bool,
    threads: usize,
) -> Result<CacheStatus> {
    ensure_results_on(id, experiments, results, rerun, threads, None)
}

/// [`ensure_results`] with the experiment's device replaced by `device` when given
/// ([`ExperimentConfig::set_device`]; `figures --device`).
pub fn ensure_results_on(
    id: &str,
    experiments: &Path,
    results: &Results,
    rerun: bool,
    threads: usize,
    device: Option<&str>,
) -> Result<CacheStatus> {
    let (mut cfg, config_path) = load_config(id, experiments)?;
    if let Some(device) = device {
        cfg.set_device(device);
    }
    let key = cfg.key();
    let why = if rerun {
        "--rerun".to_string()
    } else {
        match results.load(id) {
            Ok(r) if r.config_key == key => return Ok(CacheStatus::Reused),
            Ok(_) => "config changed".to_string(),
            Err(_) if !results.path(id).exists() => "no cached results".to_string(),
            Err(e) => format!("cached results unreadable ({e})"),
        }
    };
    let t = Instant::now();
    let r = run_experiment(id, &cfg, &config_path, threads)?;
    results.store(&r)?;
    Ok(CacheStatus::Computed(t.elapsed().as_secs_f64(), why))
}

/// Run the experiment of figure `id` with `cfg` (points in parallel on `threads` threads,
/// 0 = all cores).
pub fn run_experiment(
    id: &str,
    cfg: &ExperimentConfig,
    config_path: &str,
    threads: usize,
) -> Result<ResultFile> {
    cfg.validate()?;
    if let Some(kind) = experiment_kind(id) {
        if kind != cfg.kind() {
            return Err(Error::Config(format!(
                "{id} needs an `{kind}` experiment, got `{}`",
                cfg.kind()
            )));
        }
    }
    let start = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Config(format!("thread pool: {e}")))?;
    let used_threads = pool.current_num_threads();
    let (data, device) = match cfg {
        ExperimentConfig::Alpha(c) => (
            ResultData::Alpha(pool.install(|| run_alpha(c))?),
            c.device.clone(),
        ),
        ExperimentConfig::Trace(c) => (
            ResultData::Trace(pool.install(|| run_trace(c))?),
            c.net.device.clone(),
        ),
        ExperimentConfig::Scaling(c) => (
            ResultData::Scaling(pool.install(|| run_scaling(c))?),
            c.net.device.clone(),
        ),
        ExperimentConfig::Precision(c) => (
            ResultData::Precision(pool.install(|| run_precision(c))?),
            c.net.device.clone(),
        ),
        ExperimentConfig::BnEps(c) => (
            ResultData::BnEps(pool.install(|| run_bn_eps(c))?),
            c.net.device.clone(),
        ),
        ExperimentConfig::Memory(c) => (ResultData::Memory(run_memory(c)?), c.device.clone()),
        ExperimentConfig::Tradeoff(c) => (
            ResultData::Tradeoff(crate::experiments::tradeoff::run(c, |_| {})?),
            "cpu".to_string(),
        ),
    };
    let (device, backend_that_ran) = match parse_device(&device) {
        Ok(d) => (
            device_name(&d),
            crate::device::backend_that_ran(cfg.backend(), &d).to_string(),
        ),
        Err(_) => (device, cfg.backend().as_str().to_string()),
    };
    let (seed, dtype, init) = cfg.seed_dtype_init();
    let provenance = Provenance {
        git_revision: crate::util::git_revision().unwrap_or_else(|| "unknown".into()),
        crate_version: env!("CARGO_PKG_VERSION").into(),
        seed,
        dtype,
        device,
        backend: cfg.backend(),
        backend_that_ran,
        init,
        seconds: start.elapsed().as_secs_f64(),
        threads: used_threads,
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    Ok(ResultFile {
        id: id.into(),
        config_path: config_path.into(),
        config_key: cfg.key(),
        config: cfg.clone(),
        provenance,
        data,
    })
}

fn log_space(from: f64, to: f64, n: usize) -> Vec<f64> {
    let (a, b) = (from.log10(), to.log10());
    (0..n)
        .map(|k| 10f64.powf(a + (b - a) * k as f64 / (n - 1) as f64))
        .collect()
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

fn run_alpha(c: &AlphaConfig) -> Result<AlphaData> {
    let device = parse_device(&c.device)?;
    let theory_fn: fn(f64) -> f64 = match c.layer {
        AlphaLayer::ToyBn => alpha_toy_bn,
        AlphaLayer::LeakyRelu => alpha_leaky_relu,
    };
    let channels = match c.layer {
        AlphaLayer::ToyBn => 2,
        AlphaLayer::LeakyRelu => 1,
    };
    let theory = log_space(c.from, c.to, c.theory_points)
        .into_iter()
        .map(|x| Xy { x, y: theory_fn(x) })
        .collect();
    let mut points = Vec::new();
    for name in &c.dtypes {
        let dtype = parse_dtype(name)?;
        let dev = if dtype == DType::F64 {
            f64_device(&device, has_f64(&device))
        } else {
            device.clone()
        };
        let x = crate::util::randn(
            &mut crate::util::rng_for(c.seed, "alpha-input"),
            &[c.samples, channels, 1, 1],
            0.0,
            1.0,
            dtype,
            &dev,
        )?;
        let measured = log_space(c.from, c.to, c.points)
            .into_par_iter()
            .map(|v| -> Result<AlphaPoint> {
                let est = match c.layer {
                    AlphaLayer::ToyBn => {
                        let store = ParamStore::new(c.seed, dtype, &dev);
                        let layer = InvBatchNorm::new(&store, "bn", 2, BatchNormConfig::default())?
                            .with_backend(c.backend);
                        layer
                            .gamma()
                            .var
                            .set(&Tensor::new(&[1.0f64, v], &dev)?.to_dtype(dtype)?)?;
                        empirical_alpha(&layer, &x, c.noise_std, c.seed)?
                    }
                    AlphaLayer::LeakyRelu => {
                        let layer = InvLeakyReLU::new("act", v)?.with_backend(c.backend);
                        empirical_alpha(&layer, &x, c.noise_std, c.seed)?
                    }
                };
                Ok(AlphaPoint {
                    dtype: name.trim().to_ascii_lowercase(),
                    x: v,
                    theory: theory_fn(v),
                    empirical: est.alpha,
                    snr_in_db: db(est.snr_in),
                    snr_out_db: db(est.snr_out),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        points.extend(measured);
    }
    Ok(AlphaData {
        layer: c.layer,
        theory,
        points,
    })
}

/// Depth-law prediction (eq. 19) per entry of a rounding-only trace, anchored at the first
/// finite top-level measurement and then adding each top-level layer's `10 log10(alpha)`;
/// NaN for hidden entries and for entries above the anchor (exact reconstructions).
pub fn anchored_prediction(points: &[TracePoint]) -> Vec<f64> {
    let mut out = vec![f64::NAN; points.len()];
    let mut running: Option<f64> = None;
    for (i, p) in points.iter().enumerate() {
        if p.role == Role::Hidden {
            continue;
        }
        running = match running {
            Some(r) => Some(r + p.alpha_db),
            None if p.snr_db.is_finite() => Some(p.snr_db),
            None => None,
        };
        if let Some(r) = running {
            out[i] = r;
        }
    }
    out
}

/// Run points in parallel on the current rayon pool.
fn run_points(sweep: &SweepConfig, points: &[Point]) -> Result<Vec<(Point, SnrTrace, usize, f64)>> {
    let device = parse_device(&sweep.device)?;
    points
        .par_iter()
        .map(|p| {
            let (r, trace) = run_point(sweep, p, &device)?;
            let layers = r
                .summary_line
                .split(',')
                .nth(7)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            Ok((p.clone(), trace, layers, r.seconds))
        })
        .collect()
}

fn lowest_row(p: &Point, trace: &SnrTrace, layers: usize, seconds: f64) -> LowestRow {
    let predicted = anchored_prediction(&trace.points);
    let lowest_idx = trace.points.iter().rposition(|t| t.role != Role::Hidden);
    let (name, snr, snr64, pred, pred_rounding, pred_coherent) = match lowest_idx {
        Some(i) => {
            let t = &trace.points[i];
            (
                t.layer.clone(),
                t.snr_db,
                t.snr_db_f64,
                predicted[i],
                t.predicted_snr_db_rounding,
                t.predicted_snr_db_coherent,
            )
        }
        None => (
            "none".into(),
            f64::INFINITY,
            f64::INFINITY,
            f64::NAN,
            f64::NAN,
            f64::NAN,
        ),
    };
    LowestRow {
        arch: p.arch,
        dtype: p.dtype.clone(),
        depth: p.depth,
        slope: p.slope,
        eps_i: p.eps_i,
        layers,
        lowest_layer: name,
        lowest_snr_db: snr,
        lowest_snr_db_f64: snr64,
        predicted_db: pred,
        predicted_rounding_db: pred_rounding,
        predicted_coherent_db: pred_coherent,
        min_snr_db: trace.min_snr_db(),
        seconds,
    }
}

fn run_trace(c: &TraceConfig) -> Result<TraceData> {
    let p = c
        .net
        .point(0, c.arch, c.depth, c.slope, c.net.eps_i, &c.dtype, c.seed);
    let mut noises = vec![0.0];
    if c.noise_std > 0.0 {
        noises.push(c.noise_std);
    }
    let device = parse_device(&c.net.device)?;
    let outs = noises
        .par_iter()
        .map(|&noise| -> Result<(TraceRun, usize)> {
            let sweep = SweepConfig {
                lipschitz: c.lipschitz && noise == 0.0,
                ..c.net.sweep_config(noise, true)
            };
            let (r, trace) = run_point(&sweep, &p, &device)?;
            let layers = r
                .summary_line
                .split(',')
                .nth(7)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let predicted = if noise > 0.0 {
                trace.points.iter().map(|t| t.predicted_snr_db).collect()
            } else {
                anchored_prediction(&trace.points)
            };
            let entries = trace
                .points
                .iter()
                .zip(predicted)
                .map(|(t, pred)| TraceRow {
                    index: t.index,
                    layer: t.layer.clone(),
                    role: t.role.as_str().into(),
                    snr_db: t.snr_db,
                    snr_db_f64: t.snr_db_f64,
                    alpha_db: t.alpha_db,
                    predicted_snr_db: pred,
                    predicted_snr_db_rounding: t.predicted_snr_db_rounding,
                    predicted_snr_db_coherent: t.predicted_snr_db_coherent,
                    lip_forward: t.lip_forward,
                    lip_inverse: t.lip_inverse,
                })
                .collect();
            Ok((
                TraceRun {
                    noise_std: noise,
                    output_snr_db: trace.output_snr_db,
                    entries,
                },
                layers,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let layers = outs.first().map(|o| o.1).unwrap_or(0);
    Ok(TraceData {
        arch: c.arch,
        depth: c.depth,
        slope: c.slope,
        layers,
        runs: outs.into_iter().map(|o| o.0).collect(),
    })
}

fn scaling_points(c: &ScalingConfig) -> Vec<Point> {
    let mut pts = Vec::new();
    for &d in &c.depth_sweep.depths {
        pts.push(c.net.point(
            pts.len(),
            c.arch,
            d,
            c.depth_sweep.slope,
            c.net.eps_i,
            &c.dtype,
            c.seed,
        ));
    }
    for &n in &c.slope_sweep.slopes {
        pts.push(c.net.point(
            pts.len(),
            c.arch,
            c.slope_sweep.depth,
            n,
            c.net.eps_i,
            &c.dtype,
            c.seed,
        ));
    }
    pts
}

fn run_scaling(c: &ScalingConfig) -> Result<ScalingData> {
    let pts = scaling_points(c);
    let out = run_points(&c.net.sweep_config(0.0, true), &pts)?;
    let nd = c.depth_sweep.depths.len();
    let rows: Vec<LowestRow> = out
        .iter()
        .map(|(p, t, l, s)| lowest_row(p, t, *l, *s))
        .collect();
    Ok(ScalingData {
        arch: c.arch,
        depth_sweep_slope: c.depth_sweep.slope,
        slope_sweep_depth: c.slope_sweep.depth,
        depth_sweep: rows[..nd].to_vec(),
        slope_sweep: rows[nd..].to_vec(),
    })
}

fn precision_points(c: &PrecisionConfig) -> Vec<Point> {
    let mut pts = Vec::new();
    for &arch in &c.archs {
        for dtype in &c.dtypes {
            for &d in &c.depths {
                pts.push(
                    c.net
                        .point(pts.len(), arch, d, c.slope, c.net.eps_i, dtype, c.seed),
                );
            }
        }
    }
    pts
}

fn run_precision(c: &PrecisionConfig) -> Result<PrecisionData> {
    let out = run_points(&c.net.sweep_config(0.0, false), &precision_points(c))?;
    Ok(PrecisionData {
        slope: c.slope,
        rows: out
            .iter()
            .map(|(p, t, l, s)| lowest_row(p, t, *l, *s))
            .collect(),
    })
}

fn bn_eps_points(c: &BnEpsConfig) -> Vec<Point> {
    let mut pts = Vec::new();
    for &d in &c.snr.depths {
        for &e in &c.eps_i {
            pts.push(
                c.net
                    .point(pts.len(), c.snr.arch, d, c.snr.slope, e, &c.dtype, c.seed),
            );
        }
    }
    pts
}

fn run_bn_eps(c: &BnEpsConfig) -> Result<BnEpsData> {
    let dtype = parse_dtype(&c.dtype)?;
    let device = parse_device(&c.net.device)?;
    let dev = if dtype == DType::F64 {
        f64_device(&device, has_f64(&device))
    } else {
        device
    };
    let ch = c.alpha.channels;
    let x = crate::util::randn(
        &mut crate::util::rng_for(c.seed, "bn-eps-input"),
        &[c.alpha.samples, ch, 1, 1],
        0.0,
        1.0,
        dtype,
        &dev,
    )?;
    let mut gammas = Vec::new();
    let mut alpha = Vec::new();
    for &eps_i in &c.eps_i {
        let store = ParamStore::new(c.seed, dtype, &dev);
        let cfg = BatchNormConfig {
            eps_i,
            gamma_spread: c.alpha.gamma_spread,
            ..BatchNormConfig::default()
        };
        let layer = InvBatchNorm::new(&store, "bn", ch, cfg)?.with_backend(c.net.backend);
        let est = empirical_alpha(&layer, &x, c.alpha.noise_std, c.seed)?;
        let (mean, var) = layer
            .recorded()
            .ok_or_else(|| Error::Config("bn-eps: batch norm recorded no statistics".into()))?;
        let gamma = crate::util::to_f64_vec(layer.gamma().var.as_tensor())?;
        let beta = crate::util::to_f64_vec(layer.beta().var.as_tensor())?;
        let desc = BnChannels {
            mean,
            var,
            gamma: gamma.clone(),
            beta,
            eps: cfg.eps,
            eps_i,
        };
        let min_scale = gamma
            .iter()
            .map(|g| (g + eps_i).abs())
            .fold(f64::INFINITY, f64::min);
        alpha.push(BnAlphaRow {
            eps_i,
            theory: alpha_general_bn(&desc)?,
            printed: alpha_general_bn_printed(&desc)?,
            empirical: est.alpha,
            min_scale,
        });
        gammas = gamma;
    }
    let out = run_points(&c.net.sweep_config(0.0, true), &bn_eps_points(c))?;
    Ok(BnEpsData {
        channels: ch,
        gammas,
        alpha,
        snr: out
            .iter()
            .map(|(p, t, l, s)| lowest_row(p, t, *l, *s))
            .collect(),
    })
}

fn arch_of(family: &str) -> Option<Arch> {
    match family {
        "ResNet" => Some(Arch::Resnet),
        "RevNet" => Some(Arch::Revnet),
        "IRevNet" => Some(Arch::Irevnet),
        "LayerWise" => Some(Arch::Layerwise),
        "Hybrid" => Some(Arch::Hybrid),
        _ => None,
    }
}

fn run_memory(c: &MemoryConfig) -> Result<MemoryData> {
    use crate::measure::memory::{table1 as analytic_table1, table1_markdown};
    if !crate::measure::alloc::is_installed() {
        return Err(Error::Config(
            "the memory experiment (table1, memory-scaling): measuring memory needs the counting global allocator (revstab::measure::alloc::CountingAlloc) installed in the binary; run it through `cargo run --release --bin figures`".into(),
        ));
    }
    let measured = crate::experiments::memory::run(c)?;
    let t1 = analytic_table1();
    let opt = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let mut rows = Vec::new();
    for r in &t1 {
        let family = format!("{:?}", r.arch);
        let arch = arch_of(&family).ok_or_else(|| {
            Error::Config(format!("table1: unknown architecture family {family}"))
        })?;
        let row = |mode: Source| {
            measured
                .summary
                .iter()
                .find(|s| s.arch == arch && s.mode == mode)
        };
        let (stored, recon) = (row(Source::Stored), row(Source::Reconstructed));
        // The mode the model describes: reconstructed, stored for the ResNet (the same step).
        let model = if arch.reconstructable() {
            recon
        } else {
            stored
        };
        let any = model.or(stored).or(recon);
        rows.push(MemoryRow {
            model: r.model.clone(),
            arch,
            channels: r.channels.clone(),
            pooling: r.pooling.clone(),
            paper_bytes_per_pixel: r.paper_bytes_per_pixel,
            analytic_bytes_per_pixel: r.bytes_per_pixel,
            paper_weight_bytes: r.paper_weight_bytes,
            analytic_weight_bytes: r.weight_bytes,
            paper_peak_bytes: r.paper_peak_bytes_text,
            analytic_peak_bytes: r.peak_bytes_text,
            measured_layers: any.map(|s| s.layers).unwrap_or(0),
            measured_channels: any.map(|s| s.channels.clone()).unwrap_or_default(),
            measured_blocks: any.map(|s| s.blocks.clone()).unwrap_or_default(),
            measured_analytic_bytes_per_pixel: opt(model.and_then(|s| s.analytic_bpx)),
            measured_stored_bytes_per_pixel: opt(stored.map(|s| s.measured_bpx)),
            measured_reconstructed_bytes_per_pixel: opt(recon.map(|s| s.measured_bpx)),
            measured_over_analytic: opt(model.and_then(|s| s.measured_over_analytic)),
            measured_marginal_bytes_per_pixel: opt(model.and_then(|s| s.marginal_bpx)),
            marginal_over_analytic: opt(model.and_then(|s| s.marginal_over_analytic)),
        });
    }
    let mut points = Vec::new();
    for &arch in &c.archs {
        for &mode in &c.modes {
            let sweeps: [(MemAxis, &[usize]); 3] = [
                (MemAxis::Depth, &c.depths),
                (MemAxis::Batch, &c.batches),
                (MemAxis::Size, &c.sizes),
            ];
            for (sweep, values) in sweeps {
                for &v in values {
                    let (depth, batch, size) = match sweep {
                        MemAxis::Depth => (v, c.batch, c.input_size),
                        MemAxis::Batch => (c.depth_for(arch), v, c.input_size),
                        MemAxis::Size => (c.depth_for(arch), c.batch, v),
                    };
                    if let Some(p) = measured.points.iter().find(|p| {
                        p.arch == arch
                            && p.mode == mode
                            && p.depth == depth
                            && p.batch == batch
                            && p.size == size
                    }) {
                        points.push(MemoryPoint {
                            sweep,
                            arch,
                            mode,
                            depth,
                            batch,
                            size,
                            layers: p.layers,
                            peak_bytes: p.peak_bytes,
                            act_peak_bytes: p.act_peak_bytes,
                            grad_bytes: p.grad_bytes,
                            tape_bytes: p.tape_bytes,
                            weight_bytes: p.weight_bytes,
                        });
                    }
                }
            }
        }
    }
    Ok(MemoryData {
        rows,
        analytic_markdown: table1_markdown(&t1),
        measured_markdown: measured.markdown(),
        points,
    })
}

// =============================================================================================
// rendering helpers

/// Number for CSVs: shortest round-trip digits (scientific when tiny or huge), `inf`, `nan`.
fn num_text(v: f64) -> String {
    if !v.is_finite() {
        fmt_f(v)
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e9) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Write `<out>/<id>.csv`: a `# ` provenance line, then the header and rows.
pub(crate) fn write_csv(
    out: &Path,
    id: &str,
    caption: &str,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<()> {
    let path = out.join(format!("{id}.csv"));
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::Config(format!("{}: {e}", path.display()));
    w.write_record(header).map_err(err)?;
    for r in rows {
        w.write_record(r).map_err(err)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let mut text = format!("# {}\n", caption.replace('\n', " ")).into_bytes();
    text.extend(body);
    write_atomic(&path, &text)
}

pub(crate) fn stem(out: &Path, id: &str) -> PathBuf {
    out.join(id)
}

/// Least-squares slope and intercept of `y` on `x` over finite pairs (None with < 2).
pub fn fit_line(pts: &[(f64, f64)]) -> Option<(f64, f64)> {
    let p: Vec<(f64, f64)> = pts
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if p.len() < 2 {
        return None;
    }
    let n = p.len() as f64;
    let (mx, my) = (
        p.iter().map(|v| v.0).sum::<f64>() / n,
        p.iter().map(|v| v.1).sum::<f64>() / n,
    );
    let sxx: f64 = p.iter().map(|v| (v.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = p.iter().map(|v| (v.0 - mx) * (v.1 - my)).sum();
    let slope = sxy / sxx;
    Some((slope, my - slope * mx))
}

pub(crate) fn expect_kind<'a>(
    r: &'a ResultFile,
    res: &Results,
    kind: &str,
) -> Result<&'a ResultData> {
    let got = match &r.data {
        ResultData::Alpha(_) => "alpha",
        ResultData::Trace(_) => "trace",
        ResultData::Scaling(_) => "scaling",
        ResultData::Precision(_) => "precision",
        ResultData::BnEps(_) => "bn-eps",
        ResultData::Memory(_) => "memory",
        ResultData::Tradeoff(_) => "tradeoff",
    };
    if got != kind {
        return Err(malformed(
            &res.path(&r.id),
            format!("holds `{got}` data, {} needs `{kind}` data", r.id),
        ));
    }
    Ok(&r.data)
}

pub(crate) fn depth_unit(arch: Arch) -> &'static str {
    if arch == Arch::Layerwise {
        "unit"
    } else {
        "block"
    }
}

// =============================================================================================
// fig05, fig06: alpha

/// Fig. 5: alpha vs rho of the toy batch norm, theory line and empirical markers.
pub fn fig05(res: &Results, out: &Path) -> Result<()> {
    alpha_figure("fig05", res, out)
}

/// Fig. 6: alpha vs slope n of the leaky ReLU, theory line and empirical markers.
pub fn fig06(res: &Results, out: &Path) -> Result<()> {
    alpha_figure("fig06", res, out)
}

fn alpha_figure(id: &str, res: &Results, out: &Path) -> Result<()> {
    let r = res.load(id)?;
    let ResultData::Alpha(d) = expect_kind(&r, res, "alpha")? else {
        unreachable!()
    };
    if d.points.is_empty() || d.theory.is_empty() {
        return Err(malformed(&res.path(id), "no alpha points"));
    }
    let (noise, samples) = match &r.config {
        ExperimentConfig::Alpha(c) => (c.noise_std, c.samples),
        _ => (f64::NAN, 0),
    };
    let (title, what, x_label, eq) = match d.layer {
        AlphaLayer::ToyBn => (
            "Numerical errors of batch normalisation: α vs ρ (toy layer)",
            "toy batch norm, γ = [1, ρ]",
            "ρ (log scale)",
            "eq. 23c",
        ),
        AlphaLayer::LeakyRelu => (
            "Numerical errors of invertible activations: α vs n (leaky ReLU)",
            "leaky ReLU, slope n",
            "negative slope n (log scale)",
            "eq. 32c",
        ),
    };
    let mut dtypes: Vec<String> = Vec::new();
    for p in &d.points {
        if !dtypes.contains(&p.dtype) {
            dtypes.push(p.dtype.clone());
        }
    }
    let rel = |p: &AlphaPoint| (p.empirical / p.theory - 1.0).abs();
    let mut a = Chart::new(
        format!("α of the {what}"),
        x_label,
        "α = SNR_in / SNR_out (dB)",
    );
    a.x_log = true;
    a.series.push(
        Series::new(
            format!("theory ({eq})"),
            d.theory.iter().map(|p| (p.x, db(p.y))).collect(),
            Style::Line,
        )
        .with_color(0),
    );
    let mut b = Chart::new(
        format!("empirical vs theory (σ_e = {noise:.0e}, {samples} samples)"),
        x_label,
        "|α_emp / α_theory − 1| (%)",
    );
    b.x_log = true;
    b.y_log = true;
    for (k, dt) in dtypes.iter().enumerate() {
        let pts: Vec<&AlphaPoint> = d.points.iter().filter(|p| &p.dtype == dt).collect();
        let worst = pts.iter().map(|p| rel(p)).fold(0.0, f64::max);
        a.series.push(
            Series::new(
                format!("empirical, {dt}"),
                pts.iter().map(|p| (p.x, db(p.empirical))).collect(),
                Style::Markers,
            )
            .with_color(k + 1),
        );
        // An exact match (alpha = 1 at rho = n = 1) has no place on a log axis: left out.
        b.series.push(
            Series::new(
                format!("{dt} (max {:.2} %)", 100.0 * worst),
                pts.iter().map(|p| (p.x, 100.0 * rel(p))).collect(),
                Style::Markers,
            )
            .with_color(k + 1),
        );
    }
    let (x0, x1) = (
        d.points.iter().map(|p| p.x).fold(f64::INFINITY, f64::min),
        d.points
            .iter()
            .map(|p| p.x)
            .fold(f64::NEG_INFINITY, f64::max),
    );
    b.series.push(
        Series::new(
            "3 % (test tolerance)",
            vec![(x0, 3.0), (x1, 3.0)],
            Style::Dashed,
        )
        .with_color(6),
    );
    reserve_legend_room(&mut a, 0.0, 0.4);
    let caption = format!(
        "{} Exact matches (relative error 0) are left out of the log-scale panel.",
        r.caption()
    );
    render(
        &Figure {
            title: title.into(),
            caption: caption.clone(),
            panels: vec![a, b],
        },
        &stem(out, id),
    )?;
    let rows: Vec<Vec<String>> = d
        .points
        .iter()
        .map(|p| {
            vec![
                p.dtype.clone(),
                num_text(p.x),
                num_text(p.theory),
                num_text(p.empirical),
                fmt_f(db(p.theory)),
                fmt_f(db(p.empirical)),
                num_text(rel(p)),
                fmt_f(p.snr_out_db),
                fmt_f(p.snr_in_db),
            ]
        })
        .collect();
    let x_name = if d.layer == AlphaLayer::ToyBn {
        "rho"
    } else {
        "slope"
    };
    write_csv(
        out,
        id,
        &caption,
        &[
            "dtype",
            x_name,
            "alpha_theory",
            "alpha_empirical",
            "alpha_theory_db",
            "alpha_empirical_db",
            "rel_err",
            "snr_out_db",
            "snr_in_db",
        ],
        &rows,
    )
}

/// Fix a linear y range around the panel's finite data with `bottom` and `top` extra fractions
/// of the data range, so that the legend finds an empty corner.
pub(crate) fn reserve_legend_room(c: &mut Chart, bottom: f64, top: f64) {
    let ys: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .collect();
    if let (Some(lo), Some(hi)) = (
        ys.iter().copied().reduce(f64::min),
        ys.iter().copied().reduce(f64::max),
    ) {
        let span = (hi - lo).max(1.0);
        c.y_range = Some((lo - (0.04 + bottom) * span, hi + (0.04 + top) * span));
    }
}

// =============================================================================================
// fig10, fig13: SNR traces

/// Fig. 10: SNR per reconstructed activation of a layer-wise network, units shaded.
pub fn fig10(res: &Results, out: &Path) -> Result<()> {
    trace_figure("fig10", res, out)
}

/// Fig. 13: SNR per reconstructed activation of a hybrid network, blocks shaded, block inputs
/// and hidden activations marked differently.
pub fn fig13(res: &Results, out: &Path) -> Result<()> {
    trace_figure("fig13", res, out)
}

/// The unit or block an entry belongs to (`s1.u0`, `s0.b2`), from its layer name.
fn group_of(layer: &str) -> Option<String> {
    let mut it = layer.split('.');
    let (s, u) = (it.next()?, it.next()?);
    let digits = |t: &str, p: char| {
        t.len() > 1 && t.starts_with(p) && t[1..].chars().all(|c| c.is_ascii_digit())
    };
    (digits(s, 's') && (digits(u, 'u') || digits(u, 'b'))).then(|| format!("{s}.{u}"))
}

/// Spans of consecutive entries of the same unit/block, with a small gap between neighbours.
pub(crate) fn group_spans(entries: &[TraceRow]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut current: Option<(String, usize, usize)> = None;
    for (i, e) in entries.iter().enumerate() {
        let g = group_of(&e.layer);
        match (&mut current, g) {
            (Some((name, _, last)), Some(g)) if *name == g => *last = i,
            (cur, g) => {
                if let Some((name, first, last)) = cur.take() {
                    spans.push(Span {
                        from: first as f64 - 0.42,
                        to: last as f64 + 0.42,
                        label: Some(name),
                    });
                }
                *cur = g.map(|g| (g, i, i));
            }
        }
    }
    if let Some((name, first, last)) = current {
        spans.push(Span {
            from: first as f64 - 0.42,
            to: last as f64 + 0.42,
            label: Some(name),
        });
    }
    // Too many labels overlap: keep every k-th.
    let k = spans.len().div_ceil(12).max(1);
    for (i, s) in spans.iter_mut().enumerate() {
        if i % k != 0 {
            s.label = None;
        }
    }
    spans
}

fn trace_figure(id: &str, res: &Results, out: &Path) -> Result<()> {
    let r = res.load(id)?;
    let ResultData::Trace(d) = expect_kind(&r, res, "trace")? else {
        unreachable!()
    };
    if d.runs.is_empty() || d.runs.iter().any(|run| run.entries.is_empty()) {
        return Err(malformed(&res.path(id), "a trace without entries"));
    }
    let dtype = r.provenance.dtype.clone();
    let hybrid = d.runs[0].entries.iter().any(|e| e.role == "hidden");
    let mut panels = Vec::new();
    let mut rows = Vec::new();
    for run in &d.runs {
        let title = if run.noise_std > 0.0 {
            format!(
                "output noise σ = {:.0e} (output SNR {:.1} dB)",
                run.noise_std, run.output_snr_db
            )
        } else {
            format!("{dtype} rounding only (depth law from 1st finite point)")
        };
        let mut c = Chart::new(
            title,
            "reconstructed activation, top → bottom (backward order)",
            "SNR of the reconstruction (dB)",
        );
        let top: Vec<&TraceRow> = run.entries.iter().filter(|e| e.role != "hidden").collect();
        if hybrid {
            c.series.push(
                Series::new(
                    "block inputs (block inverse)",
                    run.entries
                        .iter()
                        .filter(|e| e.role == "block-input")
                        .map(|e| (e.index as f64, e.snr_db))
                        .collect(),
                    Style::Markers,
                )
                .with_color(0),
            );
            c.series.push(
                Series::new(
                    "hidden (layer-wise inverses)",
                    run.entries
                        .iter()
                        .filter(|e| e.role == "hidden")
                        .map(|e| (e.index as f64, e.snr_db))
                        .collect(),
                    Style::Markers,
                )
                .with_color(1),
            );
        } else {
            c.series.push(
                Series::new(
                    format!("measured (vs stored {dtype})"),
                    run.entries
                        .iter()
                        .map(|e| (e.index as f64, e.snr_db))
                        .collect(),
                    Style::Markers,
                )
                .with_color(0),
            );
        }
        let law: Vec<(f64, f64)> = top
            .iter()
            .filter(|e| e.predicted_snr_db.is_finite())
            .map(|e| (e.index as f64, e.predicted_snr_db))
            .collect();
        if !law.is_empty() {
            c.series
                .push(Series::new("depth law, eq. 19", law, Style::Dashed).with_color(6));
        }
        let law_rounding: Vec<(f64, f64)> = top
            .iter()
            .filter(|e| e.predicted_snr_db_rounding.is_finite())
            .map(|e| (e.index as f64, e.predicted_snr_db_rounding))
            .collect();
        if !law_rounding.is_empty() {
            c.series.push(
                Series::new(
                    "eq. 19 + each inverse's rounding (power sum)",
                    law_rounding,
                    Style::Dotted,
                )
                .with_color(3),
            );
        }
        let law_coherent: Vec<(f64, f64)> = top
            .iter()
            .filter(|e| e.predicted_snr_db_coherent.is_finite())
            .map(|e| (e.index as f64, e.predicted_snr_db_coherent))
            .collect();
        if !law_coherent.is_empty() {
            c.series.push(
                Series::new(
                    "eq. 19 + rounding, amplitude sum (bound)",
                    law_coherent,
                    Style::Line,
                )
                .with_color(4),
            );
        }
        c.spans = group_spans(&run.entries);
        // Room above the data for the span labels, below it for the legend.
        reserve_legend_room(&mut c, 0.7, 0.12);
        panels.push(c);
        for e in &run.entries {
            rows.push(vec![
                num_text(run.noise_std),
                e.index.to_string(),
                e.layer.clone(),
                e.role.clone(),
                group_of(&e.layer).unwrap_or_default(),
                fmt_f(e.snr_db),
                fmt_f(e.snr_db_f64),
                fmt_f(e.alpha_db),
                fmt_f(e.predicted_snr_db),
                fmt_f(e.predicted_snr_db_rounding),
                fmt_f(e.predicted_snr_db_coherent),
                fmt_f(e.lip_forward),
                fmt_f(e.lip_inverse),
            ]);
        }
    }
    let kind = if hybrid {
        "hybrid"
    } else {
        "layer-wise invertible"
    };
    let title = format!(
        "SNR through the layers of a {kind} network ({} {}s, {} layers, n = {})",
        d.depth,
        depth_unit(d.arch),
        d.layers,
        d.slope
    );
    let caption = format!(
        "{} Shaded: one {} each.",
        r.caption(),
        if hybrid {
            "reversible block"
        } else {
            "unit [InvConv, InvBN, InvLeakyReLU]"
        }
    );
    render(
        &Figure {
            title,
            caption: caption.clone(),
            panels,
        },
        &stem(out, id),
    )?;
    write_csv(
        out,
        id,
        &caption,
        &[
            "noise_std",
            "index",
            "layer",
            "role",
            "group",
            "snr_db",
            "snr_db_f64",
            "alpha_db",
            "predicted_snr_db",
            "predicted_snr_db_rounding",
            "predicted_snr_db_coherent",
            "lip_forward",
            "lip_inverse",
        ],
        &rows,
    )
}

// =============================================================================================
// fig11, fig14: lowest SNR vs depth and slope

/// Fig. 11: lowest-layer SNR vs depth (fixed slope) and vs slope (depth 3), layer-wise.
pub fn fig11(res: &Results, out: &Path) -> Result<()> {
    scaling_figure("fig11", res, out)
}

/// Fig. 14: as [`fig11`] for the hybrid network (lowest block input).
pub fn fig14(res: &Results, out: &Path) -> Result<()> {
    scaling_figure("fig14", res, out)
}

fn zero_db_line(c: &mut Chart, xs: &[f64], values: &[f64]) {
    let lo = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    if lo < 30.0 && !xs.is_empty() {
        let (a, b) = (
            xs.iter().copied().fold(f64::INFINITY, f64::min),
            xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        c.series.push(
            Series::new("SNR = 1 (0 dB)", vec![(a, 0.0), (b, 0.0)], Style::Dashed).with_color(6),
        );
    }
}

fn scaling_figure(id: &str, res: &Results, out: &Path) -> Result<()> {
    let r = res.load(id)?;
    let ResultData::Scaling(d) = expect_kind(&r, res, "scaling")? else {
        unreachable!()
    };
    if d.depth_sweep.is_empty() && d.slope_sweep.is_empty() {
        return Err(malformed(&res.path(id), "no points"));
    }
    let hybrid = d.arch != Arch::Layerwise;
    let unit = depth_unit(d.arch);
    let what = if hybrid {
        "lowest block input"
    } else {
        "lowest layer input"
    };
    let mut panels = Vec::new();
    let sweeps: [(&Vec<LowestRow>, bool); 2] = [(&d.depth_sweep, true), (&d.slope_sweep, false)];
    for (rows, by_depth) in sweeps {
        if rows.is_empty() {
            continue;
        }
        let x = |p: &LowestRow| if by_depth { p.depth as f64 } else { p.slope };
        let (title, x_label) = if by_depth {
            (
                format!("vs depth N (n = {})", d.depth_sweep_slope),
                format!("depth N ({unit}s)"),
            )
        } else {
            (
                format!("vs negative slope n (depth {})", d.slope_sweep_depth),
                "negative slope n (log scale)".to_string(),
            )
        };
        let mut c = Chart::new(title, x_label, format!("SNR of the {what} (dB)"));
        c.x_log = !by_depth;
        let pts: Vec<(f64, f64)> = rows.iter().map(|p| (x(p), p.lowest_snr_db)).collect();
        let fit_text = if by_depth {
            depth_fit_text(d.arch, &pts)
        } else {
            fit_line(&pts.iter().map(|(x, y)| (x.log10(), *y)).collect::<Vec<_>>())
                .map(|(s, _)| format!(" (fit {s:+.1} dB/decade)"))
                .unwrap_or_default()
        };
        c.series.push(
            Series::new(
                format!("measured{fit_text}"),
                pts.clone(),
                Style::LineMarkers,
            )
            .with_color(0),
        );
        let law: Vec<(f64, f64)> = rows.iter().map(|p| (x(p), p.predicted_db)).collect();
        if law.iter().any(|p| p.1.is_finite()) {
            c.series
                .push(Series::new("depth law, eq. 19", law, Style::Dashed).with_color(1));
        }
        let law_rounding: Vec<(f64, f64)> = rows
            .iter()
            .map(|p| (x(p), p.predicted_rounding_db))
            .collect();
        if law_rounding.iter().any(|p| p.1.is_finite()) {
            c.series.push(
                Series::new(
                    "eq. 19 + each inverse's rounding (power sum)",
                    law_rounding,
                    Style::Dotted,
                )
                .with_color(3),
            );
        }
        let law_coherent: Vec<(f64, f64)> = rows
            .iter()
            .map(|p| (x(p), p.predicted_coherent_db))
            .collect();
        if law_coherent.iter().any(|p| p.1.is_finite()) {
            c.series.push(
                Series::new(
                    "eq. 19 + rounding, amplitude sum (bound)",
                    law_coherent,
                    Style::Line,
                )
                .with_color(4),
            );
        }
        if hybrid {
            c.series.push(
                Series::new(
                    "lowest of all, hidden included",
                    rows.iter().map(|p| (x(p), p.min_snr_db)).collect(),
                    Style::Markers,
                )
                .with_color(2),
            );
        }
        let xs: Vec<f64> = rows.iter().map(x).collect();
        zero_db_line(
            &mut c,
            &xs,
            &rows.iter().map(|p| p.lowest_snr_db).collect::<Vec<_>>(),
        );
        panels.push(c);
    }
    let kind = if hybrid {
        "hybrid"
    } else {
        "layer-wise invertible"
    };
    let title = format!("Impact of depth and negative slope on the numerical errors ({kind})");
    let caption = r.caption();
    render(
        &Figure {
            title,
            caption: caption.clone(),
            panels,
        },
        &stem(out, id),
    )?;
    let mut rows = Vec::new();
    for (name, rs) in [("depth", &d.depth_sweep), ("slope", &d.slope_sweep)] {
        for p in rs.iter() {
            rows.push(lowest_csv_row(name, p));
        }
    }
    write_csv(out, id, &caption, &LOWEST_HEADER, &rows)
}

/// The fitted loss with depth: dB per unit for layer-wise networks (linear in depth, the
/// depth law), dB per doubling of depth otherwise (the hybrid loses SNR roughly
/// logarithmically in depth).
fn depth_fit_text(arch: Arch, pts: &[(f64, f64)]) -> String {
    if arch == Arch::Layerwise {
        fit_line(pts)
            .map(|(s, _)| format!(" (fit {s:+.1} dB/unit)"))
            .unwrap_or_default()
    } else {
        fit_line(&pts.iter().map(|(x, y)| (x.log2(), *y)).collect::<Vec<_>>())
            .map(|(s, _)| format!(" (fit {s:+.1} dB per depth doubling)"))
            .unwrap_or_default()
    }
}

const LOWEST_HEADER: [&str; 15] = [
    "sweep",
    "arch",
    "dtype",
    "depth",
    "slope",
    "eps_i",
    "layers",
    "lowest_layer",
    "lowest_snr_db",
    "lowest_snr_db_f64",
    "predicted_db",
    "predicted_rounding_db",
    "predicted_coherent_db",
    "min_snr_db",
    "seconds",
];

fn lowest_csv_row(sweep: &str, p: &LowestRow) -> Vec<String> {
    vec![
        sweep.into(),
        p.arch.to_string(),
        p.dtype.clone(),
        p.depth.to_string(),
        num_text(p.slope),
        num_text(p.eps_i),
        p.layers.to_string(),
        p.lowest_layer.clone(),
        fmt_f(p.lowest_snr_db),
        fmt_f(p.lowest_snr_db_f64),
        fmt_f(p.predicted_db),
        fmt_f(p.predicted_rounding_db),
        fmt_f(p.predicted_coherent_db),
        fmt_f(p.min_snr_db),
        format!("{:.3}", p.seconds),
    ]
}

// =============================================================================================
// precision

/// Lowest SNR vs depth per storage dtype, one panel per architecture.
pub fn precision(res: &Results, out: &Path) -> Result<()> {
    let id = "precision";
    let r = res.load(id)?;
    let ResultData::Precision(d) = expect_kind(&r, res, "precision")? else {
        unreachable!()
    };
    if d.rows.is_empty() {
        return Err(malformed(&res.path(id), "no points"));
    }
    let mut archs: Vec<Arch> = Vec::new();
    let mut dtypes: Vec<String> = Vec::new();
    for p in &d.rows {
        if !archs.contains(&p.arch) {
            archs.push(p.arch);
        }
        if !dtypes.contains(&p.dtype) {
            dtypes.push(p.dtype.clone());
        }
    }
    let mut panels = Vec::new();
    for &arch in &archs {
        let unit = depth_unit(arch);
        let what = if arch == Arch::Layerwise {
            "lowest layer input"
        } else {
            "lowest block input"
        };
        let mut c = Chart::new(
            format!("{arch} (n = {})", d.slope),
            format!("depth N ({unit}s)"),
            format!("SNR of the {what} (dB)"),
        );
        let mut all = Vec::new();
        let mut xs = Vec::new();
        for (k, dt) in dtypes.iter().enumerate() {
            let pts: Vec<(f64, f64)> = d
                .rows
                .iter()
                .filter(|p| p.arch == arch && &p.dtype == dt)
                .map(|p| (p.depth as f64, p.lowest_snr_db))
                .collect();
            if pts.is_empty() {
                continue;
            }
            let fit = depth_fit_text(arch, &pts);
            all.extend(pts.iter().map(|p| p.1));
            xs.extend(pts.iter().map(|p| p.0));
            c.series
                .push(Series::new(format!("{dt}{fit}"), pts, Style::LineMarkers).with_color(k));
        }
        zero_db_line(&mut c, &xs, &all);
        reserve_legend_room(&mut c, 0.0, 0.45);
        panels.push(c);
    }
    let caption = format!("{} bf16 convolutions run in f32 and are rounded to bf16 (candle CPU); statistics in >= f32.", r.caption());
    render(
        &Figure {
            title: "Reconstruction SNR vs depth for each storage precision".into(),
            caption: caption.clone(),
            panels,
        },
        &stem(out, id),
    )?;
    let rows: Vec<Vec<String>> = d.rows.iter().map(|p| lowest_csv_row("depth", p)).collect();
    write_csv(out, id, &caption, &LOWEST_HEADER, &rows)
}

// =============================================================================================
// bn-eps

/// alpha of one batch norm with spread gammas, and the lowest SNR of layer-wise networks, vs
/// the `eps_i` reparameterisation (eq. 27).
pub fn bn_eps(res: &Results, out: &Path) -> Result<()> {
    let id = "bn-eps";
    let r = res.load(id)?;
    let ResultData::BnEps(d) = expect_kind(&r, res, "bn-eps")? else {
        unreachable!()
    };
    if d.alpha.is_empty() {
        return Err(malformed(&res.path(id), "no alpha points"));
    }
    let pos: Vec<&BnAlphaRow> = d.alpha.iter().filter(|a| a.eps_i > 0.0).collect();
    let zero = d.alpha.iter().find(|a| a.eps_i == 0.0);
    let (xmin, xmax) = (
        pos.iter().map(|a| a.eps_i).fold(f64::INFINITY, f64::min),
        pos.iter()
            .map(|a| a.eps_i)
            .fold(f64::NEG_INFINITY, f64::max),
    );
    let hline = |y: f64| vec![(xmin, y), (xmax, y)];
    let spread = match &r.config {
        ExperimentConfig::BnEps(c) => c.alpha.gamma_spread,
        _ => f64::NAN,
    };
    let mut a = Chart::new(
        format!(
            "one InvBatchNorm, {} channels, γ = exp({spread} N(0,1))",
            d.channels
        ),
        "ε_i (log scale)",
        "α (dB)",
    );
    a.x_log = true;
    a.series.push(
        Series::new(
            "theory, squared form (DESIGN 4)",
            pos.iter().map(|p| (p.eps_i, db(p.theory))).collect(),
            Style::Line,
        )
        .with_color(0),
    );
    a.series.push(
        Series::new(
            "paper's printed eq. 25g/26d",
            pos.iter().map(|p| (p.eps_i, db(p.printed))).collect(),
            Style::Dashed,
        )
        .with_color(1),
    );
    a.series.push(
        Series::new(
            "empirical",
            pos.iter().map(|p| (p.eps_i, db(p.empirical))).collect(),
            Style::Markers,
        )
        .with_color(2),
    );
    if let Some(z) = zero {
        if xmin.is_finite() {
            a.series.push(
                Series::new(
                    format!("ε_i = 0: empirical {:.1} dB", db(z.empirical)),
                    hline(db(z.empirical)),
                    Style::Dashed,
                )
                .with_color(6),
            );
        }
    }
    let mut panels = vec![a];
    if !d.snr.is_empty() {
        let arch = d.snr[0].arch;
        let mut b = Chart::new(
            format!(
                "{arch} networks (n = {}, γ spread as config)",
                d.snr[0].slope
            ),
            "ε_i (log scale)",
            "lowest reconstructed SNR (dB)",
        );
        b.x_log = true;
        let mut depths: Vec<usize> = Vec::new();
        for p in &d.snr {
            if !depths.contains(&p.depth) {
                depths.push(p.depth);
            }
        }
        for (k, &dep) in depths.iter().enumerate() {
            let rows: Vec<&LowestRow> = d.snr.iter().filter(|p| p.depth == dep).collect();
            b.series.push(
                Series::new(
                    format!("depth {dep}"),
                    rows.iter()
                        .filter(|p| p.eps_i > 0.0)
                        .map(|p| (p.eps_i, p.lowest_snr_db))
                        .collect(),
                    Style::LineMarkers,
                )
                .with_color(k),
            );
            if let Some(z) = rows.iter().find(|p| p.eps_i == 0.0) {
                if xmin.is_finite() && z.lowest_snr_db.is_finite() {
                    b.series.push(
                        Series::new(
                            format!("depth {dep}, ε_i = 0"),
                            hline(z.lowest_snr_db),
                            Style::Dashed,
                        )
                        .with_color(k),
                    );
                }
            }
        }
        reserve_legend_room(&mut b, 0.35, 0.0);
        panels.push(b);
    }
    let caption = format!(
        "{} ε_i = 0 (plain |γ|) is drawn as dashed reference lines on the log axis.",
        r.caption()
    );
    render(
        &Figure {
            title: "The ε_i reparameterisation of batch norm (eq. 27): α and reconstruction SNR"
                .into(),
            caption: caption.clone(),
            panels,
        },
        &stem(out, id),
    )?;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for p in &d.alpha {
        rows.push(vec![
            "alpha".into(),
            num_text(p.eps_i),
            String::new(),
            num_text(p.theory),
            num_text(p.printed),
            num_text(p.empirical),
            num_text(p.min_scale),
            String::new(),
            String::new(),
        ]);
    }
    for p in &d.snr {
        rows.push(vec![
            "snr".into(),
            num_text(p.eps_i),
            p.depth.to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            fmt_f(p.lowest_snr_db),
            fmt_f(p.lowest_snr_db_f64),
        ]);
    }
    write_csv(
        out,
        id,
        &caption,
        &[
            "part",
            "eps_i",
            "depth",
            "alpha_theory",
            "alpha_printed",
            "alpha_empirical",
            "min_abs_gamma_plus_eps_i",
            "lowest_snr_db",
            "lowest_snr_db_f64",
        ],
        &rows,
    )
}

// =============================================================================================
// table1

fn fmt_bytes(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x >= 1e9 {
        format!("{:.2} GB", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.1} MB", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} kB", x / 1e3)
    } else {
        format!("{x:.0} B")
    }
}

fn fmt_opt(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "-".into()
    }
}

/// Table 1: memory per architecture, the paper's figures, the analytic model and the measured
/// activation peak of the paper's configurations (the `memory --preset paper` run: its
/// `summary.csv` figures); also `table1.md`.
pub fn table1(res: &Results, out: &Path) -> Result<()> {
    let id = "table1";
    let r = res.load(id)?;
    let ResultData::Memory(d) = expect_kind(&r, res, "memory")? else {
        unreachable!()
    };
    if d.rows.is_empty() {
        return Err(malformed(&res.path(id), "no rows"));
    }
    let header: Vec<String> = [
        "Model",
        "Channels",
        "Pooling",
        "B/px paper",
        "B/px model",
        "M_θ paper",
        "M_θ model",
        "M paper",
        "M model",
        "measured net",
        "B/px model",
        "B/px stored",
        "B/px recon.",
        "meas./model",
        "marginal B/px",
        "marg./model",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = d
        .rows
        .iter()
        .map(|m| {
            vec![
                m.model.clone(),
                m.channels.clone(),
                m.pooling.clone(),
                fmt_opt(m.paper_bytes_per_pixel, 0),
                fmt_opt(m.analytic_bytes_per_pixel, 0),
                fmt_bytes(m.paper_weight_bytes),
                fmt_bytes(m.analytic_weight_bytes),
                fmt_bytes(m.paper_peak_bytes),
                fmt_bytes(m.analytic_peak_bytes),
                if m.measured_channels.is_empty() {
                    format!("{} ({} layers)", m.arch, m.measured_layers)
                } else {
                    format!(
                        "{} {} ({}, {} layers)",
                        m.arch, m.measured_channels, m.measured_blocks, m.measured_layers
                    )
                },
                fmt_opt(m.measured_analytic_bytes_per_pixel, 0),
                fmt_opt(m.measured_stored_bytes_per_pixel, 0),
                fmt_opt(m.measured_reconstructed_bytes_per_pixel, 0),
                fmt_opt(m.measured_over_analytic, 2),
                fmt_opt(m.measured_marginal_bytes_per_pixel, 0),
                fmt_opt(m.marginal_over_analytic, 2),
            ]
        })
        .collect();
    let setup = match &r.config {
        ExperimentConfig::Memory(c) => format!(
            "measured (counting allocator): activation peak of one training step (peak heap bytes above the live bytes before it, minus the parameter gradients) per input pixel, batch {} of {}x{}, width {}, {}, blocks per stage as in the measured-net column; marginal = slope of the activation peak over batches {:?} (fixed costs removed)",
            c.batch,
            c.input_size,
            c.input_size,
            c.width,
            if c.stages <= 1 {
                "one stage (no pooling)".to_string()
            } else {
                format!(
                    "{} stages (the first {} default poolings)",
                    c.stages,
                    c.stages - 1
                )
            },
            c.batches
        ),
        _ => String::new(),
    };
    let caption = format!(
        "{} B/px = M'_z + M'_g bytes per pixel; M = peak for 32 images of 240x240 (paper text, weights included in the model). Model = the analytic model of section 3 (measure::memory). Right block: {setup}; model B/px there is the analytic model of the measured network; meas./model and marginal use the mode the model describes (stored for ResNet, reconstructed otherwise).",
        r.caption()
    );
    render_table(
        "Table 1: training memory per architecture, paper vs analytic model vs measured",
        &caption,
        &header,
        &rows,
        &stem(out, id),
    )?;
    let csv_header = [
        "model",
        "arch",
        "channels",
        "pooling",
        "paper_bytes_per_pixel",
        "analytic_bytes_per_pixel",
        "paper_weight_bytes",
        "analytic_weight_bytes",
        "paper_peak_bytes_32x240x240",
        "analytic_peak_bytes_32x240x240",
        "measured_layers",
        "measured_channels",
        "measured_blocks",
        "measured_analytic_bpx",
        "measured_stored_bpx",
        "measured_reconstructed_bpx",
        "measured_over_analytic",
        "measured_marginal_bpx",
        "marginal_over_analytic",
    ];
    let csv_rows: Vec<Vec<String>> = d
        .rows
        .iter()
        .map(|m| {
            vec![
                m.model.clone(),
                m.arch.to_string(),
                m.channels.clone(),
                m.pooling.clone(),
                num_text(m.paper_bytes_per_pixel),
                num_text(m.analytic_bytes_per_pixel),
                num_text(m.paper_weight_bytes),
                num_text(m.analytic_weight_bytes),
                num_text(m.paper_peak_bytes),
                num_text(m.analytic_peak_bytes),
                m.measured_layers.to_string(),
                m.measured_channels.clone(),
                m.measured_blocks.clone(),
                num_text(m.measured_analytic_bytes_per_pixel),
                num_text(m.measured_stored_bytes_per_pixel),
                num_text(m.measured_reconstructed_bytes_per_pixel),
                num_text(m.measured_over_analytic),
                num_text(m.measured_marginal_bytes_per_pixel),
                num_text(m.marginal_over_analytic),
            ]
        })
        .collect();
    write_csv(out, id, &caption, &csv_header, &csv_rows)?;
    let mut md = format!(
        "# Table 1: training memory per architecture\n\n_{}_\n\n## Summary\n\n",
        r.caption()
    );
    md.push_str(&format!(
        "| {} |\n|{}|\n",
        header.join(" | "),
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i < 3 || i == 9 { "---" } else { "---:" })
            .collect::<Vec<_>>()
            .join("|")
    ));
    for row in &rows {
        md.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    md.push_str(&format!("\n{setup}.\n\n## Analytic model vs the paper (section 3, eq. 5-14, 34-35)\n\n{}\n\n## Measured (counting allocator)\n\n{}\n", d.analytic_markdown.trim(), d.measured_markdown.trim()));
    write_atomic(&out.join("table1.md"), md.as_bytes())
}

// =============================================================================================
// memory-scaling

/// Peak memory of one training step vs depth, batch and resolution, every architecture in both
/// modes (linear axes, memory from 0: colour and marker = architecture, solid = stored
/// activations, dashed = reconstructed). Reads the memory experiment's sweeps ([`MemoryData::points`]).
pub fn memory_scaling(res: &Results, out: &Path) -> Result<()> {
    let id = "memory-scaling";
    let r = res.load(id)?;
    let ResultData::Memory(d) = expect_kind(&r, res, "memory")? else {
        unreachable!()
    };
    if d.points.is_empty() {
        return Err(malformed(
            &res.path(id),
            "no measured points of the depth, batch and resolution sweeps (results cached before they were recorded): rerun with `--rerun`",
        ));
    }
    let mut archs: Vec<Arch> = Vec::new();
    for p in &d.points {
        if !archs.contains(&p.arch) {
            archs.push(p.arch);
        }
    }
    let modes = [Source::Stored, Source::Reconstructed];
    let sweeps: Vec<MemAxis> = [MemAxis::Depth, MemAxis::Batch, MemAxis::Size]
        .into_iter()
        .filter(|s| d.points.iter().any(|p| p.sweep == *s))
        .collect();
    let x_of = |sweep: MemAxis, p: &MemoryPoint| match sweep {
        MemAxis::Depth => p.depth as f64,
        MemAxis::Batch => p.batch as f64,
        MemAxis::Size => (p.size * p.size) as f64,
    };
    let curve = |sweep: MemAxis, arch: Arch, mode: Source, y: &dyn Fn(&MemoryPoint) -> f64| {
        let mut xy: Vec<(f64, f64)> = d
            .points
            .iter()
            .filter(|p| p.sweep == sweep && p.arch == arch && p.mode == mode)
            .map(|p| (x_of(sweep, p), y(p)))
            .collect();
        xy.sort_by(|a, b| a.0.total_cmp(&b.0));
        xy
    };
    let mb = |p: &MemoryPoint| p.peak_bytes as f64 / 1e6;
    // A curve that coincides (within 2%) with one drawn before it is hidden under it: say so.
    let same_as = |sweep: MemAxis, arch: Arch, mode: Source, xy: &[(f64, f64)]| {
        let close = |other: &[(f64, f64)]| {
            other.len() == xy.len()
                && other.iter().zip(xy).all(|(a, b)| {
                    a.0 == b.0 && (a.1 - b.1).abs() <= 0.02 * a.1.abs().max(b.1.abs())
                })
        };
        if mode == Source::Reconstructed && close(&curve(sweep, arch, Source::Stored, &mb)) {
            return " (= stored)".to_string();
        }
        archs
            .iter()
            .take_while(|&&a| a != arch)
            .find(|&&a| close(&curve(sweep, a, mode, &mb)))
            .map(|a| format!(" (≈ {a})"))
            .unwrap_or_default()
    };
    let mut panels = Vec::new();
    for (i, &sweep) in sweeps.iter().enumerate() {
        let first = d
            .points
            .iter()
            .find(|p| p.sweep == sweep)
            .expect("sweeps are non-empty");
        let (title, x_label) = match sweep {
            MemAxis::Depth => (
                format!(
                    "vs depth (batch {} of {}x{})",
                    first.batch, first.size, first.size
                ),
                "depth (blocks; units for layer-wise)".to_string(),
            ),
            MemAxis::Batch => (
                format!(
                    "vs batch (depth {}, {}x{} inputs)",
                    first.depth, first.size, first.size
                ),
                "batch (images)".to_string(),
            ),
            MemAxis::Size => (
                format!(
                    "vs resolution (depth {}, batch {})",
                    first.depth, first.batch
                ),
                "input resolution (pixels per image)".to_string(),
            ),
        };
        let mut c = Chart::new(title, x_label, "peak memory of one training step (MB)");
        // Legends: the stored series in the first panel, the reconstructed ones in the second
        // (colours and markers are the same in every panel); both when there is one panel.
        let labelled = |mode: Source| {
            sweeps.len() == 1
                || (i == 0 && mode == Source::Stored)
                || (i == 1 && mode != Source::Stored)
        };
        for (k, &arch) in archs.iter().enumerate() {
            for mode in modes {
                let xy = curve(sweep, arch, mode, &mb);
                if xy.is_empty() {
                    continue;
                }
                let label = if labelled(mode) {
                    format!(
                        "{arch}, {}{}",
                        mode.as_str(),
                        same_as(sweep, arch, mode, &xy)
                    )
                } else {
                    String::new()
                };
                if mode == Source::Stored {
                    c.series
                        .push(Series::new(label, xy, Style::LineMarkers).with_color(k));
                } else {
                    c.series
                        .push(Series::new(label, xy.clone(), Style::Dashed).with_color(k));
                    c.series
                        .push(Series::new("", xy, Style::Markers).with_color(k));
                }
            }
        }
        // Linear axes from 0: linear growth is a straight line, flat is flat, proportional
        // growth points at the origin. Room above the data for a legend.
        let max = |f: fn(&(f64, f64)) -> f64| {
            c.series
                .iter()
                .flat_map(|s| s.points.iter().map(f))
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max)
        };
        let (x_hi, y_hi) = (max(|p| p.0), max(|p| p.1));
        let legend = c.series.iter().any(|s| !s.label.is_empty());
        if x_hi > 0.0 && y_hi > 0.0 {
            c.x_range = Some((0.0, x_hi * 1.04));
            c.y_range = Some((0.0, y_hi * if legend { 1.3 } else { 1.06 }));
        }
        panels.push(c);
    }
    // Depth slopes (least squares over the depth sweep), kB per block.
    let mut slopes = Vec::new();
    for &arch in &archs {
        let slope = |mode: Source, y: &dyn Fn(&MemoryPoint) -> f64| {
            fit_line(&curve(MemAxis::Depth, arch, mode, y)).map(|(s, _)| s / 1e3)
        };
        let peak = |p: &MemoryPoint| p.peak_bytes as f64;
        let act = |p: &MemoryPoint| p.act_peak_bytes as f64;
        if let (Some(s), Some(rc), Some(ra)) = (
            slope(Source::Stored, &peak),
            slope(Source::Reconstructed, &peak),
            slope(Source::Reconstructed, &act),
        ) {
            slopes.push(format!("{arch} {s:.0} / {rc:.0} / {ra:.1}"));
        }
    }
    let setup = match &r.config {
        ExperimentConfig::Memory(c) => format!(
            "width {}, {}, ",
            c.width,
            if c.stages <= 1 {
                "one stage (no pooling)".to_string()
            } else {
                format!("{} stages (default poolings)", c.stages)
            }
        ),
        _ => String::new(),
    };
    let mut caption = format!(
        "{} Peak heap bytes of one training step (CPU, counting allocator) above the live bytes before it: weights and input excluded, parameter gradients included; {setup}MB = 10^6 bytes. Colour and marker: architecture; solid: stored activations, dashed: reconstructed.",
        r.caption()
    );
    if !slopes.is_empty() {
        caption.push_str(&format!(
            " Depth slopes (kB per block) stored / reconstructed / reconstructed without the parameter gradients: {}.",
            slopes.join(", ")
        ));
    }
    caption.push_str(" A ResNet has no inverse (its reconstructed step is its stored step); with one stage an i-RevNet is a RevNet (their lines coincide).");
    render(
        &Figure {
            title: "Peak training-step memory vs depth, batch and resolution (measured, counting allocator)".into(),
            caption: caption.clone(),
            panels,
        },
        &stem(out, id),
    )?;
    let header = [
        "sweep",
        "arch",
        "mode",
        "depth",
        "batch",
        "size",
        "pixels_per_image",
        "layers",
        "peak_bytes",
        "peak_mb",
        "act_peak_bytes",
        "grad_bytes",
        "tape_bytes",
        "weight_bytes",
    ];
    let mut rows = Vec::new();
    for &sweep in &sweeps {
        for &arch in &archs {
            for mode in modes {
                let mut pts: Vec<&MemoryPoint> = d
                    .points
                    .iter()
                    .filter(|p| p.sweep == sweep && p.arch == arch && p.mode == mode)
                    .collect();
                pts.sort_by(|a, b| x_of(sweep, a).total_cmp(&x_of(sweep, b)));
                for p in pts {
                    rows.push(vec![
                        match sweep {
                            MemAxis::Depth => "depth",
                            MemAxis::Batch => "batch",
                            MemAxis::Size => "size",
                        }
                        .to_string(),
                        arch.to_string(),
                        mode.as_str().to_string(),
                        p.depth.to_string(),
                        p.batch.to_string(),
                        p.size.to_string(),
                        (p.size * p.size).to_string(),
                        p.layers.to_string(),
                        p.peak_bytes.to_string(),
                        num_text(mb(p)),
                        p.act_peak_bytes.to_string(),
                        p.grad_bytes.to_string(),
                        p.tape_bytes.to_string(),
                        p.weight_bytes.to_string(),
                    ]);
                }
            }
        }
    }
    write_csv(out, id, &caption, &header, &rows)
}

// =============================================================================================
// training results: fig12, fig15, revnet-fig4

/// What the `train` binary's `run.json` says about the runs.
struct TrainProvenance {
    caption: String,
    classes: usize,
}

fn read_train_run_json(
    dir: &Path,
    id: &str,
    what: &str,
    csv_name: &str,
) -> Result<TrainProvenance> {
    let path = dir.join("run.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(missing(
                &path,
                format!("results for {id} incomplete: no run.json beside {csv_name}"),
            ))
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| malformed(&path, e))?;
    let s = |k: &str| {
        v.get(k).filter(|x| !x.is_null()).map(|x| match x {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let key = v.get("config").map(|c| {
        let t = c.to_string();
        let mut h: u64 = 0xcbf29ce484222325;
        for b in t.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        format!("{:08x}", h >> 32)
    });
    let data = v
        .get("data")
        .and_then(|d| d.get("source"))
        .and_then(|s| s.as_str())
        .unwrap_or("unknown data");
    let classes = v
        .get("data")
        .and_then(|d| d.get("classes"))
        .and_then(|c| c.as_u64())
        .unwrap_or(10) as usize;
    let init = v
        .get("init")
        .and_then(|s| s.as_str())
        .unwrap_or("init unknown");
    let caption = format!(
        "{id}: `train` {what} ({}/{csv_name}, config key {} in run.json), seeds {}, {}, {}; data {data}; results from rev {} ({})",
        dir.display(),
        key.unwrap_or_else(|| "?".into()),
        s("seeds").unwrap_or_else(|| "?".into()),
        s("dtype").unwrap_or_else(|| "?".into()),
        init,
        s("git_revision").unwrap_or_else(|| "unknown".into()),
        s("device").unwrap_or_else(|| "?".into()),
    );
    Ok(TrainProvenance { caption, classes })
}

/// Read a CSV with a header into rows of named fields; every `need`ed column must exist.
fn read_named_csv(
    path: &Path,
    need: &[&str],
) -> Result<Vec<std::collections::HashMap<String, String>>> {
    let mut rdr = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_path(path)
        .map_err(|e| malformed(path, e))?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| malformed(path, e))?
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(missing) = need.iter().find(|n| !header.iter().any(|h| h == *n)) {
        return Err(malformed(
            path,
            format!("no `{missing}` column (header: {})", header.join(",")),
        ));
    }
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| malformed(path, e))?;
        rows.push(
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(|s| s.to_string()))
                .collect(),
        );
    }
    Ok(rows)
}

fn field<T: std::str::FromStr>(
    row: &std::collections::HashMap<String, String>,
    name: &str,
    path: &Path,
    line: usize,
) -> Result<T> {
    let v = row.get(name).map(|s| s.trim()).unwrap_or("");
    v.parse::<T>()
        .map_err(|_| malformed(path, format!("row {line}: `{name}` = `{v}` is not valid")))
}

fn float_field(
    row: &std::collections::HashMap<String, String>,
    name: &str,
    path: &Path,
    line: usize,
) -> Result<f64> {
    let v = row.get(name).map(|s| s.trim()).unwrap_or("");
    parse_f(v).map_err(|_| {
        malformed(
            path,
            format!("row {line}: `{name}` = `{v}` is not a number"),
        )
    })
}

struct AccRow {
    depth: usize,
    slope: f64,
    mode: String,
    seed: u64,
    /// Counted accuracy (fraction): evaluated, or chance for a diverged run.
    test_acc: f64,
    diverged: bool,
    step: String,
    collapse_layer: String,
    sweep: String,
}

/// Fig. 12: accuracy with and without reconstruction, layer-wise (from the accuracy sweep).
pub fn fig12(res: &Results, out: &Path) -> Result<()> {
    accuracy_figure("fig12", Arch::Layerwise, res, out)
}

/// Fig. 15: as [`fig12`] for the hybrid network.
pub fn fig15(res: &Results, out: &Path) -> Result<()> {
    accuracy_figure("fig15", Arch::Hybrid, res, out)
}

const ACCURACY_HINT: &str =
    "run `cargo run --release --bin train -- --config experiments/accuracy.toml` first";

/// Vertical error bars `mean ± sd` as two-point line series (no legend entry).
fn error_bars(c: &mut Chart, pts: &[(f64, f64, f64)], color: usize) {
    for &(x, m, sd) in pts {
        if sd > 0.0 && m.is_finite() {
            c.series.push(
                Series::new("", vec![(x, m - sd), (x, m + sd)], Style::Line).with_color(color),
            );
        }
    }
}

fn accuracy_figure(id: &str, arch: Arch, res: &Results, out: &Path) -> Result<()> {
    let dir = &res.accuracy_dir;
    let path = dir.join("accuracy.csv");
    if !path.exists() {
        return Err(missing(
            &path,
            format!("results for {id} not available: {ACCURACY_HINT}"),
        ));
    }
    let prov = read_train_run_json(dir, id, "accuracy sweep", "accuracy.csv")?;
    let raw = read_named_csv(
        &path,
        &[
            "arch", "depth", "slope", "mode", "seed", "test_acc", "sweep", "status",
        ],
    )?;
    let chance = 1.0 / prov.classes.max(1) as f64;
    let mut rows = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let line = i + 2;
        if Arch::parse(r.get("arch").map(|s| s.as_str()).unwrap_or(""))
            .map_err(|e| malformed(&path, format!("row {line}: {e}")))?
            != arch
        {
            continue;
        }
        let diverged = r.get("status").is_some_and(|s| s != "ok");
        let acc = float_field(r, "test_acc", &path, line)?;
        rows.push(AccRow {
            depth: field(r, "depth", &path, line)?,
            slope: float_field(r, "slope", &path, line)?,
            mode: r.get("mode").cloned().unwrap_or_default(),
            seed: field(r, "seed", &path, line)?,
            // Results written before diverged runs were counted hold NaN: chance.
            test_acc: if diverged && !acc.is_finite() {
                chance
            } else {
                acc
            },
            diverged,
            step: r.get("steps").cloned().unwrap_or_default(),
            collapse_layer: r.get("collapse_layer").cloned().unwrap_or_default(),
            sweep: r.get("sweep").cloned().unwrap_or_default(),
        });
    }
    if rows.is_empty() {
        return Err(missing(
            &path,
            format!("results for {id} not available: no {arch} runs in it; {ACCURACY_HINT}"),
        ));
    }
    let seeds: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.seed).collect();
    let mut acc_panels = Vec::new();
    let mut diff_panels = Vec::new();
    let mut csv_rows: Vec<Vec<String>> = Vec::new();
    let mut diverged_total = (0usize, 0usize);
    // Every point's paired gap: (label, mean, std, seeds).
    let mut gaps: Vec<(String, f64, f64, usize)> = Vec::new();
    for by_slope in [false, true] {
        let tag = if by_slope { "slope" } else { "depth" };
        let sel: Vec<&AccRow> = rows.iter().filter(|r| r.sweep.contains(tag)).collect();
        if sel.is_empty() {
            continue;
        }
        let x = |r: &AccRow| if by_slope { r.slope } else { r.depth as f64 };
        let fixed = if by_slope {
            format!("depth {}", sel[0].depth)
        } else {
            format!("n = {}", sel[0].slope)
        };
        let (title, xl) = if by_slope {
            (
                format!("vs negative slope n ({fixed})"),
                "negative slope n (log scale)",
            )
        } else {
            (
                format!("vs depth N ({fixed})"),
                if arch == Arch::Layerwise {
                    "depth N (units)"
                } else {
                    "depth N (blocks)"
                },
            )
        };
        let mut c = Chart::new(
            format!("accuracy {title}"),
            xl,
            "test accuracy (%), mean ± std",
        );
        c.x_log = by_slope;
        let mut d = Chart::new(
            format!("stored - reconstructed {title}"),
            xl,
            "accuracy difference (points), mean ± std",
        );
        d.x_log = by_slope;
        let mut xs: Vec<f64> = sel.iter().map(|r| x(r)).collect();
        xs.sort_by(|a, b| a.total_cmp(b));
        xs.dedup();
        let mut per_mode: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(), Vec::new()];
        let mut diffs = Vec::new();
        for &xv in &xs {
            let at: Vec<&&AccRow> = sel.iter().filter(|r| x(r) == xv).collect();
            let mut stats = Vec::new();
            for (k, mode) in ["stored", "reconstructed"].iter().enumerate() {
                let accs: Vec<f64> = at
                    .iter()
                    .filter(|r| r.mode == *mode)
                    .map(|r| 100.0 * r.test_acc)
                    .collect();
                let (m, sd) = mean_std(&accs);
                if m.is_finite() {
                    per_mode[k].push((xv, m, sd));
                }
                let div: Vec<&&&AccRow> = at
                    .iter()
                    .filter(|r| r.mode == *mode && r.diverged)
                    .collect();
                if k == 0 {
                    diverged_total.0 += div.len();
                } else {
                    diverged_total.1 += div.len();
                }
                let where_: Vec<String> = div
                    .iter()
                    .map(|r| format!("seed {} step {} at {}", r.seed, r.step, r.collapse_layer))
                    .collect();
                stats.push((accs.len(), m, sd, div.len(), where_.join("; ")));
            }
            let mut paired = Vec::new();
            for seed in &seeds {
                let get = |mode: &str| {
                    at.iter()
                        .find(|r| r.mode == mode && r.seed == *seed)
                        .map(|r| 100.0 * r.test_acc)
                };
                if let (Some(a), Some(b)) = (get("stored"), get("reconstructed")) {
                    paired.push(a - b);
                }
            }
            let (dm, dsd) = mean_std(&paired);
            if dm.is_finite() {
                diffs.push((xv, dm, dsd));
                let label = if by_slope {
                    format!("n = {}", num_text(xv))
                } else {
                    format!("depth {xv}")
                };
                if !gaps.iter().any(|g| g.0 == label) {
                    gaps.push((label, dm, dsd, paired.len()));
                }
            }
            let (depth, slope) = (at[0].depth, at[0].slope);
            let f = |v: f64| {
                if v.is_finite() {
                    format!("{v:.2}")
                } else {
                    fmt_f(v)
                }
            };
            csv_rows.push(vec![
                tag.into(),
                arch.to_string(),
                depth.to_string(),
                num_text(slope),
                stats[0].0.max(stats[1].0).to_string(),
                f(stats[0].1),
                f(stats[0].2),
                f(stats[1].1),
                f(stats[1].2),
                f(dm),
                f(dsd),
                stats[0].3.to_string(),
                stats[1].3.to_string(),
                [stats[0].4.as_str(), stats[1].4.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; "),
            ]);
        }
        for (k, label) in ["without reconstruction (stored)", "with reconstruction"]
            .iter()
            .enumerate()
        {
            if !per_mode[k].is_empty() {
                c.series.push(
                    Series::new(
                        *label,
                        per_mode[k].iter().map(|p| (p.0, p.1)).collect(),
                        Style::LineMarkers,
                    )
                    .with_color(k),
                );
                error_bars(&mut c, &per_mode[k], k);
            }
        }
        let diverged: Vec<(f64, f64)> = sel
            .iter()
            .filter(|r| r.diverged)
            .map(|r| (x(r), 100.0 * chance))
            .collect();
        if !diverged.is_empty() {
            c.series.push(
                Series::new(
                    format!("diverged runs ({}, counted at chance)", diverged.len()),
                    diverged,
                    Style::Markers,
                )
                .with_color(3),
            );
        }
        if let (Some(a), Some(b)) = (xs.first(), xs.last()) {
            c.series.push(
                Series::new(
                    format!("chance ({:.0} %)", 100.0 * chance),
                    vec![(*a, 100.0 * chance), (*b, 100.0 * chance)],
                    Style::Dashed,
                )
                .with_color(6),
            );
            d.series
                .push(Series::new("", vec![(*a, 0.0), (*b, 0.0)], Style::Dashed).with_color(6));
        }
        if !diffs.is_empty() {
            d.series.push(
                Series::new(
                    "stored - reconstructed (same seed)",
                    diffs.iter().map(|p| (p.0, p.1)).collect(),
                    Style::LineMarkers,
                )
                .with_color(2),
            );
            error_bars(&mut d, &diffs, 2);
        }
        reserve_legend_room(&mut c, 0.0, 0.5);
        acc_panels.push(c);
        diff_panels.push(d);
    }
    if acc_panels.is_empty() {
        return Err(malformed(
            &path,
            format!("no {arch} runs tagged with a depth or slope sweep"),
        ));
    }
    let kind = if arch == Arch::Layerwise {
        "layer-wise invertible"
    } else {
        "hybrid"
    };
    // The reading: where the stored-minus-reconstructed gap is real (more than 1 point and more
    // than 2 standard errors of the paired difference), and how small it is elsewhere.
    let real: Vec<String> = gaps
        .iter()
        .filter(|g| g.1 > 1.0 && g.1 > 2.0 * g.2 / (g.3 as f64).sqrt())
        .map(|g| format!("{} ({:.1} ± {:.1})", g.0, g.1, g.2))
        .collect();
    let rest = gaps
        .iter()
        .filter(|g| !(g.1 > 1.0 && g.1 > 2.0 * g.2 / (g.3 as f64).sqrt()))
        .map(|g| g.1.abs())
        .fold(0.0f64, f64::max);
    let reading = if real.is_empty() {
        format!(
            "Reconstruction costs no accuracy beyond noise at any point (largest mean gap {rest:.1} points)."
        )
    } else {
        format!(
            "Reconstruction costs accuracy (gap > 1 point and > 2 standard errors) at {}; elsewhere the mean gap is at most {rest:.1} points.",
            real.join(", ")
        )
    };
    let caption = format!(
        "{}. Mean ± sample std over {} seed(s); every run counts: {} stored and {} reconstructed run(s) diverged and are counted at chance (x markers). {reading}",
        prov.caption,
        seeds.len(),
        diverged_total.0,
        diverged_total.1
    );
    let panels = acc_panels.into_iter().chain(diff_panels).collect();
    render(
        &Figure {
            title: format!("Impact of the numerical errors on accuracy ({kind})"),
            caption: caption.clone(),
            panels,
        },
        &stem(out, id),
    )?;
    write_csv(
        out,
        id,
        &caption,
        &[
            "sweep",
            "arch",
            "depth",
            "slope",
            "seeds",
            "stored_mean_pct",
            "stored_std_pct",
            "reconstructed_mean_pct",
            "reconstructed_std_pct",
            "diff_mean_pct",
            "diff_std_pct",
            "stored_diverged",
            "reconstructed_diverged",
            "diverged_where",
        ],
        &csv_rows,
    )
}

/// Gomez et al. Fig. 4: gradient angle between stored and reconstructed activations, loss and
/// error through training (from the angle experiment).
pub fn revnet_fig4(res: &Results, out: &Path) -> Result<()> {
    let id = "revnet-fig4";
    let dir = &res.angles_dir;
    let path = dir.join("angles.csv");
    if !path.exists() {
        return Err(missing(&path, format!("results for {id} not available: run `cargo run --release --bin train -- --config experiments/revnet-fig4.toml` first")));
    }
    let prov = read_train_run_json(dir, id, "gradient-angle experiment", "angles.csv")?;
    let raw = read_named_csv(
        &path,
        &[
            "arch",
            "depth",
            "slope",
            "seed",
            "step",
            "mode",
            "loss",
            "train_err",
            "test_err",
            "angle_deg",
        ],
    )?;
    // One curve per network and mode: the mean over seeds at each probe step, with the
    // smallest and largest seed's angle dashed when there are several seeds.
    struct Run {
        label: String,
        /// step -> per seed (angle, loss, train_err, test_err)
        pts: std::collections::BTreeMap<usize, Vec<(f64, f64, f64, f64)>>,
    }
    let mut runs: Vec<(String, Run)> = Vec::new();
    let seeds: std::collections::BTreeSet<String> =
        raw.iter().filter_map(|r| r.get("seed").cloned()).collect();
    for (i, r) in raw.iter().enumerate() {
        let line = i + 2;
        let g = |k: &str| r.get(k).cloned().unwrap_or_default();
        let key = format!("{}|{}|{}|{}", g("arch"), g("depth"), g("slope"), g("mode"));
        let step: usize = field::<usize>(r, "step", &path, line)?;
        let p = (
            float_field(r, "angle_deg", &path, line)?,
            float_field(r, "loss", &path, line)?,
            float_field(r, "train_err", &path, line)?,
            float_field(r, "test_err", &path, line)?,
        );
        let run = match runs.iter().position(|(k, _)| *k == key) {
            Some(i) => &mut runs[i].1,
            None => {
                let label = format!("{} d{}, trained {}", g("arch"), g("depth"), g("mode"));
                runs.push((
                    key,
                    Run {
                        label,
                        pts: Default::default(),
                    },
                ));
                &mut runs.last_mut().expect("just pushed").1
            }
        };
        run.pts.entry(step).or_default().push(p);
    }
    if runs.is_empty() {
        return Err(malformed(&path, "no probes"));
    }
    let mean = |v: &[(f64, f64, f64, f64)], f: fn(&(f64, f64, f64, f64)) -> f64| {
        v.iter().map(f).sum::<f64>() / v.len() as f64
    };
    // Log scale when every angle is positive: RevNet's and the hybrid's angles (1e-5 degrees)
    // and the layer-wise network's (degrees) differ by five orders of magnitude.
    let all_positive = runs.iter().all(|(_, r)| {
        r.pts
            .values()
            .flatten()
            .all(|p| p.0 > 0.0 && p.0.is_finite())
    });
    let mut a = Chart::new(
        "gradient angle, stored vs reconstructed",
        "training step",
        if all_positive {
            "angle (degrees, log scale)"
        } else {
            "angle (degrees)"
        },
    );
    a.y_log = all_positive;
    let mut l = Chart::new(
        "training cross-entropy",
        "training step",
        "loss (batch cross-entropy)",
    );
    let mut e = Chart::new("classification error", "training step", "error (%)");
    let few = runs.len() <= 3;
    let many_seeds = seeds.len() > 1;
    for (k, (_, run)) in runs.iter().enumerate() {
        let steps: Vec<f64> = run.pts.keys().map(|s| *s as f64).collect();
        let line = |f: fn(&(f64, f64, f64, f64)) -> f64, scale: f64| -> Vec<(f64, f64)> {
            steps
                .iter()
                .zip(run.pts.values())
                .map(|(s, v)| (*s, scale * mean(v, f)))
                .collect()
        };
        let suffix = if many_seeds {
            format!(" (mean of {} seeds)", seeds.len())
        } else {
            String::new()
        };
        a.series.push(
            Series::new(
                format!("{}{suffix}", run.label),
                line(|p| p.0, 1.0),
                Style::LineMarkers,
            )
            .with_color(k),
        );
        if many_seeds {
            for pick in [f64::min, f64::max] {
                let pts = steps
                    .iter()
                    .zip(run.pts.values())
                    .map(|(s, v)| (*s, v.iter().map(|p| p.0).fold(f64::NAN, pick)))
                    .collect();
                a.series
                    .push(Series::new("", pts, Style::Dashed).with_color(k));
            }
        }
        l.series
            .push(Series::new(run.label.clone(), line(|p| p.1, 1.0), Style::Line).with_color(k));
        e.series.push(
            Series::new(
                format!("{} (test)", run.label),
                line(|p| p.3, 100.0),
                Style::Line,
            )
            .with_color(k),
        );
        if few {
            e.series
                .push(Series::new("", line(|p| p.2, 100.0), Style::Dashed).with_color(k));
        }
    }
    if all_positive {
        // Room above the curves for the legend (log axis: in decades).
        let ys: Vec<f64> = a
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        if let (Some(lo), Some(hi)) = (
            ys.iter().copied().reduce(f64::min),
            ys.iter().copied().reduce(f64::max),
        ) {
            let decades = (hi / lo).log10().max(1.0);
            a.y_range = Some((
                lo / 10f64.powf(0.05 * decades),
                hi * 10f64.powf(0.6 * decades),
            ));
        }
    }
    let caption = format!(
        "{}.{}{}",
        prov.caption,
        if many_seeds {
            " Angle: mean over seeds, dashed the smallest and largest seed."
        } else {
            ""
        },
        if few {
            " Error: solid test, dashed training (eval mode, probe subsets)."
        } else {
            " Error: test (eval mode, probe subset)."
        }
    );
    render(
        &Figure {
            title:
                "Gradients from reconstructed activations through training (Gomez et al. Fig. 4)"
                    .into(),
            caption: caption.clone(),
            panels: vec![a, l, e],
        },
        &stem(out, id),
    )?;
    let mut rows = Vec::new();
    for (key, run) in &runs {
        let parts: Vec<&str> = key.split('|').collect();
        for (step, v) in &run.pts {
            let angles: Vec<f64> = v.iter().map(|p| p.0).collect();
            let (m, sd) = mean_std(&angles);
            let mut r: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
            r.extend([
                v.len().to_string(),
                step.to_string(),
                fmt_f(m),
                fmt_f(sd),
                fmt_f(angles.iter().copied().fold(f64::NAN, f64::min)),
                fmt_f(angles.iter().copied().fold(f64::NAN, f64::max)),
                fmt_f(mean(v, |p| p.1)),
                fmt_f(mean(v, |p| p.2)),
                fmt_f(mean(v, |p| p.3)),
            ]);
            rows.push(r);
        }
    }
    write_csv(
        out,
        id,
        &caption,
        &[
            "arch",
            "depth",
            "slope",
            "mode",
            "seeds",
            "step",
            "angle_deg_mean",
            "angle_deg_std",
            "angle_deg_min",
            "angle_deg_max",
            "loss_mean",
            "train_err_mean",
            "test_err_mean",
        ],
        &rows,
    )
}

// =============================================================================================
// tradeoff: memory, time and exactness

/// The label of a frontier point: its source (`k=K` for a checkpointed one, `rec` for
/// reconstructed per layer, `alg1` for Algorithm 1), then its lowest-layer SNR (dB; `∞` when
/// exact) and gradient angle (degrees).
fn tradeoff_label(p: &TradeoffPoint) -> String {
    let snr = if p.lowest_snr_db == f64::INFINITY {
        "∞".to_string()
    } else {
        format!("{:.0} dB", p.lowest_snr_db)
    };
    let angle = if p.grad_angle_deg == 0.0 {
        "0°".to_string()
    } else if p.grad_angle_deg >= 0.1 {
        format!("{:.1}°", p.grad_angle_deg)
    } else {
        format!("{:.0e}°", p.grad_angle_deg)
    };
    let what = match (p.source.as_str(), p.segment) {
        (_, Some(k)) => format!("k={k}"),
        ("reconstructed", _) => "rec".to_string(),
        ("algorithm1", _) => "alg1".to_string(),
        (other, _) => other.to_string(),
    };
    format!("{what} {snr}, {angle}")
}

/// The frontier (issue 16): one panel per architecture, measured peak activation bytes per
/// input pixel (log) against step time relative to the stored step; colour and marker = depth.
/// Every point is labelled with its source (`stored`, `k=K` checkpointed, `rec` reconstructed
/// per layer, `alg1` Algorithm 1), its lowest-layer SNR and its gradient angle. Writes
/// `tradeoff.{png,svg,csv}`.
pub fn tradeoff(res: &Results, out: &Path) -> Result<()> {
    let id = "tradeoff";
    let r = res.load(id)?;
    let ResultData::Tradeoff(d) = expect_kind(&r, res, "tradeoff")? else {
        unreachable!()
    };
    if d.points.is_empty() {
        return Err(malformed(&res.path(id), "no points"));
    }
    let mut archs: Vec<Arch> = Vec::new();
    let mut depths: Vec<usize> = Vec::new();
    for p in &d.points {
        if !archs.contains(&p.arch) {
            archs.push(p.arch);
        }
        if !depths.contains(&p.depth) {
            depths.push(p.depth);
        }
    }
    depths.sort_unstable();
    let xy = |p: &TradeoffPoint| (p.time_ratio, p.bytes_per_pixel);
    let mut panels = Vec::new();
    for &arch in &archs {
        let mut c = Chart::new(
            format!("{arch}"),
            "step time / stored step time",
            "peak activation bytes per input pixel",
        );
        c.y_log = true;
        for (ci, &depth) in depths.iter().enumerate() {
            let of = |source: &str| -> Vec<&TradeoffPoint> {
                d.points
                    .iter()
                    .filter(|p| p.arch == arch && p.depth == depth && p.source == source)
                    .collect()
            };
            let mut ckpt = of("checkpointed");
            ckpt.sort_by_key(|p| p.segment);
            let stored = of("stored");
            let mut pts: Vec<&TradeoffPoint> = stored;
            pts.extend(ckpt.iter().copied());
            pts.extend(of("reconstructed"));
            pts.extend(of("algorithm1"));
            if !pts.is_empty() {
                c.series.push(
                    Series::new(
                        format!("D={depth}"),
                        pts.iter().map(|p| xy(p)).collect(),
                        Style::Markers,
                    )
                    .with_color(ci)
                    .with_labels(pts.iter().map(|p| tradeoff_label(p)).collect()),
                );
            }
        }
        panels.push(c);
    }
    let caption = format!(
        "{} Per architecture and depth D (colour): the activation peak of one training step (heap bytes above those live before it, parameter gradients excluded, counting allocator) per input pixel, against its median time over the stored step's (sources interleaved on one CPU; ratios depend on the CPU). Labels: the source (stored; k=K: checkpointed with K = 1, 2, 4, ..., ceil(sqrt(D)) and D units or blocks per segment, k = D being the stored step; rec: reconstructed per layer, for the hybrid its block inverse with the hidden activations rebuilt layer-wise; alg1: Algorithm 1), then the lowest-layer reconstruction SNR against the stored trace and the whole-network gradient angle to the stored gradients, measured on the same batch (∞ and 0° measured for stored and checkpointed).",
        r.caption()
    );
    render(
        &Figure {
            title: "Memory, time and exactness: stored, checkpointed and reconstructed activations"
                .into(),
            caption: caption.clone(),
            panels,
        },
        &stem(out, id),
    )?;
    let header = [
        "arch",
        "depth",
        "source",
        "segment",
        "bytes_per_pixel",
        "act_peak_bytes",
        "peak_bytes",
        "median_s",
        "time_ratio",
        "lowest_snr_db",
        "lowest_layer",
        "grad_angle_deg",
    ];
    let rows: Vec<Vec<String>> = d
        .points
        .iter()
        .map(|p| {
            vec![
                p.arch.to_string(),
                p.depth.to_string(),
                p.source.clone(),
                p.segment.map_or(String::new(), |k| k.to_string()),
                num_text(p.bytes_per_pixel),
                p.act_peak_bytes.to_string(),
                p.peak_bytes.to_string(),
                num_text(p.median_s),
                num_text(p.time_ratio),
                num_text(p.lowest_snr_db),
                p.lowest_layer.clone(),
                num_text(p.grad_angle_deg),
            ]
        })
        .collect();
    write_csv(out, id, &caption, &header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `figures --device`: every experiment takes the device; a GPU is part of the key (its
    /// results are not reused as the CPU's), `cpu` keeps the keys of configs that never named
    /// a device.
    #[test]
    fn set_device_reaches_every_experiment_and_keys_gpu_results_apart() {
        let configs = [
            ExperimentConfig::Alpha(AlphaConfig::default()),
            ExperimentConfig::Trace(TraceConfig::default()),
            ExperimentConfig::Scaling(ScalingConfig::default()),
            ExperimentConfig::Precision(PrecisionConfig::default()),
            ExperimentConfig::BnEps(BnEpsConfig::default()),
            ExperimentConfig::Memory(MemoryConfig::default()),
        ];
        for cfg in configs {
            assert_eq!(cfg.device(), "cpu");
            let mut same = cfg.clone();
            same.set_device("cpu");
            assert_eq!(same.key(), cfg.key(), "{}", cfg.kind());
            let mut gpu = cfg.clone();
            gpu.set_device("cuda:0");
            assert_eq!(gpu.device(), "cuda:0");
            assert_ne!(gpu.key(), cfg.key(), "{}", cfg.kind());
        }
    }

    #[test]
    fn groups_and_spans() {
        assert_eq!(group_of("s1.u0.conv").as_deref(), Some("s1.u0"));
        assert_eq!(group_of("s0.b12").as_deref(), Some("s0.b12"));
        assert_eq!(group_of("pool0"), None);
        assert_eq!(group_of("stem"), None);
        let row = |i: usize, l: &str| TraceRow {
            index: i,
            layer: l.into(),
            role: "layer".into(),
            snr_db: 1.0,
            snr_db_f64: 1.0,
            alpha_db: 0.0,
            predicted_snr_db: 1.0,
            predicted_snr_db_rounding: 1.0,
            predicted_snr_db_coherent: 1.0,
            lip_forward: f64::NAN,
            lip_inverse: f64::NAN,
        };
        let e = vec![
            row(0, "s1.u0.act"),
            row(1, "s1.u0.bn"),
            row(2, "pool0"),
            row(3, "s0.u1.act"),
            row(4, "s0.u0.act"),
        ];
        let s = group_spans(&e);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].label.as_deref(), Some("s1.u0"));
        assert!((s[0].from + 0.42).abs() < 1e-12 && (s[0].to - 1.42).abs() < 1e-12);
    }

    #[test]
    fn fit_and_key() {
        let (s, b) = fit_line(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0), (3.0, f64::INFINITY)]).unwrap();
        assert!((s - 2.0).abs() < 1e-12 && (b - 1.0).abs() < 1e-12);
        let a = ExperimentConfig::Alpha(AlphaConfig::default());
        let c = AlphaConfig {
            points: 3,
            ..AlphaConfig::default()
        };
        assert_ne!(a.key(), ExperimentConfig::Alpha(c).key());
        assert_eq!(
            a.key(),
            ExperimentConfig::Alpha(AlphaConfig::default()).key()
        );
    }
}
