//! `depth-law`: every law's prediction against the measured SNR over the held-out half of the
//! validation family ([`crate::experiments::depth_law`]), and the error tables.
//!
//! Files: `depth-law.png` (one panel per law: one point per held-out entry above 0 dB,
//! coloured by architecture, the diagonal and the ±3 dB band; then the recommended law's error
//! against the measured SNR), `depth-law.csv` (every entry of
//! both halves), `depth-law-errors.csv` (median and max |error| per half, law, architecture and
//! dtype, `all` for the union), `depth-law-diagnostics.csv` (what the scalar laws assume,
//! measured per layer kind and dtype: [`diagnostic_rows`]) and `depth-law-members.csv` (the
//! drawn networks).

use crate::error::Result;
use crate::experiments::depth_law::{error_stats, LawEntryRow, Member, LAWS};
use crate::experiments::figures::*;
use crate::nets::Arch;
use crate::plot::common::*;
use crate::plot::{render, Chart, Figure, Series, Style};
use crate::results::fmt_f;
use std::collections::BTreeMap;
use std::path::Path;

/// Header of `depth-law.csv`.
pub const ENTRIES_HEADER: [&str; 21] = [
    "member",
    "split",
    "seed",
    "arch",
    "dtype",
    "depth",
    "index",
    "layer",
    "snr_db",
    "predicted_snr_db_law",
    "predicted_snr_db_coherent",
    "predicted_snr_db_rounding",
    "predicted_snr_db",
    "alpha_db",
    "alpha_error_db",
    "step_snr_db",
    "chain_step_snr_db",
    "injection_corr",
    "error_signal_corr",
    "error_lag1",
    "network",
];

/// Header of `depth-law-errors.csv`.
pub const ERRORS_HEADER: [&str; 7] = [
    "split",
    "law",
    "arch",
    "dtype",
    "entries",
    "median_abs_error_db",
    "max_abs_error_db",
];

/// Header of `depth-law-members.csv`.
pub const MEMBERS_HEADER: [&str; 4] = ["member", "split", "arch", "network"];

/// Header of `depth-law-diagnostics.csv`.
pub const DIAGNOSTICS_HEADER: [&str; 12] = [
    "layer_kind",
    "dtype",
    "entries",
    "alpha_db",
    "alpha_error_db",
    "alpha_error_minus_alpha_db",
    "step_snr_db",
    "chain_step_snr_db",
    "step_minus_chain_step_db",
    "abs_injection_corr",
    "abs_error_signal_corr",
    "error_lag1",
];

/// The kind of layer an entry is the input of: the three layers of a layer-wise unit, a pool,
/// or an architecture's block.
fn layer_kind(layer: &str, arch: Arch) -> String {
    let last = layer.rsplit('.').next().unwrap_or(layer);
    match last {
        "act" => "leaky ReLU".into(),
        "bn" => "batch norm".into(),
        "conv" => "coupling (conv)".into(),
        l if l.starts_with("pool") => "pool".into(),
        _ => format!("{arch} block"),
    }
}

/// Median of the finite values of `v` (NaN when none is).
fn finite_median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    crate::util::median(&v)
}

/// What the scalar laws assume, measured per layer kind and dtype over every entry of both
/// halves (medians over the finite values): the white-noise alpha beside the alpha of the error
/// that actually arrives, the one-step injection beside the chain's, the cosines of the carried
/// error with the injection and of the error with the signal, and the error's lag-1
/// autocorrelation.
pub fn diagnostic_rows(members: &[Member], entries: &[LawEntryRow]) -> Vec<Vec<String>> {
    let mut groups: BTreeMap<(String, String), Vec<&LawEntryRow>> = BTreeMap::new();
    for e in entries {
        let m = &members[e.member];
        groups
            .entry((layer_kind(&e.layer, m.arch), m.dtype.to_string()))
            .or_default()
            .push(e);
    }
    groups
        .into_iter()
        .map(|((kind, dtype), es)| {
            let col =
                |f: &dyn Fn(&LawEntryRow) -> f64| finite_median(es.iter().map(|e| f(e)).collect());
            let mut row = vec![kind, dtype, es.len().to_string()];
            row.extend(
                [
                    col(&|e| e.alpha_db),
                    col(&|e| e.alpha_error_db),
                    col(&|e| e.alpha_error_db - e.alpha_db),
                    col(&|e| e.step_snr_db),
                    col(&|e| e.chain_step_snr_db),
                    col(&|e| e.step_snr_db - e.chain_step_snr_db),
                    col(&|e| e.injection_corr.abs()),
                    col(&|e| e.error_signal_corr.abs()),
                    col(&|e| e.error_lag1),
                ]
                .iter()
                .map(|&v| fmt_opt(v, 3)),
            );
            row
        })
        .collect()
}

/// The error table: for each split (`dev`, `report`), law, architecture and dtype (and `all`
/// for each of the last two), entries above 0 dB with their median and max |error| (dB).
pub fn error_rows(members: &[Member], entries: &[LawEntryRow]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut archs: Vec<String> = members.iter().map(|m| m.arch.to_string()).collect();
    let mut dtypes: Vec<String> = members.iter().map(|m| m.dtype.to_string()).collect();
    for v in [&mut archs, &mut dtypes] {
        v.sort();
        v.dedup();
        v.push("all".into());
    }
    for split in ["report", "dev"] {
        for (law, (_, label)) in LAWS.iter().enumerate() {
            for arch in &archs {
                for dtype in &dtypes {
                    let pairs = entries.iter().filter_map(|e| {
                        let m = &members[e.member];
                        let keep = m.split == split
                            && (arch == "all" || m.arch.to_string() == *arch)
                            && (dtype == "all" || m.dtype.to_string() == *dtype);
                        keep.then_some((e.snr_db, e.predicted()[law]))
                    });
                    if let Some((n, median, max)) = error_stats(pairs) {
                        rows.push(vec![
                            split.to_string(),
                            label.to_string(),
                            arch.clone(),
                            dtype.clone(),
                            n.to_string(),
                            fmt_opt(median, 2),
                            fmt_opt(max, 2),
                        ]);
                    }
                }
            }
        }
    }
    rows
}

/// One marker series per architecture: the measured SNR of each entry against `y` of it.
fn arch_markers(
    c: &mut Chart,
    archs: &BTreeMap<String, Arch>,
    entries: &[&LawEntryRow],
    members: &[Member],
    y: impl Fn(&LawEntryRow) -> f64,
) {
    for (ai, (name, &arch)) in archs.iter().enumerate() {
        let pts: Vec<(f64, f64)> = entries
            .iter()
            .filter(|e| members[e.member].arch == arch)
            .map(|e| (e.snr_db, y(e)))
            .collect();
        if !pts.is_empty() {
            c.series.push(
                Series::new(name.clone(), pts, Style::Markers)
                    .with_color(ai)
                    .with_marker(ai),
            );
        }
    }
}

/// The figure and its CSVs (module doc).
pub fn depth_law(res: &Results, out: &Path) -> Result<()> {
    let id = "depth-law";
    let r = res.load(id)?;
    let ResultData::DepthLaw(d) = expect_kind(&r, res, "depth-law")? else {
        unreachable!()
    };
    if d.entries.is_empty() || d.members.is_empty() {
        return Err(malformed(&res.path(id), "no entries"));
    }
    let held: Vec<&LawEntryRow> = d
        .entries
        .iter()
        .filter(|e| d.members[e.member].split == "report" && e.snr_db > 0.0)
        .collect();
    let top = held.iter().map(|e| e.snr_db).fold(0.0f64, f64::max);
    let span = (0.0, (top / 20.0).ceil() * 20.0 + 10.0);
    let mut archs: BTreeMap<String, Arch> = BTreeMap::new();
    for m in &d.members {
        archs.insert(m.arch.to_string(), m.arch);
    }
    let mut panels = Vec::new();
    let mut summary = Vec::new();
    for (law, (_, label)) in LAWS.iter().enumerate() {
        let stats = error_stats(held.iter().map(|e| (e.snr_db, e.predicted()[law])));
        let title = match stats {
            Some((n, med, max)) => {
                summary.push(format!("{label}: median {med:.2} dB, max {max:.2} dB"));
                format!("{label}: median {med:.2}, max {max:.2} dB ({n})")
            }
            None => label.to_string(),
        };
        let mut c = Chart::new(title, "measured SNR (dB)", "predicted SNR (dB)");
        c.x_range = Some(span);
        c.y_range = Some(span);
        let line = |off: f64| vec![(span.0, span.0 + off), (span.1, span.1 + off)];
        c.series
            .push(Series::new("measured = predicted", line(0.0), Style::Line).with_color(6));
        c.series
            .push(Series::new("±3 dB", line(3.0), Style::Dashed).with_color(6));
        c.series
            .push(Series::new("", line(-3.0), Style::Dashed).with_color(6));
        arch_markers(&mut c, &archs, &held, &d.members, |e| {
            e.predicted()[law].clamp(span.0, span.1)
        });
        reserve_legend_room(&mut c, 0.0, 0.3);
        panels.push(c);
    }
    // The recommended law's error against the measurement, where the ±3 dB band is visible.
    let mut c = Chart::new(
        format!("{}: error", LAWS[0].1),
        "measured SNR (dB)",
        "predicted - measured (dB)",
    );
    c.x_range = Some(span);
    c.y_range = Some((-10.0, 10.0));
    for (off, label) in [(0.0, "0"), (3.0, "±3 dB"), (-3.0, "")] {
        let style = if off == 0.0 {
            Style::Line
        } else {
            Style::Dashed
        };
        c.series
            .push(Series::new(label, vec![(span.0, off), (span.1, off)], style).with_color(6));
    }
    arch_markers(&mut c, &archs, &held, &d.members, |e| {
        (e.law_db - e.snr_db).clamp(-10.0, 10.0)
    });
    reserve_legend_room(&mut c, 0.0, 0.3);
    panels.push(c);
    let held_members = d.members.iter().filter(|m| m.split == "report").count();
    let caption = format!(
        "{} Held-out half: {held_members} of {} random networks x their seeds, {} entries above 0 dB (points outside the axes are drawn at its edge). {}.",
        r.caption(),
        d.members.len(),
        held.len(),
        summary.join("; ")
    );
    render(
        &Figure {
            title: "Depth laws on networks they were not developed on: predicted vs measured SNR"
                .into(),
            caption: caption.clone(),
            panels,
        },
        &stem(out, id),
    )?;
    let rows: Vec<Vec<String>> = d
        .entries
        .iter()
        .map(|e| {
            let m = &d.members[e.member];
            let mut row = vec![
                e.member.to_string(),
                m.split.clone(),
                e.seed.to_string(),
                m.arch.to_string(),
                m.dtype.to_string(),
                m.depth.to_string(),
                e.index.to_string(),
                e.layer.clone(),
                fmt_f(e.snr_db),
            ];
            row.extend(e.predicted().iter().map(|&p| fmt_f(p)));
            row.extend(
                [
                    e.alpha_db,
                    e.alpha_error_db,
                    e.step_snr_db,
                    e.chain_step_snr_db,
                    e.injection_corr,
                    e.error_signal_corr,
                    e.error_lag1,
                ]
                .iter()
                .map(|&v| fmt_f(v)),
            );
            row.push(m.describe());
            row
        })
        .collect();
    write_csv(out, id, &caption, &ENTRIES_HEADER, &rows)?;
    let errors = error_rows(&d.members, &d.entries);
    let table_caption = format!(
        "{} Median and max |predicted - measured| (dB) over the entries above 0 dB, per half of the family (report = held out), law, architecture and dtype.",
        r.caption()
    );
    write_csv(
        out,
        "depth-law-errors",
        &table_caption,
        &ERRORS_HEADER,
        &errors,
    )?;
    write_csv(
        out,
        "depth-law-diagnostics",
        &format!(
            "{} What the scalar laws assume, measured per layer kind and dtype (medians over every entry of both halves).",
            r.caption()
        ),
        &DIAGNOSTICS_HEADER,
        &diagnostic_rows(&d.members, &d.entries),
    )?;
    let members: Vec<Vec<String>> = d
        .members
        .iter()
        .map(|m| {
            vec![
                m.index.to_string(),
                m.split.clone(),
                m.arch.to_string(),
                m.describe(),
            ]
        })
        .collect();
    write_csv(
        out,
        "depth-law-members",
        &format!("{} The drawn networks.", r.caption()),
        &MEMBERS_HEADER,
        &members,
    )
}
