//! The files of a memory run: the CSVs (typed rows) and JSON written by
//! [`MemoryResults::write`], and the check that --out is writable.

use super::*;
use crate::error::{Error, Result};
use crate::results::csv::csv_serialized as csv_string;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub(crate) fn opt(x: Option<f64>, digits: usize) -> String {
    x.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

#[derive(Serialize)]
pub(crate) struct MeasuredCsv<'a> {
    arch: &'a str,
    mode: &'a str,
    depth: usize,
    batch: usize,
    size: usize,
    width: usize,
    dtype: &'a str,
    peak_bytes: usize,
    bytes_per_pixel: f64,
    tape_bytes: usize,
    layers: usize,
    weight_bytes: usize,
    grad_bytes: usize,
    act_peak_bytes: usize,
    act_bytes_per_pixel: f64,
    held_bytes: usize,
    analytic_bytes_per_pixel: Option<f64>,
    peak_min_bytes: usize,
    step_seconds: f64,
    measurement: &'static str,
}

#[derive(Serialize)]
pub(crate) struct AnchorsCsv<'a> {
    arch: &'a str,
    depth: usize,
    batch: usize,
    size: usize,
    anchoring: &'a str,
    n_anchors: usize,
    anchors: String,
    bytes_held: usize,
    lowest_snr_db: String,
    peak_bytes: usize,
    act_peak_bytes: usize,
}

/// `anchors.csv`, written beside the others when a run measures the anchored mode: one row
/// per anchored point, with what [`OUTPUT_FILES`] says of it.
pub const ANCHORS_FILE: (&str, &str) = (
    "anchors.csv",
    "one row per anchored point: how the anchors were chosen, their number and names (top down, `;`-separated), the bytes their inputs hold, the lowest SNR of the rebuilt inputs on the point's batch, and the point's peaks",
);

#[derive(Serialize)]
pub(crate) struct ScalingCsv<'a> {
    arch: &'a str,
    mode: &'a str,
    axis: Axis,
    unit: &'a str,
    values: String,
    slope: f64,
    intercept: f64,
    r2: f64,
    act_slope: f64,
    act_intercept: f64,
    act_r2: f64,
    ratio_last_first: f64,
    measurement: &'static str,
}

#[derive(Serialize)]
pub(crate) struct SummaryCsv<'a> {
    arch: &'a str,
    mode: &'a str,
    analytic_bpx: Option<f64>,
    measured_bpx: f64,
    marginal_bpx: Option<f64>,
    marginal_over_analytic: Option<f64>,
    measured_over_analytic: Option<f64>,
    marginal_r2: Option<f64>,
    paper_bpx: Option<f64>,
    peak_bpx: f64,
    grad_bytes: usize,
    weight_bytes: usize,
    tape_bytes: usize,
    layers: usize,
    depth: usize,
    width: usize,
    input_size: usize,
    batch: usize,
    batches: String,
    pools: &'a str,
    channels: &'a str,
    blocks: &'a str,
    dtype: &'a str,
    depth_slope: Option<f64>,
    depth_act_slope: Option<f64>,
    grad_bytes_per_block: Option<f64>,
    measurement: &'static str,
}

/// The `measurement` column of the CSVs and the printed table: `measured`, or
/// `copied-from-stored` for a row that repeats the stored step of the same network (the
/// ResNet has no inverse: its reconstructed step is its stored step, not measured again).
pub fn measurement_label(copied_from_stored: bool) -> &'static str {
    if copied_from_stored {
        "copied-from-stored"
    } else {
        "measured"
    }
}

pub(crate) fn semicolon_joined(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

/// The files [`MemoryResults::write_all`] writes, with what each holds (also in `run.json`).
pub const OUTPUT_FILES: [(&str, &str); 5] = [
    (
        "summary.csv",
        "one row per (arch, mode) at the comparison point: analytic_bpx, measured_bpx, marginal_bpx and their ratios, bytes per input pixel of activations and activation gradients (weights and parameter gradients excluded)",
    ),
    (
        "measured.csv",
        "one row per measured step: peak, parameter-gradient, weight and tape bytes",
    ),
    (
        "scaling.csv",
        "least-squares fits of the peak and of the activation peak along the depth, batch and resolution sweeps",
    ),
    (
        "table1.csv",
        "the analytic Table 1 (paper configurations) beside the paper's printed figures",
    ),
    ("run.json", "configuration, provenance, timings, summary and fits"),
];

impl MemoryResults {
    /// `table1.csv`: the analytic Table 1 rows (paper configurations).
    pub fn table1_csv(&self) -> Result<String> {
        csv_string(&self.table1)
    }

    /// `measured.csv`: one row per measured point.
    pub fn measured_csv(&self) -> Result<String> {
        csv_string(self.points.iter().map(|p| MeasuredCsv {
            arch: p.arch.as_str(),
            mode: p.mode.as_str(),
            depth: p.depth,
            batch: p.batch,
            size: p.size,
            width: p.width,
            dtype: &p.dtype,
            peak_bytes: p.peak_bytes,
            bytes_per_pixel: p.bytes_per_pixel,
            tape_bytes: p.tape_bytes,
            layers: p.layers,
            weight_bytes: p.weight_bytes,
            grad_bytes: p.grad_bytes,
            act_peak_bytes: p.act_peak_bytes,
            act_bytes_per_pixel: p.act_bytes_per_pixel,
            held_bytes: p.held_bytes,
            analytic_bytes_per_pixel: p.analytic_bytes_per_pixel,
            peak_min_bytes: p.peak_min_bytes,
            step_seconds: p.step_seconds,
            measurement: measurement_label(p.copied_from_stored),
        }))
    }

    /// `anchors.csv`: one row per anchored point (architectures without an inverse, whose
    /// anchored step is their stored one, have none); `None` when the run has none.
    pub fn anchors_csv(&self) -> Result<Option<String>> {
        let rows: Vec<AnchorsCsv> = self
            .points
            .iter()
            .filter_map(|p| {
                let a = p.anchors.as_ref()?;
                Some(AnchorsCsv {
                    arch: p.arch.as_str(),
                    depth: p.depth,
                    batch: p.batch,
                    size: p.size,
                    anchoring: &a.anchoring,
                    n_anchors: a.n_anchors,
                    anchors: a.anchors.join(";"),
                    bytes_held: a.bytes_held,
                    lowest_snr_db: crate::results::text::fmt_f_exact(a.lowest_snr_db),
                    peak_bytes: p.peak_bytes,
                    act_peak_bytes: p.act_peak_bytes,
                })
            })
            .collect();
        if rows.is_empty() {
            return Ok(None);
        }
        csv_string(rows).map(Some)
    }

    /// `scaling.csv`: one row per (architecture, mode, sweep).
    pub fn scaling_csv(&self) -> Result<String> {
        csv_string(self.scaling.iter().map(|f| ScalingCsv {
            arch: f.arch.as_str(),
            mode: f.mode.as_str(),
            axis: f.axis,
            unit: &f.unit,
            values: semicolon_joined(&f.values),
            slope: f.slope,
            intercept: f.intercept,
            r2: f.r2,
            act_slope: f.act_slope,
            act_intercept: f.act_intercept,
            act_r2: f.act_r2,
            ratio_last_first: f.ratio_last_first,
            measurement: measurement_label(f.copied_from_stored),
        }))
    }

    /// `summary.csv`: one row per (architecture, mode), see [`SummaryRow`]; a model figure
    /// that does not apply is an empty field.
    pub fn summary_csv(&self) -> Result<String> {
        csv_string(self.summary.iter().map(|r| SummaryCsv {
            arch: r.arch.as_str(),
            mode: r.mode.as_str(),
            analytic_bpx: r.analytic_bpx,
            measured_bpx: r.measured_bpx,
            marginal_bpx: r.marginal_bpx,
            marginal_over_analytic: r.marginal_over_analytic,
            measured_over_analytic: r.measured_over_analytic,
            marginal_r2: r.marginal_r2,
            paper_bpx: r.paper_bpx,
            peak_bpx: r.peak_bpx,
            grad_bytes: r.grad_bytes,
            weight_bytes: r.weight_bytes,
            tape_bytes: r.tape_bytes,
            layers: r.layers,
            depth: r.depth,
            width: r.width,
            input_size: r.input_size,
            batch: r.batch,
            batches: semicolon_joined(&r.batches),
            pools: &r.pools,
            channels: &r.channels,
            blocks: &r.blocks,
            dtype: &r.dtype,
            depth_slope: r.depth_slope,
            depth_act_slope: r.depth_act_slope,
            grad_bytes_per_block: r.grad_bytes_per_block,
            measurement: measurement_label(r.copied_from_stored),
        }))
    }

    /// `run.json`: configuration, provenance, timings, summary and fits.
    pub fn run_json(&self) -> Result<String> {
        let anchored = self.points.iter().any(|p| p.anchors.is_some());
        let mut v = serde_json::json!({
            "experiment": "memory",
            "files": OUTPUT_FILES
                .iter()
                .chain(anchored.then_some(&ANCHORS_FILE))
                .map(|(f, what)| (f.to_string(), serde_json::Value::from(*what)))
                .collect::<serde_json::Map<_, _>>(),
            "config": self.config,
            // The networks' init (it does not change the bytes measured; recorded as in every
            // tool's results): the default of every tool.
            "init": crate::experiments::snr_sweep::init_record(&self.config.net),
            "topology": crate::experiments::snr_sweep::topology_record(&self.config.net),
            "crate_version": self.crate_version,
            "git_revision": self.git_revision,
            "device": self.device,
            "backend": self.backend,
            "device_info": crate::device::device_record(self.config.device, self.config.backend),
            "dtype": self.dtype,
            "threads": self.threads,
            "timings": self.timings,
            "summary": self.summary,
            "scaling": self.scaling,
        });
        crate::provenance::attach(&mut v);
        serde_json::to_string_pretty(&v).map_err(|e| Error::internal("JSON serialisation", e))
    }

    /// The summary as a Markdown table (one row per architecture and mode), with a line on the
    /// measured point ([`summary_markdown`]): what `memory` prints.
    pub fn markdown(&self) -> String {
        summary_markdown(&self.config, &self.dtype, &self.summary)
    }

    /// Write `summary.csv`, `table1.csv`, `measured.csv`, `scaling.csv`, `anchors.csv` (when
    /// the run measured the anchored mode) and `run.json` into `dir` (created if needed), each
    /// atomically (a temporary file renamed into place).
    pub fn write_all(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        crate::util::write_atomic(&dir.join("summary.csv"), self.summary_csv()?.as_bytes())?;
        crate::util::write_atomic(&dir.join("table1.csv"), self.table1_csv()?.as_bytes())?;
        crate::util::write_atomic(&dir.join("measured.csv"), self.measured_csv()?.as_bytes())?;
        crate::util::write_atomic(&dir.join("scaling.csv"), self.scaling_csv()?.as_bytes())?;
        if let Some(text) = self.anchors_csv()? {
            crate::util::write_atomic(&dir.join(ANCHORS_FILE.0), text.as_bytes())?;
        }
        crate::util::write_atomic(&dir.join("run.json"), self.run_json()?.as_bytes())?;
        Ok(())
    }
}

/// The summary of a memory run as a Markdown table (one row per architecture and mode), with a
/// line on the measured point: what `memory` prints ([`MemoryResults::markdown`]) and `report`
/// reprints ([`MemorySummary::markdown`]).
pub fn summary_markdown(c: &MemoryConfig, dtype: &str, summary: &[SummaryRow]) -> String {
    let depths = if c.arch_depths.is_empty() {
        format!("depth {}", c.depth)
    } else {
        format!(
            "depth {} ({})",
            c.depth,
            c.arch_depths
                .iter()
                .map(|a| format!("{} {}", a.arch, a.depth))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut s = format!(
        "Peak heap bytes of one training step above the live bytes before it, without the parameter gradients, per input pixel (batch {} x {}x{}), width {}, {}, {}, {}; marginal = slope over batches {:?}{}.
\n",
        c.batch,
        c.input_size,
        c.input_size,
        c.width,
        depths,
        dtype,
        if c.stages == 1 { "one stage, no pooling".to_string() } else { format!("{} stages (the first {} default poolings)", c.stages, c.stages - 1) },
        c.batches,
        if c.depths.len() >= 2 { format!("; depth slopes over depths {:?}", c.depths) } else { String::new() },
    );
    s.push_str("| architecture | mode | measurement | channels | blocks | layers | analytic B/px | paper B/px | measured B/px | measured / analytic | marginal B/px | marginal / analytic | whole peak B/px | param grads | depth slope (B/block) | param grads (B/block) |\n");
    s.push_str("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in summary {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {:.0} | {:.2} MB | {} | {} |\n",
            r.arch,
            r.mode.as_str(),
            measurement_label(r.copied_from_stored),
            r.channels,
            r.blocks,
            r.layers,
            opt(r.analytic_bpx, 0),
            opt(r.paper_bpx, 0),
            r.measured_bpx,
            opt(r.measured_over_analytic, 2),
            opt(r.marginal_bpx, 0),
            opt(r.marginal_over_analytic, 2),
            r.peak_bpx,
            r.grad_bytes as f64 / 1e6,
            opt(r.depth_slope, 0),
            opt(r.grad_bytes_per_block, 0),
        ));
    }
    s.push_str(
        "\nanalytic: M'_z + M'_g of the same network in that mode (measure::memory; in stored mode of a reversible network the paper's ResNet accounting of the same layers: every convolution and batch-norm input stored + one gradient buffer). paper: its printed figure for its own configuration of the family (reconstructed mode). measured: the activation peak (peak minus parameter gradients) at the comparison point. marginal: slope of the activation peak over the batch sweep (fixed costs removed). whole peak: with the parameter gradients (next column), which grow with depth like the weights.\n",
    );
    for r in summary {
        if let Some(a) = &r.anchors {
            s.push_str(&format!(
                "anchored {}: {} anchor(s) ({}), holding {} B ({:.0} B/px), lowest SNR {} dB on the batch: {}\n",
                r.arch,
                a.n_anchors,
                a.anchoring,
                a.bytes_held,
                a.bytes_held as f64 / (r.batch * r.input_size * r.input_size) as f64,
                crate::results::text::fmt_f(a.lowest_snr_db),
                if a.anchors.is_empty() { "none".to_string() } else { a.anchors.join(", ") },
            ));
        }
    }
    let copied: Vec<&str> = summary
        .iter()
        .filter(|r| r.copied_from_stored)
        .map(|r| r.arch.as_str())
        .collect();
    if !copied.is_empty() {
        s.push_str(&format!(
            "copied-from-stored: not measured; {} has no inverse, so its reconstructed step is its stored step and the row repeats the stored row's figures.\n",
            copied.join(", ")
        ));
    }
    for &arch in &c.archs {
        let Some(twin) = arch.spec().one_stage_twin else {
            continue;
        };
        if c.stages == 1 && c.archs.contains(&twin) && c.depth_for(arch) == c.depth_for(twin) {
            s.push_str(&format!(
                "With one stage (no pooling) an {} is a {}: the two rows measure the same network.\n",
                arch.spec().long_name,
                twin.spec().long_name
            ));
        }
    }
    s
}

/// What `memory` printed, read back from a results directory for `report`: the configuration,
/// the dtype and the summary rows (`config`, `dtype`, `summary`) of its `run.json`, as the run
/// wrote them from its [`MemoryResults`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MemorySummary {
    /// The configuration.
    pub config: MemoryConfig,
    /// Storage dtype.
    pub dtype: String,
    /// One row per architecture and mode (`summary.csv`).
    pub summary: Vec<SummaryRow>,
}

impl MemorySummary {
    /// Read `dir/run.json`; an error ([`Error::Data`]) names the file when it is not a memory
    /// run's.
    pub fn read(dir: &Path) -> Result<MemorySummary> {
        let path = dir.join("run.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::data(
                path.display(),
                "a memory run's run.json (config, dtype, summary)",
                e,
            )
        })
    }

    /// The table the run printed ([`summary_markdown`]).
    pub fn markdown(&self) -> String {
        summary_markdown(&self.config, &self.dtype, &self.summary)
    }
}

/// Check that `dir` can be created and written to (before a long run): creates it and writes
/// and removes a probe file.
pub fn check_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let probe = dir.join(format!(".write-probe.{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| Error::io(dir, e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
