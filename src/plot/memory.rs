//! `table1` and `memory-scaling`: memory of one training step, analytic and measured.

use crate::error::Result;
use crate::experiments::figures::*;
use crate::experiments::memory::Axis as MemAxis;
use crate::nets::{Arch, Source};
use crate::plot::common::*;
use crate::plot::{render, render_table, Chart, Figure, Series, Style};
use crate::results::text::num_text;
use crate::util::write_atomic;
use std::path::Path;

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
            fit_line(&curve(MemAxis::Depth, arch, mode, y)).map(|f| f.slope / 1e3)
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
