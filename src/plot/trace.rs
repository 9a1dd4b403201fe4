//! `fig10`, `fig13`: reconstruction SNR layer by layer.

use crate::error::Result;
use crate::experiments::figures::*;
use crate::plot::common::*;
use crate::plot::{render, Chart, Figure, Series, Span, Style};
use crate::results::text::{fmt_f, num_text};
use std::path::Path;

/// Fig. 10: SNR per reconstructed activation of a layer-wise network, units shaded.
pub fn fig10(res: &Results, out: &Path) -> Result<()> {
    trace_figure("fig10", res, out)
}

/// Fig. 13: SNR per reconstructed activation of a hybrid network, blocks shaded, block inputs
/// and hidden activations marked differently.
pub fn fig13(res: &Results, out: &Path) -> Result<()> {
    trace_figure("fig13", res, out)
}

/// The unit or block an entry belongs to (`s1.u0`, `s0.b2`), from its layer name.
pub(crate) fn group_of(layer: &str) -> Option<String> {
    let mut it = layer.split('.');
    let (s, u) = (it.next()?, it.next()?);
    let digits = |t: &str, p: char| {
        t.len() > 1 && t.starts_with(p) && t[1..].chars().all(|c| c.is_ascii_digit())
    };
    (digits(s, 's') && (digits(u, 'u') || digits(u, 'b'))).then(|| format!("{s}.{u}"))
}

/// Spans of consecutive entries of the same unit/block, with a small gap between neighbours.
pub(crate) fn group_spans(entries: &[TraceRow]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut current: Option<(String, usize, usize)> = None;
    for (i, e) in entries.iter().enumerate() {
        let g = group_of(&e.layer);
        match (&mut current, g) {
            (Some((name, _, last)), Some(g)) if *name == g => *last = i,
            (cur, g) => {
                if let Some((name, first, last)) = cur.take() {
                    spans.push(Span {
                        from: first as f64 - 0.42,
                        to: last as f64 + 0.42,
                        label: Some(name),
                    });
                }
                *cur = g.map(|g| (g, i, i));
            }
        }
    }
    if let Some((name, first, last)) = current {
        spans.push(Span {
            from: first as f64 - 0.42,
            to: last as f64 + 0.42,
            label: Some(name),
        });
    }
    // Too many labels overlap: keep every k-th.
    let k = spans.len().div_ceil(12).max(1);
    for (i, s) in spans.iter_mut().enumerate() {
        if i % k != 0 {
            s.label = None;
        }
    }
    spans
}

pub(crate) fn trace_figure(id: &str, res: &Results, out: &Path) -> Result<()> {
    let r = res.load(id)?;
    let ResultData::Trace(d) = expect_kind(&r, res, "trace")? else {
        unreachable!()
    };
    if d.runs.is_empty() || d.runs.iter().any(|run| run.entries.is_empty()) {
        return Err(malformed(&res.path(id), "a trace without entries"));
    }
    let dtype = r.provenance.dtype.clone();
    let hybrid = d.runs[0].entries.iter().any(|e| e.role == "hidden");
    let mut panels = Vec::new();
    let mut rows = Vec::new();
    for run in &d.runs {
        let title = if run.noise_std > 0.0 {
            format!(
                "output noise σ = {:.0e} (output SNR {:.1} dB)",
                run.noise_std, run.output_snr_db
            )
        } else {
            format!("{dtype} rounding only (depth law from 1st finite point)")
        };
        let mut c = Chart::new(
            title,
            "reconstructed activation, top → bottom (backward order)",
            "SNR of the reconstruction (dB)",
        );
        let top: Vec<&TraceRow> = run.entries.iter().filter(|e| e.role != "hidden").collect();
        if hybrid {
            c.series.push(
                Series::new(
                    "block inputs (block inverse)",
                    run.entries
                        .iter()
                        .filter(|e| e.role == "block-input")
                        .map(|e| (e.index as f64, e.snr_db))
                        .collect(),
                    Style::Markers,
                )
                .with_color(0),
            );
            c.series.push(
                Series::new(
                    "hidden (layer-wise inverses)",
                    run.entries
                        .iter()
                        .filter(|e| e.role == "hidden")
                        .map(|e| (e.index as f64, e.snr_db))
                        .collect(),
                    Style::Markers,
                )
                .with_color(1),
            );
        } else {
            c.series.push(
                Series::new(
                    format!("measured (vs stored {dtype})"),
                    run.entries
                        .iter()
                        .map(|e| (e.index as f64, e.snr_db))
                        .collect(),
                    Style::Markers,
                )
                .with_color(0),
            );
        }
        let law: Vec<(f64, f64)> = top
            .iter()
            .filter(|e| e.predicted_snr_db.is_finite())
            .map(|e| (e.index as f64, e.predicted_snr_db))
            .collect();
        if !law.is_empty() {
            c.series
                .push(Series::new("depth law, eq. 19", law, Style::Dashed).with_color(6));
        }
        let law_rounding: Vec<(f64, f64)> = top
            .iter()
            .filter(|e| e.predicted_snr_db_rounding.is_finite())
            .map(|e| (e.index as f64, e.predicted_snr_db_rounding))
            .collect();
        let law_coherent: Vec<(f64, f64)> = top
            .iter()
            .filter(|e| e.predicted_snr_db_coherent.is_finite())
            .map(|e| (e.index as f64, e.predicted_snr_db_coherent))
            .collect();
        let law_linear: Vec<(f64, f64)> = top
            .iter()
            .filter(|e| e.predicted_snr_db_law.is_finite())
            .map(|e| (e.index as f64, e.predicted_snr_db_law))
            .collect();
        push_rounding_laws(&mut c, law_rounding, law_coherent, law_linear);
        c.spans = group_spans(&run.entries);
        // Room above the data for the span labels, below it for the legend.
        reserve_legend_room(&mut c, 0.7, 0.12);
        panels.push(c);
        for e in &run.entries {
            rows.push(vec![
                num_text(run.noise_std),
                e.index.to_string(),
                e.layer.clone(),
                e.role.clone(),
                group_of(&e.layer).unwrap_or_default(),
                fmt_f(e.snr_db),
                fmt_f(e.snr_db_f64),
                fmt_f(e.alpha_db),
                fmt_f(e.predicted_snr_db),
                fmt_f(e.predicted_snr_db_rounding),
                fmt_f(e.predicted_snr_db_coherent),
                fmt_f(e.predicted_snr_db_law),
                fmt_f(e.lip_forward),
                fmt_f(e.lip_inverse),
            ]);
        }
    }
    let kind = if hybrid {
        "hybrid"
    } else {
        "layer-wise invertible"
    };
    let title = format!(
        "SNR through the layers of a {kind} network ({} {}s, {} layers, n = {})",
        d.depth,
        d.arch.depth_noun(),
        d.layers,
        d.slope
    );
    let caption = format!(
        "{} Shaded: one {} each.",
        r.caption(),
        if hybrid {
            "reversible block"
        } else {
            "unit [InvConv, InvBN, InvLeakyReLU]"
        }
    );
    render(
        &Figure {
            title,
            caption: caption.clone(),
            panels,
        },
        &stem(out, id),
    )?;
    write_csv(
        out,
        id,
        &caption,
        &[
            "noise_std",
            "index",
            "layer",
            "role",
            "group",
            "snr_db",
            "snr_db_f64",
            "alpha_db",
            "predicted_snr_db",
            "predicted_snr_db_rounding",
            "predicted_snr_db_coherent",
            "predicted_snr_db_law",
            "lip_forward",
            "lip_inverse",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_spans() {
        assert_eq!(group_of("s1.u0.conv").as_deref(), Some("s1.u0"));
        assert_eq!(group_of("s0.b12").as_deref(), Some("s0.b12"));
        assert_eq!(group_of("pool0"), None);
        assert_eq!(group_of("stem"), None);
        let row = |i: usize, l: &str| TraceRow {
            index: i,
            layer: l.into(),
            role: "layer".into(),
            snr_db: 1.0,
            snr_db_f64: 1.0,
            alpha_db: 0.0,
            predicted_snr_db: 1.0,
            predicted_snr_db_rounding: 1.0,
            predicted_snr_db_coherent: 1.0,
            predicted_snr_db_law: 1.0,
            lip_forward: f64::NAN,
            lip_inverse: f64::NAN,
        };
        let e = vec![
            row(0, "s1.u0.act"),
            row(1, "s1.u0.bn"),
            row(2, "pool0"),
            row(3, "s0.u1.act"),
            row(4, "s0.u0.act"),
        ];
        let s = group_spans(&e);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].label.as_deref(), Some("s1.u0"));
        assert!((s[0].from + 0.42).abs() < 1e-12 && (s[0].to - 1.42).abs() < 1e-12);
    }
}
