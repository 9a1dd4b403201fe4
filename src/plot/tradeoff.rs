//! `tradeoff`: the memory, time and exactness frontier of the sources.

use crate::error::Result;
use crate::experiments::figures::*;
use crate::experiments::tradeoff::TradeoffPoint;
use crate::nets::Arch;
use crate::plot::common::*;
use crate::plot::{render, Chart, Figure, Series, Style};
use crate::results::text::num_text;
use std::path::Path;

/// The label of a frontier point: its source (`k=K` for a checkpointed one, `rec` for
/// reconstructed per layer, `alg1` for Algorithm 1), then its lowest-layer SNR (dB; `∞` when
/// exact) and gradient angle (degrees).
pub(crate) fn tradeoff_label(p: &TradeoffPoint) -> String {
    let snr = if p.lowest_snr_db == f64::INFINITY {
        "∞".to_string()
    } else {
        format!("{:.0} dB", p.lowest_snr_db)
    };
    let angle = if p.grad_angle_deg == 0.0 {
        "0°".to_string()
    } else if p.grad_angle_deg >= 0.1 {
        format!("{:.1}°", p.grad_angle_deg)
    } else {
        format!("{:.0e}°", p.grad_angle_deg)
    };
    let what = match (p.source.as_str(), p.segment) {
        (_, Some(k)) => format!("k={k}"),
        ("reconstructed", _) => "rec".to_string(),
        ("algorithm1", _) => "alg1".to_string(),
        (other, _) => other.to_string(),
    };
    format!("{what} {snr}, {angle}")
}

/// The frontier: one panel per architecture, measured peak activation bytes per
/// input pixel (log) against step time relative to the stored step; colour and marker = depth.
/// Every point is labelled with its source (`stored`, `k=K` checkpointed, `rec` reconstructed
/// per layer, `alg1` Algorithm 1), its lowest-layer SNR and its gradient angle. Writes
/// `tradeoff.{png,svg,csv}` and the wall times to `tradeoff.timings.csv`.
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
    let mut depths: Vec<usize> = Vec::new();
    for p in &d.points {
        if !archs.contains(&p.arch) {
            archs.push(p.arch);
        }
        if !depths.contains(&p.depth) {
            depths.push(p.depth);
        }
    }
    depths.sort_unstable();
    let xy = |p: &TradeoffPoint| (p.time_ratio, p.bytes_per_pixel);
    let mut panels = Vec::new();
    for &arch in &archs {
        let mut c = Chart::new(
            format!("{arch}"),
            "step time / stored step time",
            "peak activation bytes per input pixel",
        );
        c.y_log = true;
        for (ci, &depth) in depths.iter().enumerate() {
            let of = |source: &str| -> Vec<&TradeoffPoint> {
                d.points
                    .iter()
                    .filter(|p| p.arch == arch && p.depth == depth && p.source == source)
                    .collect()
            };
            let mut ckpt = of("checkpointed");
            ckpt.sort_by_key(|p| p.segment);
            let stored = of("stored");
            let mut pts: Vec<&TradeoffPoint> = stored;
            pts.extend(ckpt.iter().copied());
            pts.extend(of("reconstructed"));
            pts.extend(of("algorithm1"));
            if !pts.is_empty() {
                c.series.push(
                    Series::new(
                        format!("D={depth}"),
                        pts.iter().map(|p| xy(p)).collect(),
                        Style::Markers,
                    )
                    .with_color(ci)
                    .with_labels(pts.iter().map(|p| tradeoff_label(p)).collect()),
                );
            }
        }
        panels.push(c);
    }
    let caption = format!(
        "{} Per architecture and depth D (colour): the activation peak of one training step (heap bytes above those live before it, parameter gradients excluded, counting allocator) per input pixel, against its median time over the stored step's (sources interleaved on one CPU; ratios depend on the CPU). Labels: the source (stored; k=K: checkpointed with K = 1, 2, 4, ..., ceil(sqrt(D)) and D units or blocks per segment, k = D being the stored step; rec: reconstructed per layer, for the hybrid its block inverse with the hidden activations rebuilt layer-wise; alg1: Algorithm 1), then the lowest-layer reconstruction SNR against the stored trace and the whole-network gradient angle to the stored gradients, measured on the same batch (∞ and 0° measured for stored and checkpointed).",
        r.caption()
    );
    render(
        &Figure {
            title: "Memory, time and exactness: stored, checkpointed and reconstructed activations"
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
        ]
    };
    // Wall times vary from run to run: they go to the sidecar, so that the CSV of a rerun is
    // the same bytes.
    let timings: Vec<Vec<String>> = d
        .points
        .iter()
        .map(|p| {
            let mut r = key(p);
            r.extend([num_text(p.median_s), num_text(p.time_ratio)]);
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
            r
        })
        .collect();
    write_csv(out, id, &caption, &TRADEOFF_HEADER, &rows)
}

/// Header of `tradeoff.csv`: one row per point, no wall time (those are in
/// [`TRADEOFF_TIMINGS_HEADER`]).
pub const TRADEOFF_HEADER: [&str; 10] = [
    "arch",
    "depth",
    "source",
    "segment",
    "bytes_per_pixel",
    "act_peak_bytes",
    "peak_bytes",
    "lowest_snr_db",
    "lowest_layer",
    "grad_angle_deg",
];

/// Header of `tradeoff.timings.csv`: the key columns of a `tradeoff.csv` row (`arch, depth,
/// source, segment`), its median step time `median_s` (s) and `time_ratio` (over the stored
/// step's median, the figure's x axis).
pub const TRADEOFF_TIMINGS_HEADER: [&str; 6] = [
    "arch",
    "depth",
    "source",
    "segment",
    "median_s",
    "time_ratio",
];
