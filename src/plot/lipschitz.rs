//! The `lipschitz` figure: per top-level layer of one network, the local Lipschitz constants of
//! its forward and of its inverse at the batch (Behrmann et al. 2021,
//! [`crate::measure::lipschitz`]) beside its alpha ([`crate::measure::alpha`]).
//!
//! Data: a `trace` experiment (`experiments/lipschitz.toml`, `lipschitz = true`), the
//! rounding-only trace. The panel is in dB so that the three are comparable:
//! `20 log10(lip_inverse)` is the most an inverse can multiply the power of a small error by
//! (worst direction), `20 log10(lip_forward)` the same for the forward, and `-10 log10(alpha)`
//! the SNR the inverse costs white noise (paper eq. 17-18). The CSV keeps the plain ratios.

use crate::error::Result;
use crate::experiments::figures::{expect_kind, malformed, ResultData, Results, TraceRow};
use crate::plot::common::{reserve_legend_room, stem};
use crate::plot::trace::group_spans;
use crate::plot::{render, Chart, Figure, Series, Style};
use crate::results::csv::write_csv;
use crate::results::text::fmt_f;
use std::path::Path;

/// Render `<out>/lipschitz.{png,svg,csv}` from the cached `lipschitz` trace.
pub fn lipschitz(res: &Results, out: &Path) -> Result<()> {
    let id = "lipschitz";
    let r = res.load(id)?;
    let ResultData::Trace(d) = expect_kind(&r, res, "trace")? else {
        unreachable!()
    };
    let run = d
        .runs
        .iter()
        .find(|run| run.noise_std == 0.0)
        .ok_or_else(|| malformed(&res.path(id), "no rounding-only trace"))?;
    let top: Vec<&TraceRow> = run.entries.iter().filter(|e| e.role != "hidden").collect();
    if !top
        .iter()
        .any(|e| e.lip_inverse.is_finite() && e.lip_forward.is_finite())
    {
        return Err(malformed(
            &res.path(id),
            "no Lipschitz estimates (the trace config needs `lipschitz = true`)",
        ));
    }
    let db = |v: f64| 20.0 * v.log10();
    let series = |f: &dyn Fn(&TraceRow) -> f64| -> Vec<(f64, f64)> {
        top.iter()
            .map(|e| (e.index as f64, f(e)))
            .filter(|(_, y)| y.is_finite())
            .collect()
    };
    let mut c = Chart::new(
        format!(
            "{} {} {}s, n = {}: per top-level layer",
            d.arch,
            d.depth,
            d.arch.depth_noun(),
            d.slope
        ),
        "layer, top → bottom (backward order)",
        "dB",
    );
    c.series.push(
        Series::new(
            "20 log10 Lip(inverse): worst-case error power gain",
            series(&|e| db(e.lip_inverse)),
            Style::LineMarkers,
        )
        .with_color(0),
    );
    c.series.push(
        Series::new(
            "20 log10 Lip(forward)",
            series(&|e| db(e.lip_forward)),
            Style::LineMarkers,
        )
        .with_color(1),
    );
    c.series.push(
        Series::new(
            "-10 log10 alpha: SNR lost by white noise",
            series(&|e| -e.alpha_db),
            Style::Markers,
        )
        .with_color(2),
    );
    c.spans = group_spans(&run.entries);
    reserve_legend_room(&mut c, 0.5, 0.12);
    let caption = format!(
        "{} Lipschitz: power iteration on J^T J (finite-difference JVP, autograd VJP) in f64, whole batch as one vector, batch statistics as recorded.",
        r.caption()
    );
    render(
        &Figure {
            title: "Lipschitz constants per layer, beside alpha".into(),
            caption: caption.clone(),
            panels: vec![c],
        },
        &stem(out, id),
    )?;
    let rows: Vec<Vec<String>> = top
        .iter()
        .map(|e| {
            vec![
                e.index.to_string(),
                e.layer.clone(),
                e.role.clone(),
                fmt_f(e.alpha_db),
                fmt_f(e.lip_forward),
                fmt_f(e.lip_inverse),
                fmt_f(e.snr_db),
            ]
        })
        .collect();
    write_csv(
        out,
        id,
        &caption,
        &[
            "index",
            "layer",
            "role",
            "alpha_db",
            "lip_forward",
            "lip_inverse",
            "snr_db",
        ],
        &rows,
    )
}
