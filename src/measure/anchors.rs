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
use crate::measure::snr::snr_db;
use crate::nets::{BackwardPlan, Network, Source, StepOptions, StepOutput};
use candle_core::Tensor;

/// One rebuilt input of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedLayer {
    /// The layer whose input it is.
    pub layer: String,
    /// Whether the plan stores it.
    pub anchored: bool,
    /// Its SNR (dB) under the plan, against the stored step (`+inf` when anchored).
    pub snr_db: f64,
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
    let anchorable = net.anchorable();
    let out = net.step(
        x,
        labels,
        BackwardPlan::anchored(anchors.to_vec()),
        trace_only(),
    )?;
    if out.trace.len() != stored.trace.len() {
        return Err(Error::internal(
            "anchor planner",
            format!(
                "the anchored trace has {} entries, the stored one {}",
                out.trace.len(),
                stored.trace.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    for (s, a) in stored.trace.iter().zip(&out.trace) {
        if s.layer != a.layer {
            return Err(Error::internal(
                "anchor planner",
                format!("traces do not line up: {} vs {}", s.layer, a.layer),
            ));
        }
        if anchorable.contains(&s.layer) {
            layers.push(PlannedLayer {
                layer: s.layer.clone(),
                anchored: anchors.contains(&s.layer),
                snr_db: snr_db(&s.tensor, &a.tensor)?,
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
    if !min_snr_db.is_finite() {
        return Err(Error::config(
            "the SNR target (--min-snr-db)",
            "a finite number of dB",
            min_snr_db,
        ));
    }
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
