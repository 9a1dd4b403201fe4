//! `fig12`, `fig15`: test accuracy of the accuracy sweep of `train` (read from its output).

use crate::error::{Error, Result};
use crate::experiments::figures::*;
use crate::experiments::training::mean_std;
use crate::experiments::training::records::{
    read_records, AccuracyRecord, RunInfo, ACCURACY_COLUMNS,
};
use crate::nets::Arch;
use crate::plot::common::*;
use crate::plot::{render, Chart, Figure, Series, Style};
use crate::results::text::{fmt_f, num_text};
use std::path::Path;

/// What the `train` binary's `run.json` says about the runs.
pub(crate) struct TrainProvenance {
    pub(crate) caption: String,
    pub(crate) classes: usize,
}

pub(crate) fn read_train_run_json(
    dir: &Path,
    id: &str,
    what: &str,
    csv_name: &str,
) -> Result<TrainProvenance> {
    let path = dir.join("run.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(missing(
                &path,
                format!("results for {id} incomplete: no run.json beside {csv_name}"),
            ))
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    let v: RunInfo = serde_json::from_str(&text).map_err(|e| malformed(&path, e))?;
    let data = v
        .data
        .as_ref()
        .and_then(|d| d.source.as_deref())
        .unwrap_or("unknown data");
    let classes = v.data.as_ref().and_then(|d| d.classes).unwrap_or(10) as usize;
    let init = v.init.as_deref().unwrap_or("init unknown");
    // The CPU and kernel paths of the run, where its run.json records them.
    let cpu = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|raw| crate::provenance::cpu_line_of(raw.get("provenance")?))
        .map(|line| format!("; CPU {line}"))
        .unwrap_or_default();
    let caption = format!(
        "{id}: `train` {what} ({}/{csv_name}, config key {} in run.json), seeds {}, {}, {}; data {data}; results from rev {} ({}{cpu})",
        dir.display(),
        v.config_key().unwrap_or_else(|| "?".into()),
        v.seeds_text().unwrap_or_else(|| "?".into()),
        v.dtype.as_deref().unwrap_or("?"),
        init,
        v.git_revision.as_deref().unwrap_or("unknown"),
        v.device.as_deref().unwrap_or("?"),
    );
    Ok(TrainProvenance { caption, classes })
}

pub(crate) struct AccRow {
    depth: usize,
    slope: f64,
    mode: String,
    seed: u64,
    /// Counted accuracy (fraction): evaluated, or chance for a diverged run.
    test_acc: f64,
    diverged: bool,
    step: String,
    collapse_layer: String,
    sweep: String,
}

/// Fig. 12: accuracy with and without reconstruction, layer-wise (from the accuracy sweep).
pub fn fig12(res: &Results, out: &Path) -> Result<()> {
    accuracy_figure("fig12", Arch::Layerwise, res, out)
}

/// Fig. 15: as [`fig12`] for the hybrid network.
pub fn fig15(res: &Results, out: &Path) -> Result<()> {
    accuracy_figure("fig15", Arch::Hybrid, res, out)
}

pub(crate) const ACCURACY_HINT: &str =
    "run `cargo run --release --bin train -- --config experiments/accuracy.toml` first";

pub(crate) fn accuracy_figure(id: &str, arch: Arch, res: &Results, out: &Path) -> Result<()> {
    let dir = &res.accuracy_dir;
    let path = dir.join("accuracy.csv");
    if !path.exists() {
        return Err(missing(
            &path,
            format!("results for {id} not available: {ACCURACY_HINT}"),
        ));
    }
    let prov = read_train_run_json(dir, id, "accuracy sweep", "accuracy.csv")?;
    let raw: Vec<AccuracyRecord> = read_records(&path, &ACCURACY_COLUMNS)?;
    let chance = 1.0 / prov.classes.max(1) as f64;
    let mut rows = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let line = i + 2;
        let row_arch =
            Arch::parse(&r.arch).map_err(|e| malformed(&path, format!("row {line}: {e}")))?;
        if row_arch != arch {
            continue;
        }
        let diverged = r.status != "ok";
        rows.push(AccRow {
            depth: r.depth,
            slope: r.slope,
            mode: r.mode,
            seed: r.seed,
            // Results written before diverged runs were counted hold NaN: chance.
            test_acc: if diverged && !r.test_acc.is_finite() {
                chance
            } else {
                r.test_acc
            },
            diverged,
            step: r.steps,
            collapse_layer: r.collapse_layer,
            sweep: r.sweep,
        });
    }
    if rows.is_empty() {
        return Err(missing(
            &path,
            format!("results for {id} not available: no {arch} runs in it; {ACCURACY_HINT}"),
        ));
    }
    let seeds: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.seed).collect();
    let mut acc_panels = Vec::new();
    let mut diff_panels = Vec::new();
    let mut csv_rows: Vec<Vec<String>> = Vec::new();
    let mut diverged_total = (0usize, 0usize);
    // Every point's paired gap: (label, mean, std, seeds).
    let mut gaps: Vec<(String, f64, f64, usize)> = Vec::new();
    for by_slope in [false, true] {
        let tag = if by_slope { "slope" } else { "depth" };
        let sel: Vec<&AccRow> = rows.iter().filter(|r| r.sweep.contains(tag)).collect();
        if sel.is_empty() {
            continue;
        }
        let x = |r: &AccRow| if by_slope { r.slope } else { r.depth as f64 };
        let fixed = if by_slope {
            format!("depth {}", sel[0].depth)
        } else {
            format!("n = {}", sel[0].slope)
        };
        let (title, xl) = if by_slope {
            (
                format!("vs negative slope n ({fixed})"),
                "negative slope n (log scale)".to_string(),
            )
        } else {
            (
                format!("vs depth N ({fixed})"),
                format!("depth N ({}s)", arch.depth_noun()),
            )
        };
        let mut c = Chart::new(
            format!("accuracy {title}"),
            xl.clone(),
            "test accuracy (%), mean ± std",
        );
        c.x_log = by_slope;
        let mut d = Chart::new(
            format!("stored - reconstructed {title}"),
            xl,
            "accuracy difference (points), mean ± std",
        );
        d.x_log = by_slope;
        let mut xs: Vec<f64> = sel.iter().map(|r| x(r)).collect();
        xs.sort_by(|a, b| a.total_cmp(b));
        xs.dedup();
        let mut per_mode: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(), Vec::new()];
        let mut diffs = Vec::new();
        for &xv in &xs {
            let at: Vec<&&AccRow> = sel.iter().filter(|r| x(r) == xv).collect();
            let mut stats = Vec::new();
            for (k, mode) in ["stored", "reconstructed"].iter().enumerate() {
                let accs: Vec<f64> = at
                    .iter()
                    .filter(|r| r.mode == *mode)
                    .map(|r| 100.0 * r.test_acc)
                    .collect();
                let (m, sd) = mean_std(&accs);
                if m.is_finite() {
                    per_mode[k].push((xv, m, sd));
                }
                let div: Vec<&&&AccRow> = at
                    .iter()
                    .filter(|r| r.mode == *mode && r.diverged)
                    .collect();
                if k == 0 {
                    diverged_total.0 += div.len();
                } else {
                    diverged_total.1 += div.len();
                }
                let where_: Vec<String> = div
                    .iter()
                    .map(|r| format!("seed {} step {} at {}", r.seed, r.step, r.collapse_layer))
                    .collect();
                stats.push((accs.len(), m, sd, div.len(), where_.join("; ")));
            }
            let mut paired = Vec::new();
            for seed in &seeds {
                let get = |mode: &str| {
                    at.iter()
                        .find(|r| r.mode == mode && r.seed == *seed)
                        .map(|r| 100.0 * r.test_acc)
                };
                if let (Some(a), Some(b)) = (get("stored"), get("reconstructed")) {
                    paired.push(a - b);
                }
            }
            let (dm, dsd) = mean_std(&paired);
            if dm.is_finite() {
                diffs.push((xv, dm, dsd));
                let label = if by_slope {
                    format!("n = {}", num_text(xv))
                } else {
                    format!("depth {xv}")
                };
                if !gaps.iter().any(|g| g.0 == label) {
                    gaps.push((label, dm, dsd, paired.len()));
                }
            }
            let (depth, slope) = (at[0].depth, at[0].slope);
            let f = |v: f64| {
                if v.is_finite() {
                    format!("{v:.2}")
                } else {
                    fmt_f(v)
                }
            };
            csv_rows.push(vec![
                tag.into(),
                arch.to_string(),
                depth.to_string(),
                arch.slope_field(slope),
                stats[0].0.max(stats[1].0).to_string(),
                f(stats[0].1),
                f(stats[0].2),
                f(stats[1].1),
                f(stats[1].2),
                f(dm),
                f(dsd),
                stats[0].3.to_string(),
                stats[1].3.to_string(),
                [stats[0].4.as_str(), stats[1].4.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; "),
            ]);
        }
        for (k, label) in ["without reconstruction (stored)", "with reconstruction"]
            .iter()
            .enumerate()
        {
            if !per_mode[k].is_empty() {
                c.series.push(
                    Series::new(
                        *label,
                        per_mode[k].iter().map(|p| (p.0, p.1)).collect(),
                        Style::LineMarkers,
                    )
                    .with_color(k),
                );
                error_bars(&mut c, &per_mode[k], k);
            }
        }
        let diverged: Vec<(f64, f64)> = sel
            .iter()
            .filter(|r| r.diverged)
            .map(|r| (x(r), 100.0 * chance))
            .collect();
        if !diverged.is_empty() {
            c.series.push(
                Series::new(
                    format!("diverged runs ({}, counted at chance)", diverged.len()),
                    diverged,
                    Style::Markers,
                )
                .with_color(3),
            );
        }
        if let (Some(a), Some(b)) = (xs.first(), xs.last()) {
            c.series.push(
                Series::new(
                    format!("chance ({:.0} %)", 100.0 * chance),
                    vec![(*a, 100.0 * chance), (*b, 100.0 * chance)],
                    Style::Dashed,
                )
                .with_color(6),
            );
            d.series
                .push(Series::new("", vec![(*a, 0.0), (*b, 0.0)], Style::Dashed).with_color(6));
        }
        if !diffs.is_empty() {
            d.series.push(
                Series::new(
                    "stored - reconstructed (same seed)",
                    diffs.iter().map(|p| (p.0, p.1)).collect(),
                    Style::LineMarkers,
                )
                .with_color(2),
            );
            error_bars(&mut d, &diffs, 2);
        }
        reserve_legend_room(&mut c, 0.0, 0.5);
        acc_panels.push(c);
        diff_panels.push(d);
    }
    if acc_panels.is_empty() {
        return Err(malformed(
            &path,
            format!("no {arch} runs tagged with a depth or slope sweep"),
        ));
    }
    let kind = arch.spec().long_name;
    // The reading: where the stored-minus-reconstructed gap is real (more than 1 point and more
    // than 2 standard errors of the paired difference), and how small it is elsewhere.
    let real: Vec<String> = gaps
        .iter()
        .filter(|g| g.1 > 1.0 && g.1 > 2.0 * g.2 / (g.3 as f64).sqrt())
        .map(|g| format!("{} ({:.1} ± {:.1})", g.0, g.1, g.2))
        .collect();
    let rest = gaps
        .iter()
        .filter(|g| !(g.1 > 1.0 && g.1 > 2.0 * g.2 / (g.3 as f64).sqrt()))
        .map(|g| g.1.abs())
        .fold(0.0f64, f64::max);
    let reading = if real.is_empty() {
        format!(
            "Reconstruction costs no accuracy beyond noise at any point (largest mean gap {rest:.1} points)."
        )
    } else {
        format!(
            "Reconstruction costs accuracy (gap > 1 point and > 2 standard errors) at {}; elsewhere the mean gap is at most {rest:.1} points.",
            real.join(", ")
        )
    };
    let caption = format!(
        "{}. {}; every run counts: {} stored and {} reconstructed run(s) diverged and are counted at chance (x markers). {reading}",
        prov.caption,
        match seeds.len() {
            1 => "One seed (no spread)".to_string(),
            n => format!("Mean ± sample std over {n} seeds"),
        },
        diverged_total.0,
        diverged_total.1
    );
    let panels = acc_panels.into_iter().chain(diff_panels).collect();
    render(
        &Figure {
            title: format!("Impact of the numerical errors on accuracy ({kind})"),
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
            "sweep",
            "arch",
            "depth",
            "slope",
            "seeds",
            "stored_mean_pct",
            "stored_std_pct",
            "reconstructed_mean_pct",
            "reconstructed_std_pct",
            "diff_mean_pct",
            "diff_std_pct",
            "stored_diverged",
            "reconstructed_diverged",
            "diverged_where",
        ],
        &csv_rows,
    )
}
