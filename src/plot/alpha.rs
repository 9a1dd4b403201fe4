//! `fig05`, `fig06`: alpha vs rho and vs slope, theory and measurement.

use crate::error::Result;
use crate::experiments::figures::*;
use crate::plot::common::*;
use crate::plot::{render, Chart, Figure, Series, Style};
use crate::results::text::{fmt_f, num_text};
use std::path::Path;

/// Fig. 5: alpha vs rho of the toy batch norm, theory line and empirical markers.
pub fn fig05(res: &Results, out: &Path) -> Result<()> {
    alpha_figure("fig05", res, out)
}

/// Fig. 6: alpha vs slope n of the leaky ReLU, theory line and empirical markers.
pub fn fig06(res: &Results, out: &Path) -> Result<()> {
    alpha_figure("fig06", res, out)
}

pub(crate) fn alpha_figure(id: &str, res: &Results, out: &Path) -> Result<()> {
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
    let mut dtypes: Vec<crate::device::Precision> = Vec::new();
    for p in &d.points {
        if !dtypes.contains(&p.dtype) {
            dtypes.push(p.dtype);
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
                p.dtype.to_string(),
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
