//! The anchor planner: the fewest anchors ([`BackwardPlan::anchors`]) that keep every rebuilt
//! input at or above a target SNR against the stored one, measured on a probe batch.
//!
//! One stored step with a trace gives the reference activations. The planner then walks down
//! as the backward does: it runs the anchored step with the anchors placed so far, finds the
//! highest rebuilt input (first in the walk's order) whose SNR is below the target, anchors
//! that layer (its input is then stored, and the error restarts from zero there) and repeats
//! until every rebuilt input holds the target. Each anchor is placed as low as the target
//! allows given the ones above it; when the reconstruction error only grows with the distance
//! from the nearest anchor above, as along the layer-wise chain, no smaller set holds the
//! target (checked against every smaller set, depths 2 to 8). In a hybrid block F and G are
//! rebuilt from their own outputs, so the error is not one chain, and the walk can place more
//! anchors than needed (7 against 6 seen at depth 2).
//!
//! SNR convention: `10 log10(|x|^2 / |x - x_rebuilt|^2)` over the whole activation
//! ([`crate::measure::snr`]), `+inf` for an exact one; an anchored input is exact.

use crate::error::{Error, Result};
use crate::layers::Role;
use crate::measure::snr::snr_db;
use crate::measure::trace::{coherent_depth_law_anchored, snr_trace, TraceOptions};
use crate::nets::{BackwardPlan, Network, Source, StepOptions, StepOutput};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// The SNR target (dB) of an anchored backward given neither a target nor a list.
pub const DEFAULT_MIN_SNR_DB: f64 = 60.0;

/// Training: the plan is made again every this many steps by default.
pub const DEFAULT_REPLAN_EVERY: usize = 25;

/// How an anchored backward ([`Source::Anchored`]) chooses its anchors: the planner's SNR
/// target, or an explicit list; in training, how often the plan is made again. The `[anchors]`
/// table of a config and the `--min-snr-db`, `--anchors`, `--replan-every` flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Anchoring {
    /// The planner's target (dB): every rebuilt input keeps at least this SNR against the
    /// stored one on the probe batch. `None` with an explicit list; neither given:
    /// [`DEFAULT_MIN_SNR_DB`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_snr_db: Option<f64>,
    /// Explicit anchors: layer names ([`Network::anchorable`]) or positions in that list
    /// (forward order: 0 = the one nearest the input); no planner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<Vec<String>>,
    /// Training with a target: plan again every this many steps on the current weights
    /// (0: plan once, before the first step).
    pub replan_every: usize,
}

impl Default for Anchoring {
    fn default() -> Self {
        Anchoring {
            min_snr_db: None,
            list: None,
            replan_every: DEFAULT_REPLAN_EVERY,
        }
    }
}

impl Anchoring {
    /// Whether these are the default settings (left out of serialised configs).
    pub fn is_default(&self) -> bool {
        *self == Anchoring::default()
    }

    /// Anchoring by the planner with `min_snr_db`.
    pub fn target(min_snr_db: f64) -> Anchoring {
        Anchoring {
            min_snr_db: Some(min_snr_db),
            ..Anchoring::default()
        }
    }

    /// The planner's target, when anchors are planned rather than listed.
    pub fn planned_target(&self) -> Option<f64> {
        match self.list {
            Some(_) => None,
            None => Some(self.min_snr_db.unwrap_or(DEFAULT_MIN_SNR_DB)),
        }
    }

    /// Check the settings without a network: a finite target, not both a target and a list.
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = self.min_snr_db {
            check_target(t)?;
        }
        if self.min_snr_db.is_some() && self.list.is_some() {
            return Err(Error::config(
                "anchors",
                "either an SNR target (--min-snr-db) or a list (--anchors), not both",
                "both",
            ));
        }
        Ok(())
    }

    /// Check the settings as a tool uses them: `anchored` says whether any of the tool's modes
    /// is anchored (settings without one would be ignored: refused); `plans_once` names a
    /// tool that plans once per network, which refuses `replan_every`. Also [`Self::validate`].
    pub fn check_use(&self, anchored: bool, plans_once: Option<&str>) -> Result<()> {
        self.validate()?;
        if !anchored && !self.is_default() {
            return Err(Error::config(
                "anchors (--min-snr-db, --anchors, --replan-every)",
                "the anchored mode (--mode anchored, --modes ...,anchored): the others store or rebuild every input",
                "no anchored mode",
            ));
        }
        if let Some(tool) = plans_once {
            if self.replan_every != DEFAULT_REPLAN_EVERY {
                return Err(Error::config(
                    "--replan-every (replan_every)",
                    format!("unset: {tool} plans once per network (a train setting)"),
                    self.replan_every,
                ));
            }
        }
        Ok(())
    }

    /// Check the settings against `net` without planning: [`Self::validate`], and every listed
    /// anchor a layer whose input `net` rebuilds ([`resolve_anchor_list`]).
    pub fn check_against(&self, net: &Network) -> Result<()> {
        self.validate()?;
        if let Some(list) = &self.list {
            resolve_anchor_list(net, list)?;
        }
        Ok(())
    }

    /// A short description for logs and result files: `min-snr-db=60` or `anchors=a;b`.
    pub fn describe(&self) -> String {
        match (&self.list, self.planned_target()) {
            (Some(l), _) => format!("anchors={}", l.join(";")),
            (None, Some(t)) => format!("min-snr-db={t}"),
            (None, None) => String::new(),
        }
    }

    /// The plan on the probe batch `x`, `labels`: the planner's for a target, the list's
    /// SNRs for a list (checked against the network: [`resolve_anchor_list`]).
    pub fn plan(&self, net: &Network, x: &Tensor, labels: &Tensor) -> Result<AnchorPlan> {
        self.validate()?;
        match (&self.list, self.planned_target()) {
            (Some(list), _) => {
                let anchors = resolve_anchor_list(net, list)?;
                let stored = stored_trace(net, x, labels)?;
                let layers = anchored_snrs(net, x, labels, &stored, &anchors)?;
                Ok(AnchorPlan {
                    min_snr_db: f64::NAN,
                    anchors,
                    layers,
                })
            }
            (None, Some(t)) => plan_anchors(net, x, labels, t),
            (None, None) => unreachable!("planned_target is Some without a list"),
        }
    }
}

/// A target must be a finite number of dB.
fn check_target(min_snr_db: f64) -> Result<()> {
    if !min_snr_db.is_finite() {
        return Err(Error::config(
            "the SNR target (--min-snr-db)",
            "a finite number of dB",
            min_snr_db,
        ));
    }
    Ok(())
}

/// The anchors of an explicit list on `net`: each item a layer name from
/// [`Network::anchorable`] or a position in it (forward order, 0 = nearest the input); duplicates are
/// refused.
pub fn resolve_anchor_list(net: &Network, list: &[String]) -> Result<Vec<String>> {
    let names = net.anchorable();
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        let item = item.trim();
        let name = match item.parse::<usize>() {
            Ok(k) => names.get(k).cloned().ok_or_else(|| {
                Error::config(
                    "anchor position (--anchors)",
                    format!(
                        "0..{} (the layers whose input this network rebuilds)",
                        names.len()
                    ),
                    k,
                )
            })?,
            Err(_) if names.iter().any(|n| n == item) => item.to_string(),
            Err(_) => {
                return Err(Error::config(
                    "anchor (--anchors)",
                    format!(
                        "a layer whose input is rebuilt, by name or position 0..{} (e.g. {})",
                        names.len(),
                        names.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                    ),
                    format!("`{item}`"),
                ))
            }
        };
        if out.contains(&name) {
            return Err(Error::config(
                "anchors (--anchors)",
                "each layer once",
                format!("`{name}` twice"),
            ));
        }
        out.push(name);
    }
    Ok(out)
}

/// One row of `plan.csv`: a rebuilt input under a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRow {
    /// The layer whose input it is.
    pub layer: String,
    /// Whether the plan stores it.
    pub anchored: bool,
    /// Its measured SNR (dB) on the probe batch (`+inf` when anchored).
    #[serde(with = "crate::results::text::float_text")]
    pub measured_snr_db: f64,
    /// The depth law's prediction for the same anchors (dB; [`predict_plan`]); NaN inside a
    /// reversible block (role hidden), where the law makes none.
    #[serde(with = "crate::results::text::float_text")]
    pub predicted_snr_db: f64,
    /// Bytes the forward holds for it (its input, when anchored; 0 otherwise).
    pub bytes_held: usize,
}

/// The header of `plan.csv`.
pub const PLAN_HEADER: &str = "layer,anchored,measured_snr_db,predicted_snr_db,bytes_held";

/// The rows of `plan.csv` for `plan` on the probe batch: measured SNRs from the plan, the
/// depth law's prediction for the same anchors, and the bytes each anchor holds.
///
/// The prediction is the coherent (amplitude-sum) rounding-aware law of
/// [`crate::measure::trace`] (the pessimistic end: fully correlated rounding), on the top-level
/// layers, with each layer's alpha and one-step SNR measured on this batch, restarted from an
/// exact input below every anchor ([`coherent_depth_law_anchored`]). A hybrid's anchors inside
/// F or G keep the stream's prediction as it is: the block inverse does not read them.
pub fn predict_plan(
    net: &Network,
    x: &Tensor,
    labels: &Tensor,
    plan: &AnchorPlan,
    seed: u64,
) -> Result<Vec<PlanRow>> {
    let trace = snr_trace(
        net,
        None,
        x,
        labels,
        TraceOptions {
            seed,
            depth_law: true,
            ..TraceOptions::default()
        },
    )?;
    let top: Vec<&crate::measure::trace::TracePoint> = trace
        .points
        .iter()
        .filter(|p| p.role != Role::Hidden)
        .collect();
    let chain: Vec<(f64, f64)> = top.iter().map(|p| (p.alpha_db, p.step_snr_db)).collect();
    let flags: Vec<bool> = top
        .iter()
        .map(|p| plan.anchors.contains(&p.layer))
        .collect();
    let predicted = coherent_depth_law_anchored(trace.output_snr_db, &chain, &flags);
    let mut rows = Vec::with_capacity(plan.layers.len());
    for l in &plan.layers {
        let predicted_snr_db = top
            .iter()
            .position(|p| p.layer == l.layer)
            .map_or(f64::NAN, |i| predicted[i]);
        rows.push(PlanRow {
            layer: l.layer.clone(),
            anchored: l.anchored,
            measured_snr_db: l.snr_db,
            predicted_snr_db,
            bytes_held: l.bytes,
        });
    }
    Ok(rows)
}

/// The lowest predicted SNR (dB) of a plan's rows (NaN ones skipped; `+inf` when none).
pub fn lowest_predicted_db(rows: &[PlanRow]) -> f64 {
    rows.iter()
        .map(|r| r.predicted_snr_db)
        .filter(|v| !v.is_nan())
        .fold(f64::INFINITY, f64::min)
}

/// `plan.csv` text of `rows` (floats as the result files write them).
pub fn plan_csv(rows: &[PlanRow]) -> String {
    let f = crate::results::text::fmt_f;
    let mut s = format!("{PLAN_HEADER}\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{}\n",
            r.layer,
            r.anchored,
            f(r.measured_snr_db),
            f(r.predicted_snr_db),
            r.bytes_held
        ));
    }
    s
}

/// One rebuilt input of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedLayer {
    /// The layer whose input it is.
    pub layer: String,
    /// Whether the plan stores it.
    pub anchored: bool,
    /// Its SNR (dB) under the plan, against the stored step (`+inf` when anchored).
    pub snr_db: f64,
    /// Bytes the forward holds for it: its input's (elements times the dtype's bytes) when
    /// anchored, 0 otherwise.
    pub bytes: usize,
}

/// A plan: the anchors and every rebuilt input's SNR under them, in the walk's order (top
/// down).
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorPlan {
    /// The target (dB).
    pub min_snr_db: f64,
    /// The anchors, in the order they were placed (top down).
    pub anchors: Vec<String>,
    /// Every rebuilt input under the plan.
    pub layers: Vec<PlannedLayer>,
}

impl AnchorPlan {
    /// The lowest SNR (dB) of the plan's rebuilt inputs (`+inf` when every one is exact).
    pub fn lowest_snr_db(&self) -> f64 {
        self.layers
            .iter()
            .map(|l| l.snr_db)
            .fold(f64::INFINITY, f64::min)
    }

    /// The bytes the plan's anchors hold on the probe batch.
    pub fn bytes_held(&self) -> usize {
        self.layers.iter().map(|l| l.bytes).sum()
    }

    /// The backward that follows the plan.
    pub fn backward(&self) -> BackwardPlan {
        BackwardPlan::anchored(self.anchors.clone())
    }
}

/// The trace-only options of the planner's steps.
fn trace_only() -> StepOptions {
    StepOptions {
        trace: true,
        ..StepOptions::default()
    }
}

/// The stored step the planner compares with (a trace of every input, no gradients).
pub fn stored_trace(net: &Network, x: &Tensor, labels: &Tensor) -> Result<StepOutput> {
    net.step(x, labels, Source::Stored, trace_only())
}

/// The SNR (dB) of every anchorable layer's rebuilt input under `anchors`, in the walk's order,
/// against `stored` ([`stored_trace`] of the same batch).
pub fn anchored_snrs(
    net: &Network,
    x: &Tensor,
    labels: &Tensor,
    stored: &StepOutput,
    anchors: &[String],
) -> Result<Vec<PlannedLayer>> {
    let out = net.step(
        x,
        labels,
        BackwardPlan::anchored(anchors.to_vec()),
        trace_only(),
    )?;
    rebuilt_snrs(net, stored, &out, anchors)
}

/// The SNR (dB) of every anchorable layer's input in `rebuilt` (the trace of an anchored step
/// with `anchors`) against `stored` (the stored trace of the same batch), in the walk's order.
pub fn rebuilt_snrs(
    net: &Network,
    stored: &StepOutput,
    rebuilt: &StepOutput,
    anchors: &[String],
) -> Result<Vec<PlannedLayer>> {
    let anchorable = net.anchorable();
    if rebuilt.trace.len() != stored.trace.len() {
        return Err(Error::internal(
            "anchor planner",
            format!(
                "the anchored trace has {} entries, the stored one {}",
                rebuilt.trace.len(),
                stored.trace.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    for (s, a) in stored.trace.iter().zip(&rebuilt.trace) {
        if s.layer != a.layer {
            return Err(Error::internal(
                "anchor planner",
                format!("traces do not line up: {} vs {}", s.layer, a.layer),
            ));
        }
        if anchorable.contains(&s.layer) {
            let anchored = anchors.contains(&s.layer);
            layers.push(PlannedLayer {
                layer: s.layer.clone(),
                anchored,
                snr_db: snr_db(&s.tensor, &a.tensor)?,
                bytes: if anchored {
                    s.tensor.elem_count() * s.tensor.dtype().size_in_bytes()
                } else {
                    0
                },
            });
        }
    }
    Ok(layers)
}

/// The plan for `min_snr_db` on the probe batch `x`, `labels` (module docs). Errors: a target
/// that is not finite ([`Error::Config`]).
pub fn plan_anchors(
    net: &Network,
    x: &Tensor,
    labels: &Tensor,
    min_snr_db: f64,
) -> Result<AnchorPlan> {
    check_target(min_snr_db)?;
    let stored = stored_trace(net, x, labels)?;
    let mut anchors: Vec<String> = Vec::new();
    loop {
        let layers = anchored_snrs(net, x, labels, &stored, &anchors)?;
        // NaN counts as below any target.
        let below = layers
            .iter()
            .find(|l| !l.anchored && !(l.snr_db >= min_snr_db));
        match below {
            Some(l) => anchors.push(l.layer.clone()),
            None => {
                return Ok(AnchorPlan {
                    min_snr_db,
                    anchors,
                    layers,
                })
            }
        }
    }
}
