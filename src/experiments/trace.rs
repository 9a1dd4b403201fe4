//! The layer-wise SNR trace experiment (`fig10`, `fig13`): config, run, results.

use crate::device::Precision;
use crate::error::Result;
use crate::experiments::net_settings::NetSettings;
use crate::experiments::snr_sweep::{run_point, Point, SweepConfig};
use crate::layers::Role;
use crate::measure::trace::{SnrTrace, TracePoint};
use crate::nets::Arch;
use crate::results::text::num;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

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
    pub dtype: Precision,
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
            dtype: Precision::F32,
            noise_std: 1e-3,
            lipschitz: false,
            net: NetSettings::default(),
        }
    }
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
    /// Linearised-law prediction, dB ([`crate::measure::law`], the recommended law; NaN for
    /// hidden entries).
    #[serde(with = "num")]
    pub predicted_snr_db_law: f64,
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
    pub dtype: Precision,
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
    /// Linearised-law prediction of it ([`crate::measure::law`]), dB; NaN without the depth
    /// law.
    #[serde(with = "num")]
    pub predicted_law_db: f64,
    /// Smallest SNR of all entries (hidden included), dB.
    #[serde(with = "num")]
    pub min_snr_db: f64,
    /// Seconds the point took (wall time; written to the figure's `<id>.timings.csv`, never
    /// to its data CSV).
    #[serde(with = "num")]
    pub seconds: f64,
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
pub(crate) fn run_points(
    sweep: &SweepConfig,
    points: &[Point],
) -> Result<Vec<(Point, SnrTrace, usize, f64)>> {
    let device = sweep.device.open()?;
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

pub(crate) fn lowest_row(p: &Point, trace: &SnrTrace, layers: usize, seconds: f64) -> LowestRow {
    let predicted = anchored_prediction(&trace.points);
    let lowest_idx = trace.points.iter().rposition(|t| t.role != Role::Hidden);
    let (name, snr, snr64, pred, pred_rounding, pred_coherent, pred_law) = match lowest_idx {
        Some(i) => {
            let t = &trace.points[i];
            (
                t.layer.clone(),
                t.snr_db,
                t.snr_db_f64,
                predicted[i],
                t.predicted_snr_db_rounding,
                t.predicted_snr_db_coherent,
                t.predicted_snr_db_law,
            )
        }
        None => (
            "none".into(),
            f64::INFINITY,
            f64::INFINITY,
            f64::NAN,
            f64::NAN,
            f64::NAN,
            f64::NAN,
        ),
    };
    LowestRow {
        arch: p.arch,
        dtype: p.dtype,
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
        predicted_law_db: pred_law,
        min_snr_db: trace.min_snr_db(),
        seconds,
    }
}

pub(crate) fn run_trace(c: &TraceConfig) -> Result<TraceData> {
    let p = c
        .net
        .point(0, c.arch, c.depth, c.slope, c.net.eps_i, c.dtype, c.seed);
    let mut noises = vec![0.0];
    if c.noise_std > 0.0 {
        noises.push(c.noise_std);
    }
    let device = c.net.device.open()?;
    let outs = noises
        .par_iter()
        .map(|&noise| -> Result<(TraceRun, usize)> {
            let sweep = SweepConfig {
                lipschitz: c.lipschitz && noise == 0.0,
                ..c.net.sweep_config(noise, true, std::slice::from_ref(&p))
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
                    predicted_snr_db_law: t.predicted_snr_db_law,
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
