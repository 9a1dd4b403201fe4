//! `fig11`, `fig14`: lowest reconstruction SNR vs depth and vs slope.

use crate::error::Result;
use crate::experiments::figures::*;
use crate::plot::common::*;
use crate::plot::{render, Chart, Figure, Series, Style};
use std::path::Path;

/// Fig. 11: lowest-layer SNR vs depth (fixed slope) and vs slope (depth 3), layer-wise.
pub fn fig11(res: &Results, out: &Path) -> Result<()> {
    scaling_figure("fig11", res, out)
}

/// Fig. 14: as [`fig11`] for the hybrid network (lowest block input).
pub fn fig14(res: &Results, out: &Path) -> Result<()> {
    scaling_figure("fig14", res, out)
}

pub(crate) fn scaling_figure(id: &str, res: &Results, out: &Path) -> Result<()> {
    let r = res.load(id)?;
    let ResultData::Scaling(d) = expect_kind(&r, res, "scaling")? else {
        unreachable!()
    };
    if d.depth_sweep.is_empty() && d.slope_sweep.is_empty() {
        return Err(malformed(&res.path(id), "no points"));
    }
    let hybrid = d.arch.has_blocks();
    let unit = d.arch.depth_noun();
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
                .map(|f| format!(" (fit {:+.1} dB/decade)", f.slope))
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
        let law_coherent: Vec<(f64, f64)> = rows
            .iter()
            .map(|p| (x(p), p.predicted_coherent_db))
            .collect();
        let law_linear: Vec<(f64, f64)> = rows.iter().map(|p| (x(p), p.predicted_law_db)).collect();
        push_rounding_laws(&mut c, law_rounding, law_coherent, law_linear);
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
            rows.push((name, p));
        }
    }
    write_lowest_csv(out, id, &caption, &rows)
}
