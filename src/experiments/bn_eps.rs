//! The batch-norm eps experiment (`bn-eps`): config, run, results.

use crate::device::{f64_device, has_f64, Precision};
use crate::error::{Error, Result};
use crate::experiments::net_settings::NetSettings;
use crate::experiments::snr_sweep::Point;
use crate::experiments::trace::{lowest_row, run_points, LowestRow};
use crate::layers::{BatchNormConfig, InvBatchNorm, ParamStore};
use crate::measure::alpha::*;
use crate::nets::{Arch, NetOptions};
use crate::results::text::num;
use candle_core::DType;
use serde::{Deserialize, Serialize};

/// The single-layer part of the `bn-eps` experiment: alpha of one invertible batch norm with
/// spread gammas, unit Gaussian input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BnAlphaSettings {
    /// Channels.
    pub channels: usize,
    /// Samples of the input. The default, 500 000, keeps the measured alpha within 1% of the
    /// squared formula at every `eps_i`: its relative sampling std is at most
    /// `sqrt(2 (channels - 1) / (channels samples))` (0.19% at 16 channels; 0.97% at 20 000,
    /// where the worst `eps_i` was 1.37% off), so 1% is five stds.
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
            samples: 500_000,
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
    pub dtype: Precision,
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
            dtype: Precision::F32,
            alpha: BnAlphaSettings::default(),
            snr: BnSnrSettings::default(),
            net: NetSettings {
                options: NetOptions {
                    gamma_spread: 1.5,
                    ..NetOptions::default()
                },
                ..NetSettings::default()
            },
        }
    }
}

/// alpha of one batch norm at one `eps_i`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BnAlphaRow {
    /// `eps_i`.
    #[serde(with = "num")]
    pub eps_i: f64,
    /// Squared general formula (docs/design.md section 4).
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

pub(crate) fn bn_eps_points(c: &BnEpsConfig) -> Vec<Point> {
    let mut pts = Vec::new();
    for &d in &c.snr.depths {
        for &e in &c.eps_i {
            pts.push(
                c.net
                    .point(pts.len(), c.snr.arch, d, c.snr.slope, e, c.dtype, c.seed),
            );
        }
    }
    pts
}

pub(crate) fn run_bn_eps(c: &BnEpsConfig) -> Result<BnEpsData> {
    let dtype = c.dtype.dtype();
    let device = c.net.device.open()?;
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
            .ok_or_else(|| Error::internal("bn-eps", "batch norm recorded no statistics"))?;
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
    let out = run_points(
        &c.net.sweep_config(0.0, true, &bn_eps_points(c)),
        &bn_eps_points(c),
    )?;
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
