//! The alpha experiment (`fig05`, `fig06`): config, run, results.

use crate::backend::Backend;
use crate::device::{f64_device, has_f64, DeviceSpec, Precision};
use crate::error::Result;
use crate::experiments::net_settings::is_cpu;
use crate::layers::{BatchNormConfig, InvBatchNorm, InvLeakyReLU, ParamStore};
use crate::measure::alpha::*;
use crate::results::text::num;
use candle_core::{DType, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

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
    /// Samples of the Gaussian input. The default, 2 000 000, keeps every f64 point of fig05
    /// and fig06 within 1% of its closed form. The leaky ReLU sets it: its measured alpha has a
    /// relative sampling std of `2 / sqrt(samples)` (0.14%; 0.63% at 100 000, where the worst
    /// point was 1.66% off) on top of a bias of about `4 noise_std / (3 pi n)` (0.42% at
    /// `n = 1e-3`, noise 1e-5: eq. 32c assumes noise << signal, and the few negative inputs
    /// whose noise flips their sign are inverted by the wrong branch), which leaves four stds
    /// to 1%. The toy batch norm's std is about `sqrt(2 / samples)` (0.1%). f32 has a floor of
    /// its own where the output's rounding step exceeds the noise (toy batch norm, large
    /// `rho`), which no sample count moves.
    pub samples: usize,
    /// Std of the white noise added to the output.
    pub noise_std: f64,
    /// Seed of input and noise.
    pub seed: u64,
    /// Dtypes of layer, input and output (one marker series each).
    pub dtypes: Vec<Precision>,
    /// Backend computing the layer (`kernels`, the default, or `candle`); left out of the
    /// serialised config (and so of its key) when default.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
    /// Device (`cpu`, `cuda[:N]`, `metal[:N]`); the f64 points run on the CPU when the device
    /// has no f64. Left out of the serialised config (and so of its key) when `cpu`.
    #[serde(skip_serializing_if = "is_cpu")]
    pub device: DeviceSpec,
}

impl Default for AlphaConfig {
    fn default() -> Self {
        AlphaConfig {
            layer: AlphaLayer::ToyBn,
            from: 1e-3,
            to: 1e3,
            points: 25,
            theory_points: 200,
            samples: 2_000_000,
            noise_std: 1e-5,
            seed: 0,
            dtypes: vec![Precision::F64, Precision::F32],
            backend: Backend::default(),
            device: DeviceSpec::Cpu,
        }
    }
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
    pub dtype: Precision,
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

pub(crate) fn log_space(from: f64, to: f64, n: usize) -> Vec<f64> {
    let (a, b) = (from.log10(), to.log10());
    (0..n)
        .map(|k| 10f64.powf(a + (b - a) * k as f64 / (n - 1) as f64))
        .collect()
}

pub(crate) fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

pub(crate) fn run_alpha(c: &AlphaConfig) -> Result<AlphaData> {
    let device = c.device.open()?;
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
    for &precision in &c.dtypes {
        let dtype = precision.dtype();
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
                    dtype: precision,
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
