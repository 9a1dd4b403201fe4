//! `snr-sweep plan` and `snr-sweep trace`: the anchor plan and the per-layer SNR trace of one
//! network, at initialisation (the sweep's network of one grid point, on its seeded unit
//! Gaussian batch) or with the trained weights of a `train` run directory (`--checkpoint`, on
//! the first `batch` training samples of that run's data in file order, the batch its
//! anchored training plans on, or on the seeded Gaussian batch).
//!
//! Conventions: SNR in dB against the stored activation in the same dtype
//! (`10 log10(|x|^2 / |x - x_rebuilt|^2)`, `+inf` exact), as the sweep; bytes per pixel =
//! anchor bytes / (batch x input height x input width).

use crate::device::DeviceSpec;
use crate::error::{Error, Result};
use crate::experiments::snr_sweep::{
    point_batch, run_record, trace_net, write_record, Point, PointResult, SweepConfig,
    SUMMARY_HEADER, TRACE_HEADER,
};
use crate::measure::anchors::{
    lowest_predicted_db, plan_csv, predict_plan, AnchorPlan, Anchoring, PlanRow,
};
use crate::nets::Network;
use crate::train::TrainConfig;
use crate::util::write_atomic;
use candle_core::Tensor;
use std::path::{Path, PathBuf};

/// The input batch of a traced or planned trained network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeInput {
    /// The first `batch` training samples of the run's data, in file order.
    Data,
    /// The seeded unit-Gaussian batch of the sweep ([`point_batch`]).
    Gaussian,
}

/// The `train` run a network was loaded from.
#[derive(Debug, Clone)]
pub struct CheckpointSource {
    /// Its run directory.
    pub dir: PathBuf,
    /// The step of its checkpoint.
    pub step: usize,
    /// Its configuration.
    pub config: TrainConfig,
}

/// One network and the batch it is measured on.
pub struct Probe {
    /// The network (initial or trained weights).
    pub net: Network,
    /// The one-point sweep config describing it (architecture, sizes, dtype, device, backend).
    pub cfg: SweepConfig,
    /// Its point.
    pub point: Point,
    /// The input batch.
    pub x: Tensor,
    /// Its labels.
    pub labels: Tensor,
    /// What the batch is (for the printout and `run.json`).
    pub input: String,
    /// The `train` run of trained weights (`None`: initial weights).
    pub checkpoint: Option<CheckpointSource>,
}

impl Probe {
    /// Input pixels of the batch: batch x height x width (channels not counted).
    pub fn pixels(&self) -> usize {
        let d = self.x.dims();
        d[0] * d.get(2).copied().unwrap_or(1) * d.get(3).copied().unwrap_or(1)
    }
}

/// The single point of `cfg` (a sweep config with one value in every list): its network at
/// initialisation on its seeded Gaussian batch. Errors: a config that does not validate or
/// spans more than one point ([`Error::Config`]).
pub fn probe_at_init(cfg: &SweepConfig) -> Result<Probe> {
    cfg.validate()?;
    let grid = cfg.grid();
    let [point] = grid.as_slice() else {
        return Err(Error::config(
            "network flags",
            "one network",
            format!("{} points", grid.len()),
        ));
    };
    let device = cfg.device.open()?;
    let net = Network::build_with(
        &cfg.net_config(point),
        point.dtype.dtype(),
        &device,
        cfg.backend,
    )?;
    let (x, labels) = point_batch(cfg, point.seed, &device)?;
    Ok(Probe {
        net,
        cfg: cfg.clone(),
        point: point.clone(),
        x,
        labels,
        input: format!(
            "unit Gaussian batch of {} x {} x {} x {} from seed {}",
            cfg.batch, cfg.net.in_channels, cfg.input_size, cfg.input_size, point.seed
        ),
        checkpoint: None,
    })
}

/// The trained network of the `train` run in `dir` on `device`, measured on `input` of
/// `batch` images (default: the run's batch). The Gaussian batch is drawn from the run's seed.
pub fn probe_from_checkpoint(
    dir: &Path,
    device: DeviceSpec,
    batch: Option<usize>,
    input: ProbeInput,
) -> Result<Probe> {
    let dev = device.open()?;
    let t = crate::train::load_trained(dir, &dev)?;
    let c = &t.config;
    let (channels, size, _) = t.data.train.image_dims();
    let batch = batch.unwrap_or(c.batch);
    let mut net = c.net.clone();
    net.in_channels = channels;
    let cfg = SweepConfig {
        archs: vec![c.arch],
        depths: vec![c.depth],
        slopes: vec![c.slope],
        eps_i: vec![c.eps_i],
        widths: vec![c.width],
        batch,
        input_size: size,
        dtypes: vec![c.dtype],
        seeds: vec![c.seed],
        device,
        classes: t.data.classes(),
        backend: c.backend,
        net,
        ..SweepConfig::default()
    };
    let point = cfg
        .grid()
        .into_iter()
        .next()
        .ok_or_else(|| Error::internal("checkpoint probe", "an empty grid"))?;
    let (x, labels, what) = match input {
        ProbeInput::Data => {
            let (x, y) = t
                .data
                .train
                .batch_iter(batch, None, None)?
                .next()
                .ok_or_else(|| Error::internal("checkpoint probe", "no batch"))??;
            let x = x.to_device(&dev)?;
            let what = format!(
                "the first {batch} training samples of the run's data `{}` (file order, no augmentation)",
                c.data
            );
            (x, y.to_device(&dev)?, what)
        }
        ProbeInput::Gaussian => {
            let (x, y) = point_batch(&cfg, c.seed, &dev)?;
            let what = format!(
                "unit Gaussian batch of {batch} x {channels} x {size} x {size} from the run's seed {}",
                c.seed
            );
            (x, y, what)
        }
    };
    Ok(Probe {
        net: t.net,
        cfg,
        point,
        x,
        labels,
        input: what,
        checkpoint: Some(CheckpointSource {
            dir: dir.to_path_buf(),
            step: t.step,
            config: t.config,
        }),
    })
}

/// A plan and its rows (`plan.csv`).
pub struct PlanOutcome {
    /// The plan.
    pub plan: AnchorPlan,
    /// Its rows: measured and predicted SNR, bytes held.
    pub rows: Vec<PlanRow>,
}

/// The plan of `anchoring` for `probe` and its rows (prediction seeded by the point's seed).
pub fn make_plan(probe: &Probe, anchoring: &Anchoring) -> Result<PlanOutcome> {
    let plan = anchoring.plan(&probe.net, &probe.x, &probe.labels)?;
    let rows = predict_plan(&probe.net, &probe.x, &probe.labels, &plan, probe.point.seed)?;
    Ok(PlanOutcome { plan, rows })
}

/// dB text of a value (`inf` when exact).
fn db(v: f64) -> String {
    if v == f64::INFINITY {
        "inf (exact)".into()
    } else {
        format!("{v:.1} dB")
    }
}

/// The printout of a plan: anchors, lowest measured SNR and the law's prediction, bytes held
/// and bytes per input pixel.
pub fn plan_report(probe: &Probe, anchoring: &Anchoring, o: &PlanOutcome) -> String {
    let held = o.plan.bytes_held();
    let anchors = if o.plan.anchors.is_empty() {
        "none".to_string()
    } else {
        o.plan.anchors.join(", ")
    };
    format!(
        "plan ({}) of {} rebuilt inputs: {} anchor(s): {anchors}\n\
         lowest measured SNR {}; depth law's prediction for the same anchors {}\n\
         bytes held by anchors {held} ({:.3} bytes per input pixel, {} pixels)",
        anchoring.describe(),
        o.rows.len(),
        o.plan.anchors.len(),
        db(o.plan.lowest_snr_db()),
        db(lowest_predicted_db(&o.rows)),
        held as f64 / probe.pixels().max(1) as f64,
        probe.pixels()
    )
}

/// The anchorable layers of `net` with their positions (what `--anchors` takes).
pub fn anchorable_listing(net: &Network) -> String {
    let names = net.anchorable();
    let mut s = format!(
        "anchorable layers (--anchors takes the names or the positions listed here): {}\n",
        names.len()
    );
    for (i, n) in names.iter().enumerate() {
        s.push_str(&format!("  {i:>3}  {n}\n"));
    }
    s
}

/// `run.json` of a `snr-sweep plan` or `trace` run: tool, configuration, input, seed, dtype,
/// device, backend, revision, the checkpoint (if any) and `extra`.
fn write_run_json(out: &Path, tool: &str, probe: &Probe, extra: serde_json::Value) -> Result<()> {
    let mut v = run_record(tool, &probe.cfg);
    v["seed"] = serde_json::json!(probe.point.seed);
    v["dtype"] = serde_json::json!(probe.point.dtype.to_string());
    v["weights"] = serde_json::json!(if probe.checkpoint.is_some() {
        "trained (checkpoint)"
    } else {
        "initial"
    });
    v["input"] = serde_json::json!(probe.input);
    v["conventions"] = serde_json::json!("snr_db vs stored activations in the same dtype; inf = exact; bytes per pixel = anchor bytes / (batch x input height x input width)");
    if let Some(c) = &probe.checkpoint {
        v["checkpoint"] = serde_json::json!({
            "dir": c.dir.display().to_string(),
            "step": c.step,
            "train_config": c.config,
        });
    }
    write_record(&out.join("run.json"), v, extra)
}

/// Write `plan.csv` and `run.json` of a plan into `out` (created if needed), each atomically.
pub fn write_plan(out: &Path, probe: &Probe, anchoring: &Anchoring, o: &PlanOutcome) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    write_atomic(&out.join("plan.csv"), plan_csv(&o.rows).as_bytes())?;
    let held = o.plan.bytes_held();
    write_run_json(
        out,
        "snr-sweep plan",
        probe,
        serde_json::json!({
            "anchoring": anchoring,
            "anchors": o.plan.anchors,
            "rebuilt_inputs": o.rows.len(),
            "lowest_measured_snr_db": crate::results::text::fmt_f(o.plan.lowest_snr_db()),
            "lowest_predicted_snr_db": crate::results::text::fmt_f(lowest_predicted_db(&o.rows)),
            "bytes_held": held,
            "pixels": probe.pixels(),
            "bytes_per_pixel": held as f64 / probe.pixels().max(1) as f64,
        }),
    )
}

/// Trace `probe` (the sweep's per-layer columns, [`TRACE_HEADER`]) with the sweep's settings
/// of `cfg` (depth law, Lipschitz, output noise) and write `trace.csv`, `summary.csv`
/// ([`SUMMARY_HEADER`]) and `run.json` into `out`, each atomically.
pub fn write_trace(out: &Path, probe: &Probe) -> Result<PointResult> {
    let (r, _) = trace_net(
        &probe.cfg,
        &probe.point,
        &probe.net,
        &probe.x,
        &probe.labels,
    )?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut trace = format!("{TRACE_HEADER}\n");
    for l in &r.trace_lines {
        trace.push_str(l);
        trace.push('\n');
    }
    write_atomic(&out.join("trace.csv"), trace.as_bytes())?;
    let summary = format!("{SUMMARY_HEADER}\n{}\n", r.summary_line);
    write_atomic(&out.join("summary.csv"), summary.as_bytes())?;
    write_run_json(
        out,
        "snr-sweep trace",
        probe,
        serde_json::json!({
            "lowest_snr_db": crate::results::text::fmt_f(r.lowest_snr_db),
        }),
    )?;
    Ok(r)
}
