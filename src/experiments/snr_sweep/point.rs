//! Measuring one point of the grid: its input batch ([`point_batch`]), its SNR trace
//! ([`run_point`]) and the result it leaves ([`PointResult`]: its lines of `snr_sweep.csv` and
//! `summary.csv`, whose columns are [`TRACE_HEADER`] and [`SUMMARY_HEADER`]).

use super::{fmt_f, Point, SweepConfig};
use crate::error::Result;
use crate::measure::trace::{snr_trace, SnrTrace, TraceOptions};
use crate::nets::Network;
use crate::results::text::float_text;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Column headers of `snr_sweep.csv`.
pub const TRACE_HEADER: &str = "arch,depth,slope,eps_i,width,dtype,seed,layer_index,layer,role,snr_db,snr_db_f64,alpha_db,predicted_snr_db,step_snr_db,predicted_snr_db_rounding,predicted_snr_db_coherent,predicted_snr_db_law,lip_forward,lip_inverse";
/// Column headers of `summary.csv`.
pub const SUMMARY_HEADER: &str = "arch,depth,slope,eps_i,width,dtype,seed,layers,lowest_layer,lowest_snr_db,lowest_snr_db_f64,min_snr_db,output_snr_db";

/// The measured result of one point. Its time, `seconds`, is not part of the result: it is not
/// stored in the point file, and two results are equal when everything else is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointResult {
    /// The point.
    pub point: Point,
    /// Its `summary.csv` line.
    pub summary_line: String,
    /// Its `snr_sweep.csv` lines.
    pub trace_lines: Vec<String>,
    /// Lowest top-level SNR (dB, same-dtype reference).
    #[serde(with = "float_text")]
    pub lowest_snr_db: f64,
    /// Seconds it took.
    #[serde(skip)]
    pub seconds: f64,
}

impl PartialEq for PointResult {
    fn eq(&self, other: &Self) -> bool {
        self.point == other.point
            && self.summary_line == other.summary_line
            && self.trace_lines == other.trace_lines
            && self.lowest_snr_db.to_bits() == other.lowest_snr_db.to_bits()
    }
}

/// The input batch of a point: unit Gaussian images and cyclic labels, from the seed.
pub fn point_batch(cfg: &SweepConfig, seed: u64, device: &Device) -> Result<(Tensor, Tensor)> {
    let mut rng = crate::util::rng_for(seed, "snr-sweep-input");
    let x = crate::util::randn(
        &mut rng,
        &[
            cfg.batch,
            cfg.net.in_channels,
            cfg.input_size,
            cfg.input_size,
        ],
        0.0,
        1.0,
        DType::F64,
        device,
    )?;
    let labels: Vec<u32> = (0..cfg.batch as u32)
        .map(|i| i % cfg.classes as u32)
        .collect();
    Ok((x, Tensor::new(labels, device)?))
}

/// Run one point.
pub fn run_point(cfg: &SweepConfig, p: &Point, device: &Device) -> Result<(PointResult, SnrTrace)> {
    let start = Instant::now();
    let dtype = p.dtype.dtype();
    // An f64 point on a device without f64 (Metal) runs on the CPU.
    let device = &if dtype == DType::F64 {
        crate::device::f64_device(device, crate::device::has_f64(device))
    } else {
        device.clone()
    };
    let net = Network::build_with(&cfg.net_config(p), dtype, device, cfg.backend)?;
    let (x, labels) = point_batch(cfg, p.seed, device)?;
    let (mut r, trace) = trace_net(cfg, p, &net, &x, &labels)?;
    r.seconds = start.elapsed().as_secs_f64();
    Ok((r, trace))
}

/// The result of point `p` traced on a given network and batch (the network of `p`, or the
/// same architecture with other weights, e.g. trained ones): `cfg` gives the output noise, the
/// depth law and the Lipschitz settings; `seconds` is left 0.
pub fn trace_net(
    cfg: &SweepConfig,
    p: &Point,
    net: &Network,
    x: &Tensor,
    labels: &Tensor,
) -> Result<(PointResult, SnrTrace)> {
    let opts = TraceOptions {
        output_noise: (cfg.noise_std > 0.0).then_some(cfg.noise_std),
        seed: p.seed,
        depth_law: cfg.depth_law,
        lipschitz: cfg.lipschitz,
    };
    let trace = snr_trace(net, None, x, labels, opts)?;
    // The slope field is empty for architectures without a leaky ReLU (Arch::has_slope).
    let slope = if p.arch.has_slope() {
        p.slope.to_string()
    } else {
        String::new()
    };
    let prefix = format!(
        "{},{},{slope},{},{},{},{}",
        p.arch, p.depth, p.eps_i, p.width, p.dtype, p.seed
    );
    let trace_lines = trace
        .points
        .iter()
        .map(|t| {
            format!(
                "{prefix},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                t.index,
                t.layer,
                t.role.as_str(),
                fmt_f(t.snr_db),
                fmt_f(t.snr_db_f64),
                fmt_f(t.alpha_db),
                fmt_f(t.predicted_snr_db),
                fmt_f(t.step_snr_db),
                fmt_f(t.predicted_snr_db_rounding),
                fmt_f(t.predicted_snr_db_coherent),
                fmt_f(t.predicted_snr_db_law),
                fmt_f(t.lip_forward),
                fmt_f(t.lip_inverse)
            )
        })
        .collect();
    let (lowest_layer, lowest, lowest64) = match trace.lowest() {
        Some(l) => (l.layer.clone(), l.snr_db, l.snr_db_f64),
        None => ("none".into(), f64::INFINITY, f64::INFINITY),
    };
    let summary_line = format!(
        "{prefix},{},{lowest_layer},{},{},{},{}",
        net.num_layers,
        fmt_f(lowest),
        fmt_f(lowest64),
        fmt_f(trace.min_snr_db()),
        fmt_f(trace.output_snr_db)
    );
    Ok((
        PointResult {
            point: p.clone(),
            summary_line,
            trace_lines,
            lowest_snr_db: lowest,
            seconds: 0.0,
        },
        trace,
    ))
}
