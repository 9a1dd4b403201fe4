//! `tradeoff`: the memory, time and exactness frontier of the sources.

use crate::error::Result;
use crate::experiments::figures::*;
use crate::experiments::tradeoff::TradeoffPoint;
use crate::nets::Arch;
use crate::plot::common::*;
use crate::plot::{render, Chart, Figure, Series, Style};
use crate::results::text::num_text;
use std::path::Path;

/// The sources in the figure's order, with each one's legend (in the first panel), palette
/// colour and marker shape (one shape per source).
const SOURCES: [(&str, &str, usize); 5] = [
    ("stored", "stored", 0),
    ("checkpointed", "checkpointed", 1),
    ("reconstructed", "rec", 2),
    ("algorithm1", "alg1", 3),
    ("anchored", "anchored", 4),
];

/// The label of a frontier point: its source (`stored`, `k=K` for a checkpointed one, `rec`
/// for reconstructed per layer, `alg1` for Algorithm 1, `≥T dB n=N` for an anchored one with
/// target `T` and `N` anchors), then, for the sources that rebuild inputs, the lowest-layer
/// SNR (dB). The gradient angles are in `tradeoff.csv`.
pub(crate) fn tradeoff_label(p: &TradeoffPoint) -> String {
    let snr = || format!("{:.0} dB", p.lowest_snr_db);
    match (p.source.as_str(), p.segment, &p.anchors) {
        (_, Some(k), _) => format!("k={k}"),
        ("reconstructed", _, _) => format!("rec {}", snr()),
        ("algorithm1", _, _) => format!("alg1 {}", snr()),
        (_, _, Some(a)) => match a.min_snr_db {
            Some(t) => format!("≥{t} dB n={}", a.n_anchors),
            None => format!("n={}", a.n_anchors),
        },
        (other, _, _) => other.to_string(),
    }
}

/// The labels of one source's points ([`tradeoff_label`]), except that anchored points with
/// the same anchors (targets met by one plan) share one label, on the first: `≥30, 60 dB n=0`.
fn point_labels(pts: &[&TradeoffPoint]) -> Vec<String> {
    let mut labels: Vec<String> = pts.iter().map(|p| tradeoff_label(p)).collect();
    for i in 0..pts.len() {
        let Some(a) = &pts[i].anchors else { continue };
        let first = (0..i).find(|&j| {
            !labels[j].is_empty()
                && pts[j]
                    .anchors
                    .as_ref()
                    .is_some_and(|b| b.anchors == a.anchors)
        });
        if let (Some(j), Some(t)) = (first, a.min_snr_db) {
            labels[j] = labels[j].replacen(" dB", &format!(", {t} dB"), 1);
            labels[i].clear();
        }
    }
    labels
}

/// The points of `points` that no other point beats in both memory and time: none has
/// `time_ratio <=` and `bytes_per_pixel <=` with one of them `<`. Sorted by time.
pub(crate) fn pareto_front<'a>(points: &[&'a TradeoffPoint]) -> Vec<&'a TradeoffPoint> {
    let dominated = |p: &TradeoffPoint| {
        points.iter().any(|q| {
            q.time_ratio <= p.time_ratio
                && q.bytes_per_pixel <= p.bytes_per_pixel
                && (q.time_ratio < p.time_ratio || q.bytes_per_pixel < p.bytes_per_pixel)
        })
    };
    let mut front: Vec<&TradeoffPoint> = points
        .iter()
        .copied()
        .filter(|p| p.time_ratio.is_finite() && !dominated(p))
        .collect();
    front.sort_by(|a, b| a.time_ratio.total_cmp(&b.time_ratio));
    front
}

/// The frontier: one panel per architecture at the deepest depth measured (every depth is in
/// the CSV), measured peak activation bytes per input pixel (log) against step time relative
/// to the stored step; one colour and marker shape per source, the Pareto front (points not
/// beaten in both memory and time) dashed, each point labelled with its source and, where
/// inputs are rebuilt, its lowest-layer SNR. Writes `tradeoff.{png,svg,csv}` and the wall
/// times with each point's place on the front to `tradeoff.timings.csv`.
pub fn tradeoff(res: &Results, out: &Path) -> Result<()> {
    let id = "tradeoff";
    let r = res.load(id)?;
    let ResultData::Tradeoff(d) = expect_kind(&r, res, "tradeoff")? else {
        unreachable!()
    };
    if d.points.is_empty() {
        return Err(malformed(&res.path(id), "no points"));
    }
    let mut archs: Vec<Arch> = Vec::new();
    for p in &d.points {
        if !archs.contains(&p.arch) {
            archs.push(p.arch);
        }
    }
    let depth = d.points.iter().map(|p| p.depth).max().unwrap_or(0);
    let xy = |p: &TradeoffPoint| (p.time_ratio, p.bytes_per_pixel);
    let mut panels = Vec::new();
    let mut on_front: Vec<&TradeoffPoint> = Vec::new();
    for (panel, &arch) in archs.iter().enumerate() {
        // The legend once, in the first panel: the sources look the same in every panel.
        let legend = |text: &str| {
            if panel == 0 {
                text.to_string()
            } else {
                String::new()
            }
        };
        let mut c = Chart::new(
            format!("{arch}, D={depth}"),
            "step time / stored step time",
            "peak activation bytes per input pixel",
        );
        c.y_log = true;
        let here: Vec<&TradeoffPoint> = d
            .points
            .iter()
            .filter(|p| p.arch == arch && p.depth == depth)
            .collect();
        for (source, name, color) in SOURCES {
            let mut pts: Vec<&TradeoffPoint> = here
                .iter()
                .copied()
                .filter(|p| p.source == source)
                .collect();
            pts.sort_by_key(|p| p.segment);
            if pts.is_empty() {
                continue;
            }
            c.series.push(
                Series::new(
                    legend(name),
                    pts.iter().map(|p| xy(p)).collect(),
                    Style::Markers,
                )
                .with_color(color)
                .with_marker(color)
                .with_labels(point_labels(&pts)),
            );
        }
        let front = pareto_front(&here);
        c.series.push(
            Series::new(
                legend("Pareto front"),
                front.iter().map(|p| xy(p)).collect(),
                Style::Dashed,
            )
            .with_color(6),
        );
        panels.push(c);
    }
    // The front at every depth, for the sidecar.
    let mut depths: Vec<usize> = d.points.iter().map(|p| p.depth).collect();
    depths.sort_unstable();
    depths.dedup();
    for &arch in &archs {
        for &dd in &depths {
            let pts: Vec<&TradeoffPoint> = d
                .points
                .iter()
                .filter(|p| p.arch == arch && p.depth == dd)
                .collect();
            on_front.extend(pareto_front(&pts));
        }
    }
    let caption = format!(
        "{} Per architecture at D={depth} (every depth measured is in tradeoff.csv): the activation peak of one training step (heap bytes above those live before it, parameter gradients excluded, counting allocator) per input pixel, log scale, against its median time over the stored step's (sources interleaved on one CPU; ratios depend on the CPU and its load). One colour and marker per source: stored; checkpointed, k=K units or blocks per segment (K = 1, 2, 4, ..., ceil(sqrt(D)) and D, k = D being the stored step); rec: reconstructed per layer (for the hybrid its block inverse with the hidden activations rebuilt layer-wise); alg1: Algorithm 1; anchored: reconstructed with the planner's anchors stored, ≥T dB the target every rebuilt input holds on the batch, n the anchors placed. rec and alg1 carry their lowest-layer SNR against the stored trace. Dashed: the Pareto front, the points no other beats in both memory and time. Gradient angles and the anchors' names and bytes are in tradeoff.csv.",
        r.caption()
    );
    render(
        &Figure {
            title:
                "Memory against time: stored, checkpointed, reconstructed and anchored activations"
                    .into(),
            caption: caption.clone(),
            panels,
        },
        &stem(out, id),
    )?;
    let key = |p: &TradeoffPoint| {
        vec![
            p.arch.to_string(),
            p.depth.to_string(),
            p.source.clone(),
            p.segment.map_or(String::new(), |k| k.to_string()),
            p.anchors
                .as_ref()
                .and_then(|a| a.min_snr_db)
                .map_or(String::new(), num_text),
        ]
    };
    // Wall times vary from run to run: they go to the sidecar, so that the CSV of a rerun is
    // the same bytes.
    let timings: Vec<Vec<String>> = d
        .points
        .iter()
        .map(|p| {
            let mut r = key(p);
            r.extend([
                num_text(p.median_s),
                num_text(p.time_ratio),
                on_front.iter().any(|q| std::ptr::eq(*q, p)).to_string(),
            ]);
            r
        })
        .collect();
    let text = crate::results::csv::csv_text(&TRADEOFF_TIMINGS_HEADER, &timings)?;
    crate::util::write_atomic(&timings_path(out, id), text.as_bytes())?;
    let rows: Vec<Vec<String>> = d
        .points
        .iter()
        .map(|p| {
            let mut r = key(p);
            r.extend([
                num_text(p.bytes_per_pixel),
                p.act_peak_bytes.to_string(),
                p.peak_bytes.to_string(),
                num_text(p.lowest_snr_db),
                p.lowest_layer.clone(),
                num_text(p.grad_angle_deg),
            ]);
            let a = p.anchors.as_ref();
            r.extend([
                a.map_or(String::new(), |a| a.n_anchors.to_string()),
                a.map_or(String::new(), |a| a.anchors.join(";")),
                a.map_or(String::new(), |a| a.bytes_held.to_string()),
            ]);
            r
        })
        .collect();
    write_csv(out, id, &caption, &TRADEOFF_HEADER, &rows)
}

/// Header of `tradeoff.csv`: one row per point, no wall time (those are in
/// [`TRADEOFF_TIMINGS_HEADER`]); `min_snr_db` (the target), `n_anchors`, `anchors`
/// (`;`-separated, top down) and `anchor_bytes` (the bytes their inputs hold) are empty except
/// for anchored points.
pub const TRADEOFF_HEADER: [&str; 14] = [
    "arch",
    "depth",
    "source",
    "segment",
    "min_snr_db",
    "bytes_per_pixel",
    "act_peak_bytes",
    "peak_bytes",
    "lowest_snr_db",
    "lowest_layer",
    "grad_angle_deg",
    "n_anchors",
    "anchors",
    "anchor_bytes",
];

/// Header of `tradeoff.timings.csv`: the key columns of a `tradeoff.csv` row (`arch, depth,
/// source, segment, min_snr_db`), its median step time `median_s` (s), `time_ratio` (over the
/// stored step's median, the figure's x axis) and `pareto` (`true` when no point of the same
/// architecture and depth beats it in both memory and time: it depends on the times).
pub const TRADEOFF_TIMINGS_HEADER: [&str; 8] = [
    "arch",
    "depth",
    "source",
    "segment",
    "min_snr_db",
    "median_s",
    "time_ratio",
    "pareto",
];
