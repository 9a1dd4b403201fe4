//! Angle between two sets of parameter gradients (Gomez et al. Fig. 4):
//! `acos(<g_s, g_r> / (|g_s| |g_r|))` in degrees, accumulated in f64, for the whole network
//! (all parameters concatenated) and per layer (parameters grouped by the name up to the last
//! `.`, e.g. `s0.u1.conv.f`).

use crate::error::{Error, Result};
use candle_core::Tensor;
use std::collections::{BTreeMap, HashMap};

/// Whole-network and per-layer gradient angles.
#[derive(Debug, Clone)]
pub struct GradAngle {
    /// Angle over all parameters, degrees.
    pub whole_deg: f64,
    /// Angle per layer (sorted by layer name), degrees.
    pub per_layer: Vec<(String, f64)>,
}

#[derive(Default, Clone, Copy)]
struct Dot {
    ab: f64,
    aa: f64,
    bb: f64,
}

impl Dot {
    fn add(&mut self, o: Dot) {
        self.ab += o.ab;
        self.aa += o.aa;
        self.bb += o.bb;
    }
    fn angle_deg(&self) -> f64 {
        if self.aa == 0.0 && self.bb == 0.0 {
            return 0.0;
        }
        let c = self.ab / (self.aa.sqrt() * self.bb.sqrt());
        c.clamp(-1.0, 1.0).acos().to_degrees()
    }
}

/// Layer name of a parameter name: everything before the last `.`.
pub fn layer_of(param: &str) -> &str {
    param.rsplit_once('.').map(|(l, _)| l).unwrap_or(param)
}

/// The angle between gradients `a` and `b` (same parameter names).
pub fn grad_angle(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) -> Result<GradAngle> {
    if a.len() != b.len() {
        return Err(Error::Config(format!("gradient sets differ in size: {} vs {}", a.len(), b.len())));
    }
    let mut layers: BTreeMap<String, Dot> = BTreeMap::new();
    let mut whole = Dot::default();
    for (name, ga) in a {
        let gb = b.get(name).ok_or_else(|| Error::Config(format!("parameter `{name}` has no gradient in the second set")))?;
        let va = crate::util::to_f64_vec(ga)?;
        let vb = crate::util::to_f64_vec(gb)?;
        if va.len() != vb.len() {
            return Err(Error::ShapeMismatch { context: format!("gradient of {name}"), expected: format!("{:?}", ga.dims()), got: gb.dims().to_vec() });
        }
        let mut d = Dot::default();
        for (x, y) in va.iter().zip(&vb) {
            d.ab += x * y;
            d.aa += x * x;
            d.bb += y * y;
        }
        whole.add(d);
        layers.entry(layer_of(name).to_string()).or_default().add(d);
    }
    Ok(GradAngle { whole_deg: whole.angle_deg(), per_layer: layers.into_iter().map(|(k, d)| (k, d.angle_deg())).collect() })
}
