//! `anchors`: anchors needed and the bytes they hold per input pixel, vs depth and vs slope.

use crate::error::Result;
use crate::experiments::figures::*;
use crate::nets::Arch;
use crate::plot::common::*;
use crate::plot::{render, Chart, Figure, Series, Style};
use crate::results::text::num_text;
use std::path::Path;

/// Header of `anchors.csv`: one row per network, weights and target.
pub const ANCHORS_HEADER: [&str; 13] = [
    "arch",
    "depth",
    "slope",
    "weights",
    "target_db",
    "anchors",
    "rebuilt",
    "bytes_held",
    "bytes_per_pixel",
    "lowest_snr_db",
    "lowest_predicted_db",
    "train_loss",
    "anchor_names",
];

/// The deepest depth of the depth sweep up to which `arch` at `target` with `weights` needs no
/// anchor (every shallower depth too), and the first depth that needs one.
fn anchor_free_up_to(
    pts: &[&AnchorsPoint],
    arch: Arch,
    target: f64,
    weights: &str,
) -> (Option<usize>, Option<usize>) {
    let mut rows: Vec<&&AnchorsPoint> = pts
        .iter()
        .filter(|p| p.net.arch == arch && p.target_db == target && p.weights == weights)
        .collect();
    rows.sort_by_key(|p| p.net.depth);
    let first_needed = rows.iter().find(|p| p.anchors > 0).map(|p| p.net.depth);
    let free = rows
        .iter()
        .take_while(|p| p.anchors == 0 && !p.bytes_per_pixel.is_nan())
        .last()
        .map(|p| p.net.depth);
    (free, first_needed)
}

/// Four panels: anchors and bytes per input pixel vs depth (at the config's slope), then vs
/// slope (at its slope depth); colour = architecture and target, solid with markers at
/// initialisation, dashed after training. The caption says, per architecture, target and
/// weights, up to which depth no anchor is needed.
pub fn anchors(res: &Results, out: &Path) -> Result<()> {
    let id = "anchors";
    let r = res.load(id)?;
    let ResultData::Anchors(d) = expect_kind(&r, res, "anchors")? else {
        unreachable!()
    };
    let ExperimentConfig::Anchors(c) = &r.config else {
        return Err(malformed(
            &res.path(id),
            "its config is not an anchors config",
        ));
    };
    if d.points.is_empty() {
        return Err(malformed(&res.path(id), "no points"));
    }
    let mut archs: Vec<Arch> = Vec::new();
    let mut targets: Vec<f64> = Vec::new();
    for p in &d.points {
        if !archs.contains(&p.net.arch) {
            archs.push(p.net.arch);
        }
        if !targets.contains(&p.target_db) {
            targets.push(p.target_db);
        }
    }
    let by_depth: Vec<&AnchorsPoint> = d
        .points
        .iter()
        .filter(|p| p.net.slope == c.slope && c.depths.contains(&p.net.depth))
        .collect();
    let by_slope: Vec<&AnchorsPoint> = d
        .points
        .iter()
        .filter(|p| p.net.depth == c.slope_depth && c.slopes.contains(&p.net.slope))
        .collect();
    type Axis = fn(&AnchorsPoint) -> f64;
    // The legend (12 entries) is drawn in the first panel only, above its data.
    let panel = |pts: &[&AnchorsPoint],
                 x: Axis,
                 y: Axis,
                 title: String,
                 xl: &str,
                 yl: &str,
                 legend: bool| {
        let mut chart = Chart::new(title, xl, yl);
        chart.x_log = true;
        for (ai, &arch) in archs.iter().enumerate() {
            for (ti, &t) in targets.iter().enumerate() {
                for (weights, style) in [("init", Style::LineMarkers), ("trained", Style::Dashed)] {
                    let mut xy: Vec<(f64, f64)> = pts
                        .iter()
                        .filter(|p| p.net.arch == arch && p.target_db == t && p.weights == weights)
                        .map(|p| (x(p), y(p)))
                        .filter(|(_, v)| v.is_finite())
                        .collect();
                    xy.sort_by(|a, b| a.0.total_cmp(&b.0));
                    if xy.is_empty() {
                        continue;
                    }
                    let label = if legend {
                        format!("{arch} {t} dB {weights}")
                    } else {
                        String::new()
                    };
                    let color = ai * targets.len() + ti;
                    chart
                        .series
                        .push(Series::new(label, xy, style).with_color(color));
                }
            }
        }
        reserve_legend_room(&mut chart, 0.0, if legend { 1.4 } else { 0.1 });
        chart
    };
    let anchors_of: Axis = |p| p.anchors as f64;
    let bpp_of: Axis = |p| p.bytes_per_pixel;
    let depth_of: Axis = |p| p.net.depth as f64;
    let slope_of: Axis = |p| p.net.slope;
    let mut panels = Vec::new();
    if !by_depth.is_empty() {
        let t = |what: &str| format!("{what} vs depth (n = {})", c.slope);
        panels.push(panel(
            &by_depth,
            depth_of,
            anchors_of,
            t("anchors"),
            "depth (units or blocks)",
            "anchors placed",
            true,
        ));
        panels.push(panel(
            &by_depth,
            depth_of,
            bpp_of,
            t("anchor bytes"),
            "depth (units or blocks)",
            "anchor bytes per input pixel",
            false,
        ));
    }
    if !by_slope.is_empty() {
        let t = |what: &str| format!("{what} vs slope (depth {})", c.slope_depth);
        panels.push(panel(
            &by_slope,
            slope_of,
            anchors_of,
            t("anchors"),
            "leaky-ReLU slope n",
            "anchors placed",
            by_depth.is_empty(),
        ));
        panels.push(panel(
            &by_slope,
            slope_of,
            bpp_of,
            t("anchor bytes"),
            "leaky-ReLU slope n",
            "anchor bytes per input pixel",
            false,
        ));
    }
    let mut free = Vec::new();
    for &arch in &archs {
        for &t in &targets {
            for weights in ["init", "trained"] {
                let (up_to, first) = anchor_free_up_to(&by_depth, arch, t, weights);
                let up_to = up_to.map_or("no depth".to_string(), |d| format!("depth {d}"));
                let first = first.map_or("none of the depths needs one".to_string(), |d| {
                    format!("first needed at depth {d}")
                });
                free.push(format!("{arch} {t} dB {weights}: {up_to} ({first})"));
            }
        }
    }
    let caption = format!(
        "{} Planner on {}: the fewest anchors (stored layer inputs) that keep every rebuilt input at the target SNR against the stored one; bytes per pixel = anchor bytes / (batch x input height x input width). Solid: initial weights; dashed: after the short training. No anchors needed up to: {}.",
        r.caption(),
        d.probe,
        free.join("; ")
    );
    render(
        &Figure {
            title: "Anchors needed for an SNR target, at initialisation and after training".into(),
            caption: caption.clone(),
            panels,
        },
        &stem(out, id),
    )?;
    let rows: Vec<Vec<String>> = d
        .points
        .iter()
        .map(|p| {
            vec![
                p.net.arch.to_string(),
                p.net.depth.to_string(),
                num_text(p.net.slope),
                p.weights.clone(),
                num_text(p.target_db),
                p.anchors.to_string(),
                p.rebuilt.to_string(),
                p.bytes_held.to_string(),
                num_text(p.bytes_per_pixel),
                num_text(p.lowest_snr_db),
                num_text(p.lowest_predicted_db),
                num_text(p.train_loss),
                p.anchor_names.clone(),
            ]
        })
        .collect();
    write_csv(out, id, &caption, &ANCHORS_HEADER, &rows)
}
