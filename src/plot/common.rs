//! Helpers shared by the figure renderers.

use crate::experiments::figures::*;
use crate::nets::Arch;
use crate::plot::{Chart, Series, Style};
use crate::results::text::{fmt_f, num_text};
use std::path::{Path, PathBuf};

pub(crate) fn stem(out: &Path, id: &str) -> PathBuf {
    out.join(id)
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

pub(crate) fn zero_db_line(c: &mut Chart, xs: &[f64], values: &[f64]) {
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

/// The fitted loss with depth: dB per unit for layer-wise networks (linear in depth, the
/// depth law), dB per doubling of depth otherwise (the hybrid loses SNR roughly
/// logarithmically in depth).
pub(crate) fn depth_fit_text(arch: Arch, pts: &[(f64, f64)]) -> String {
    if arch.spec().snr_linear_in_depth {
        fit_line(pts)
            .map(|f| format!(" (fit {:+.1} dB/unit)", f.slope))
            .unwrap_or_default()
    } else {
        fit_line(&pts.iter().map(|(x, y)| (x.log2(), *y)).collect::<Vec<_>>())
            .map(|f| format!(" (fit {:+.1} dB per depth doubling)", f.slope))
            .unwrap_or_default()
    }
}

/// Header of the lowest-layer CSVs (`fig11`, `fig14`, `precision`): one row per network. No
/// timing column, so that a rerun of the same config writes the same bytes; each point's wall
/// time goes to the sidecar `<id>.timings.csv` ([`LOWEST_TIMINGS_HEADER`]).
pub(crate) const LOWEST_HEADER: [&str; 15] = [
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
    "predicted_law_db",
    "min_snr_db",
];

/// Header of `<id>.timings.csv` beside a lowest-layer CSV: the key columns of its rows
/// (`sweep` to `eps_i`, as in [`LOWEST_HEADER`]) and the point's wall time (`seconds`, s).
pub(crate) const LOWEST_TIMINGS_HEADER: [&str; 7] = [
    "sweep", "arch", "dtype", "depth", "slope", "eps_i", "seconds",
];

/// Path of the timings sidecar of `<out>/<id>.csv`.
pub fn timings_path(out: &Path, id: &str) -> PathBuf {
    out.join(format!("{id}.timings.csv"))
}

/// Write a lowest-layer figure CSV `<out>/<id>.csv` (with its provenance sidecar, see
/// [`write_csv`]) from `(sweep, row)` pairs, and its points' wall times to
/// `<out>/<id>.timings.csv`, both atomically.
pub(crate) fn write_lowest_csv(
    out: &Path,
    id: &str,
    caption: &str,
    rows: &[(&str, &LowestRow)],
) -> crate::error::Result<()> {
    let data: Vec<Vec<String>> = rows.iter().map(|(s, p)| lowest_csv_row(s, p)).collect();
    let timings: Vec<Vec<String>> = rows
        .iter()
        .map(|(s, p)| {
            let mut r: Vec<String> = lowest_csv_row(s, p).into_iter().take(6).collect();
            r.push(format!("{:.3}", p.seconds));
            r
        })
        .collect();
    let path = timings_path(out, id);
    let text = crate::results::csv::csv_text(&LOWEST_TIMINGS_HEADER, &timings)?;
    crate::util::write_atomic(&path, text.as_bytes())?;
    write_csv(out, id, caption, &LOWEST_HEADER, &data)
}

pub(crate) fn lowest_csv_row(sweep: &str, p: &LowestRow) -> Vec<String> {
    vec![
        sweep.into(),
        p.arch.to_string(),
        p.dtype.to_string(),
        p.depth.to_string(),
        p.arch.slope_field(p.slope),
        num_text(p.eps_i),
        p.layers.to_string(),
        p.lowest_layer.clone(),
        fmt_f(p.lowest_snr_db),
        fmt_f(p.lowest_snr_db_f64),
        fmt_f(p.predicted_db),
        fmt_f(p.predicted_rounding_db),
        fmt_f(p.predicted_coherent_db),
        fmt_f(p.predicted_law_db),
        fmt_f(p.min_snr_db),
    ]
}

pub(crate) fn fmt_bytes(x: f64) -> String {
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

pub(crate) fn fmt_opt(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "-".into()
    }
}

/// Vertical error bars `mean ± sd` as two-point line series (no legend entry).
pub(crate) fn error_bars(c: &mut Chart, pts: &[(f64, f64, f64)], color: usize) {
    for &(x, m, sd) in pts {
        if sd > 0.0 && m.is_finite() {
            c.series.push(
                Series::new("", vec![(x, m - sd), (x, m + sd)], Style::Line).with_color(color),
            );
        }
    }
}

/// The two rounding-aware depth laws beside eq. 19 (`crate::measure::trace`), the power sum
/// dotted, the amplitude sum solid, and the linearised law (`crate::measure::law`, the
/// recommended one) dashed; each drawn when it has a finite point.
pub(crate) fn push_rounding_laws(
    c: &mut Chart,
    rounding: Vec<(f64, f64)>,
    coherent: Vec<(f64, f64)>,
    law: Vec<(f64, f64)>,
) {
    for (label, pts, style, color) in [
        (
            "eq. 19 + each inverse's rounding (power sum)",
            rounding,
            Style::Dotted,
            3,
        ),
        (
            "eq. 19 + rounding, amplitude sum (bound)",
            coherent,
            Style::Line,
            4,
        ),
        ("linearised law (recommended)", law, Style::Dashed, 5),
    ] {
        if pts.iter().any(|p| p.1.is_finite()) {
            c.series
                .push(Series::new(label, pts, style).with_color(color));
        }
    }
}
