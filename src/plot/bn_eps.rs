//! `bn-eps`: alpha and SNR of batch norm against its eps.

use crate::error::Result;
use crate::experiments::figures::*;
use crate::plot::common::*;
use crate::plot::{render, Chart, Figure, Series, Style};
use crate::results::text::{fmt_f, num_text};
use std::path::Path;

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
            "theory, squared form",
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
