//! `revnet-fig4`: gradient angles of the angle experiment of `train` (read from its output).

use crate::error::Result;
use crate::experiments::figures::*;
use crate::experiments::training::mean_std;
use crate::experiments::training::records::{read_records, AngleRecord, ANGLE_COLUMNS};
use crate::plot::accuracy::*;
use crate::plot::common::*;
use crate::plot::{render, Chart, Figure, Series, Style};
use crate::results::text::fmt_f;
use std::path::Path;

/// Gomez et al. Fig. 4: gradient angle between stored and reconstructed activations, loss and
/// error through training (from the angle experiment).
pub fn revnet_fig4(res: &Results, out: &Path) -> Result<()> {
    let id = "revnet-fig4";
    let dir = &res.angles_dir;
    let path = dir.join("angles.csv");
    if !path.exists() {
        return Err(missing(&path, format!("results for {id} not available: run `cargo run --release --bin train -- --config experiments/revnet-fig4.toml` first")));
    }
    let prov = read_train_run_json(dir, id, "gradient-angle experiment", "angles.csv")?;
    let raw: Vec<AngleRecord> = read_records(&path, &ANGLE_COLUMNS)?;
    // One curve per network and mode: the mean over seeds at each probe step, with the
    // smallest and largest seed's angle dashed when there are several seeds.
    struct Run {
        label: String,
        /// step -> per seed (angle, loss, train_err, test_err)
        pts: std::collections::BTreeMap<usize, Vec<(f64, f64, f64, f64)>>,
    }
    let mut runs: Vec<(String, Run)> = Vec::new();
    let seeds: std::collections::BTreeSet<String> = raw.iter().map(|r| r.seed.clone()).collect();
    for r in &raw {
        let key = format!("{}|{}|{}|{}", r.arch, r.depth, r.slope, r.mode);
        let step = r.step;
        let p = (r.angle_deg, r.loss, r.train_err, r.test_err);
        let run = match runs.iter().position(|(k, _)| *k == key) {
            Some(i) => &mut runs[i].1,
            None => {
                let label = format!("{} d{}, trained {}", r.arch, r.depth, r.mode);
                runs.push((
                    key,
                    Run {
                        label,
                        pts: Default::default(),
                    },
                ));
                &mut runs.last_mut().expect("just pushed").1
            }
        };
        run.pts.entry(step).or_default().push(p);
    }
    if runs.is_empty() {
        return Err(malformed(&path, "no probes"));
    }
    let mean = |v: &[(f64, f64, f64, f64)], f: fn(&(f64, f64, f64, f64)) -> f64| {
        v.iter().map(f).sum::<f64>() / v.len() as f64
    };
    // Log scale when every angle is positive: RevNet's and the hybrid's angles (1e-5 degrees)
    // and the layer-wise network's (degrees) differ by five orders of magnitude.
    let all_positive = runs.iter().all(|(_, r)| {
        r.pts
            .values()
            .flatten()
            .all(|p| p.0 > 0.0 && p.0.is_finite())
    });
    let mut a = Chart::new(
        "gradient angle, stored vs reconstructed",
        "training step",
        if all_positive {
            "angle (degrees, log scale)"
        } else {
            "angle (degrees)"
        },
    );
    a.y_log = all_positive;
    let mut l = Chart::new(
        "training cross-entropy",
        "training step",
        "loss (batch cross-entropy)",
    );
    let mut e = Chart::new("classification error", "training step", "error (%)");
    let few = runs.len() <= 3;
    let many_seeds = seeds.len() > 1;
    for (k, (_, run)) in runs.iter().enumerate() {
        let steps: Vec<f64> = run.pts.keys().map(|s| *s as f64).collect();
        let line = |f: fn(&(f64, f64, f64, f64)) -> f64, scale: f64| -> Vec<(f64, f64)> {
            steps
                .iter()
                .zip(run.pts.values())
                .map(|(s, v)| (*s, scale * mean(v, f)))
                .collect()
        };
        let suffix = if many_seeds {
            format!(" (mean of {} seeds)", seeds.len())
        } else {
            String::new()
        };
        a.series.push(
            Series::new(
                format!("{}{suffix}", run.label),
                line(|p| p.0, 1.0),
                Style::LineMarkers,
            )
            .with_color(k),
        );
        if many_seeds {
            for pick in [f64::min, f64::max] {
                let pts = steps
                    .iter()
                    .zip(run.pts.values())
                    .map(|(s, v)| (*s, v.iter().map(|p| p.0).fold(f64::NAN, pick)))
                    .collect();
                a.series
                    .push(Series::new("", pts, Style::Dashed).with_color(k));
            }
        }
        l.series
            .push(Series::new(run.label.clone(), line(|p| p.1, 1.0), Style::Line).with_color(k));
        e.series.push(
            Series::new(
                format!("{} (test)", run.label),
                line(|p| p.3, 100.0),
                Style::Line,
            )
            .with_color(k),
        );
        if few {
            e.series
                .push(Series::new("", line(|p| p.2, 100.0), Style::Dashed).with_color(k));
        }
    }
    if all_positive {
        // Room above the curves for the legend (log axis: in decades).
        let ys: Vec<f64> = a
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        if let (Some(lo), Some(hi)) = (
            ys.iter().copied().reduce(f64::min),
            ys.iter().copied().reduce(f64::max),
        ) {
            let decades = (hi / lo).log10().max(1.0);
            a.y_range = Some((
                lo / 10f64.powf(0.05 * decades),
                hi * 10f64.powf(0.6 * decades),
            ));
        }
    }
    let caption = format!(
        "{}.{}{}",
        prov.caption,
        if many_seeds {
            " Angle: mean over seeds, dashed the smallest and largest seed."
        } else {
            ""
        },
        if few {
            " Error: solid test, dashed training (eval mode, probe subsets)."
        } else {
            " Error: test (eval mode, probe subset)."
        }
    );
    render(
        &Figure {
            title:
                "Gradients from reconstructed activations through training (Gomez et al. Fig. 4)"
                    .into(),
            caption: caption.clone(),
            panels: vec![a, l, e],
        },
        &stem(out, id),
    )?;
    let mut rows = Vec::new();
    for (key, run) in &runs {
        let parts: Vec<&str> = key.split('|').collect();
        for (step, v) in &run.pts {
            let angles: Vec<f64> = v.iter().map(|p| p.0).collect();
            let (m, sd) = mean_std(&angles);
            let mut r: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
            // No slope for architectures without a leaky ReLU (Arch::has_slope).
            if crate::nets::Arch::parse(parts[0]).is_ok_and(|a| !a.has_slope()) {
                r[2] = String::new();
            }
            r.extend([
                v.len().to_string(),
                step.to_string(),
                fmt_f(m),
                fmt_f(sd),
                fmt_f(angles.iter().copied().fold(f64::NAN, f64::min)),
                fmt_f(angles.iter().copied().fold(f64::NAN, f64::max)),
                fmt_f(mean(v, |p| p.1)),
                fmt_f(mean(v, |p| p.2)),
                fmt_f(mean(v, |p| p.3)),
            ]);
            rows.push(r);
        }
    }
    write_csv(
        out,
        id,
        &caption,
        &[
            "arch",
            "depth",
            "slope",
            "mode",
            "seeds",
            "step",
            "angle_deg_mean",
            "angle_deg_std",
            "angle_deg_min",
            "angle_deg_max",
            "loss_mean",
            "train_err_mean",
            "test_err_mean",
        ],
        &rows,
    )
}
