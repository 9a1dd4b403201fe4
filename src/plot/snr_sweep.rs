//! The figure of `snr-sweep`: lowest reconstructed SNR vs depth, from the sweep's results.

use crate::error::Result;
use crate::experiments::snr_sweep::*;
use crate::plot::{render, Chart, Figure, Series, Style};
use std::path::Path;

/// Render the sweep's figure from its results: lowest SNR vs depth, one panel per architecture
/// of the config, one series per slope (first dtype/eps_i/width/seed of the points). Only
/// finite SNRs are drawn: an architecture without one (ResNet reconstructs nothing; every point
/// overflowed to `-inf`) gets no panel and is named in the caption instead. Returns false, having written nothing,
/// when no architecture has a finite point (the table and CSVs still say everything).
pub fn render_figure(sweep: &SweepResults, out_stem: &Path) -> Result<bool> {
    let (results, cfg) = (&sweep.points, &sweep.config);
    let first = match results.first() {
        Some(r) => r.point.clone(),
        None => {
            return Err(super::nothing_to_plot(
                "snr-sweep",
                "at least one result",
                "none",
            ))
        }
    };
    let mut panels = Vec::new();
    let mut undrawn = Vec::new();
    for arch in &cfg.archs {
        let mut chart = Chart::new(
            format!("{arch}: lowest reconstructed activation"),
            "depth (units / blocks)",
            "SNR (dB)",
        );
        chart.x_log = true;
        let mut slopes: Vec<f64> = Vec::new();
        for r in results.iter().filter(|r| r.point.arch == *arch) {
            if !slopes.contains(&r.point.slope) {
                slopes.push(r.point.slope);
            }
        }
        for (k, sl) in slopes.iter().enumerate() {
            let pts: Vec<(f64, f64)> = results
                .iter()
                .filter(|r| {
                    r.point.arch == *arch
                        && r.point.slope == *sl
                        && r.point.dtype == first.dtype
                        && r.point.eps_i == first.eps_i
                        && r.point.width == first.width
                        && r.point.seed == first.seed
                })
                .map(|r| (r.point.depth as f64, r.lowest_snr_db))
                .filter(|(_, snr)| snr.is_finite())
                .collect();
            if pts.is_empty() {
                continue;
            }
            let label = if arch.has_slope() {
                format!("n = {sl}")
            } else {
                "no slope".into()
            };
            chart
                .series
                .push(Series::new(label, pts, Style::LineMarkers).with_color(k));
        }
        if chart.series.is_empty() {
            undrawn.push(arch.to_string());
        } else {
            panels.push(chart);
        }
    }
    if panels.is_empty() {
        return Ok(false);
    }
    let fig = Figure {
        title: "Reconstruction SNR vs depth".into(),
        caption: format!(
            "snr-sweep: {} width {}, batch {}, {}x{} unit Gaussian input, init scale {}, seed {}, rev {}",
            first.dtype,
            first.width,
            cfg.batch,
            cfg.input_size,
            cfg.input_size,
            cfg.net.init_scale,
            first.seed,
            crate::util::git_revision().unwrap_or_else(|| "unknown".into())
        ) + &if undrawn.is_empty() {
            String::new()
        } else {
            format!(
                "; no finite SNR to draw for {} (nothing reconstructed, or every point overflowed)",
                undrawn.join(", ")
            )
        },
        panels,
    };
    render(&fig, out_stem)?;
    Ok(true)
}
