//! The accuracy sweep's summary over seeds: [`mean_std`], per-point [`PointStats`] and the
//! printed [`accuracy_table`].

use super::{AccuracyConfig, AccuracyResult};
use crate::nets::{Arch, Source};

/// Mean and sample standard deviation (`n - 1`; 0 for one value) of `v`; NaN when empty.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// One point of the accuracy sweep over seeds: counted test accuracies (diverged runs at
/// chance) per mode, and the paired stored-minus-reconstructed differences (same seed).
#[derive(Debug, Clone, Default)]
pub struct PointStats {
    /// Stored accuracies, one per seed.
    pub stored: Vec<f64>,
    /// Reconstructed accuracies, one per seed.
    pub reconstructed: Vec<f64>,
    /// `stored - reconstructed` per seed that has both.
    pub diff: Vec<f64>,
    /// Diverged runs (stored, reconstructed).
    pub diverged: (usize, usize),
}

/// The statistics of `(arch, depth, slope)` over the seeds in `results`.
pub fn point_stats(results: &[AccuracyResult], arch: Arch, depth: usize, slope: f64) -> PointStats {
    let mut st = PointStats::default();
    let mut by_seed: std::collections::BTreeMap<u64, (Option<f64>, Option<f64>)> =
        Default::default();
    for r in results
        .iter()
        .filter(|r| r.point.arch == arch && r.point.depth == depth && r.point.slope == slope)
    {
        let a = r.test_acc();
        let e = by_seed.entry(r.point.seed).or_default();
        match r.point.mode {
            Source::Stored => {
                st.stored.push(a);
                st.diverged.0 += usize::from(r.diverged());
                e.0 = Some(a);
            }
            Source::Reconstructed => {
                st.reconstructed.push(a);
                st.diverged.1 += usize::from(r.diverged());
                e.1 = Some(a);
            }
            // Checkpointed gradients are bitwise the stored ones (the same run); anchored runs
            // are not part of this table: it pairs stored with reconstructed only.
            Source::Checkpointed | Source::Anchored => {}
        }
    }
    st.diff = by_seed
        .values()
        .filter_map(|(a, b)| Some((*a)? - (*b)?))
        .collect();
    st
}

/// Table of stored vs reconstructed test accuracy (mean ± sample std over seeds, %; diverged
/// runs counted at chance and counted in the last column) and the paired stored-minus-
/// reconstructed difference, per sweep and arch.
pub fn accuracy_table(cfg: &AccuracyConfig, results: &[AccuracyResult]) -> String {
    use std::fmt::Write;
    let pm = |v: &[f64]| {
        let (m, sd) = mean_std(v);
        if m.is_finite() && v.len() == 1 {
            // One seed has no spread to show.
            format!("{:.1}", 100.0 * m)
        } else if m.is_finite() {
            format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * sd)
        } else {
            "-".into()
        }
    };
    let mut s = String::new();
    for &arch in &cfg.archs {
        let sweeps: [(&str, Vec<(usize, f64)>); 2] = [
            (
                &*format!("depth sweep at slope {}", cfg.depth_sweep.slope),
                cfg.depth_sweep
                    .depths
                    .iter()
                    .map(|&d| (d, cfg.depth_sweep.slope))
                    .collect(),
            ),
            (
                &*format!("slope sweep at depth {}", cfg.slope_sweep.depth),
                cfg.slope_sweep
                    .slopes
                    .iter()
                    .map(|&n| (cfg.slope_sweep.depth, n))
                    .collect(),
            ),
        ];
        for (title, pts) in sweeps.iter() {
            if pts.is_empty() {
                continue;
            }
            let _ = writeln!(
                s,
                "\n{arch}, {title}: test accuracy %, {}",
                match cfg.seeds.len() {
                    1 => "one seed (no spread)".to_string(),
                    n => format!("mean ± std over {n} seeds"),
                }
            );
            let _ = writeln!(
                s,
                "{:>6} {:>6} {:>13} {:>14} {:>17} {:>9}",
                "depth", "slope", "stored", "reconstructed", "stored - recon", "diverged"
            );
            for &(d, n) in pts {
                let st = point_stats(results, arch, d, n);
                let _ = writeln!(
                    s,
                    "{d:>6} {n:>6} {:>13} {:>14} {:>17} {:>9}",
                    pm(&st.stored),
                    pm(&st.reconstructed),
                    pm(&st.diff),
                    format!("{}/{}", st.diverged.0, st.diverged.1)
                );
            }
        }
    }
    s.push_str("\n(diverged: stored/reconstructed runs that stopped on a non-finite loss or gradient; each counts at chance)\n");
    if results
        .iter()
        .any(|r| !matches!(r.point.mode, Source::Stored | Source::Reconstructed))
    {
        s.push_str(&modes_table(cfg, results, &pm));
    }
    s
}

/// Every mode of the grid side by side (`anchored:<dB>` per target), per architecture and
/// network: test accuracy (mean ± std over seeds, %) and the diverged runs, and for anchored
/// runs the mean number of anchors and the largest anchor bytes per input pixel.
fn modes_table(
    cfg: &AccuracyConfig,
    results: &[AccuracyResult],
    pm: &dyn Fn(&[f64]) -> String,
) -> String {
    use std::fmt::Write;
    let mut labels: Vec<String> = Vec::new();
    for p in cfg.grid() {
        let l = p.mode_label();
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    let mut nets: Vec<(Arch, usize, f64)> = Vec::new();
    for p in cfg.grid() {
        if !nets.contains(&(p.arch, p.depth, p.slope)) {
            nets.push((p.arch, p.depth, p.slope));
        }
    }
    let mut s = String::from("\nEvery mode: test accuracy %, mean ± std over seeds [diverged]; anchored: {anchors per plan, mean}, {bytes/pixel held}\n");
    let _ = write!(s, "{:>10} {:>6} {:>6}", "arch", "depth", "slope");
    for l in &labels {
        let _ = write!(s, " {l:>28}");
    }
    s.push('\n');
    for (arch, depth, slope) in nets {
        let _ = write!(s, "{:>10} {depth:>6} {slope:>6}", arch.to_string());
        for l in &labels {
            let runs: Vec<&AccuracyResult> = results
                .iter()
                .filter(|r| {
                    r.point.arch == arch
                        && r.point.depth == depth
                        && r.point.slope == slope
                        && r.point.mode_label() == *l
                })
                .collect();
            let accs: Vec<f64> = runs.iter().map(|r| r.test_acc()).collect();
            let diverged = runs.iter().filter(|r| r.diverged()).count();
            let mut cell = format!("{} [{diverged}]", pm(&accs));
            let plans: Vec<usize> = runs
                .iter()
                .flat_map(|r| r.plans.iter().map(|p| p.anchors.len()))
                .collect();
            if !plans.is_empty() {
                let bpp = runs
                    .iter()
                    .map(|r| r.anchor_bytes_per_pixel)
                    .filter(|v| v.is_finite())
                    .fold(0.0f64, f64::max);
                let mean = plans.iter().sum::<usize>() as f64 / plans.len() as f64;
                cell = format!("{cell} {mean:.1}, {bpp:.0}");
            }
            let _ = write!(s, " {cell:>28}");
        }
        s.push('\n');
    }
    s
}
