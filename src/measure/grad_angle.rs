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

/// Layer name of a parameter name: everything before the last `.`.
pub fn layer_of(param: &str) -> &str {
    param.rsplit_once('.').map(|(l, _)| l).unwrap_or(param)
}

/// Angle (degrees) between the vectors made of the given slices, by the numerically stable
/// `2 atan2(|a/|a| - b/|b||, |a/|a| + b/|b||)` (accurate for tiny angles, where
/// `acos(<a,b>/(|a||b|))` has an error floor of ~1e-6 degree in f64). Zero vectors: 0 if both are
/// zero, 90 otherwise.
fn angle_deg(pairs: &[(&[f64], &[f64])]) -> f64 {
    let norm = |which: usize| -> f64 {
        pairs
            .iter()
            .flat_map(|p| if which == 0 { p.0 } else { p.1 }.iter())
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt()
    };
    let (na, nb) = (norm(0), norm(1));
    if na == 0.0 || nb == 0.0 {
        return if na == nb { 0.0 } else { 90.0 };
    }
    let (mut diff, mut sum) = (0.0, 0.0);
    for (a, b) in pairs {
        for (x, y) in a.iter().zip(b.iter()) {
            let (u, v) = (x / na, y / nb);
            diff += (u - v) * (u - v);
            sum += (u + v) * (u + v);
        }
    }
    (2.0 * diff.sqrt().atan2(sum.sqrt())).to_degrees()
}

/// The angle between gradients `a` and `b` (same parameter names), by the stable
/// `2 atan2(|a/|a| - b/|b||, |a/|a| + b/|b||)` form.
pub fn grad_angle(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) -> Result<GradAngle> {
    if a.len() != b.len() {
        return Err(Error::internal(
            "gradient angle",
            format!("gradient sets differ in size: {} vs {}", a.len(), b.len()),
        ));
    }
    let mut values: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for (name, ga) in a {
        let gb = b.get(name).ok_or_else(|| {
            Error::internal(
                "gradient angle",
                format!("parameter `{name}` has no gradient in the second set"),
            )
        })?;
        let va = crate::util::to_f64_vec(ga)?;
        let vb = crate::util::to_f64_vec(gb)?;
        if va.len() != vb.len() {
            return Err(Error::ShapeMismatch {
                context: format!("gradient of {name}"),
                expected: format!("{:?}", ga.dims()),
                got: gb.dims().to_vec(),
            });
        }
        values.insert(name.clone(), (va, vb));
    }
    let whole: Vec<(&[f64], &[f64])> = values
        .values()
        .map(|(x, y)| (x.as_slice(), y.as_slice()))
        .collect();
    let mut layers: BTreeMap<&str, Vec<(&[f64], &[f64])>> = BTreeMap::new();
    for (name, (x, y)) in &values {
        layers
            .entry(layer_of(name))
            .or_default()
            .push((x.as_slice(), y.as_slice()));
    }
    Ok(GradAngle {
        whole_deg: angle_deg(&whole),
        per_layer: layers
            .into_iter()
            .map(|(k, p)| (k.to_string(), angle_deg(&p)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn set(v: &[f64]) -> HashMap<String, Tensor> {
        HashMap::from([(
            "l.weight".to_string(),
            Tensor::new(v, &Device::Cpu).unwrap(),
        )])
    }

    #[test]
    fn closed_form_angles() {
        let a = set(&[1.0, 0.0]);
        assert!((grad_angle(&a, &set(&[0.0, 2.0])).unwrap().whole_deg - 90.0).abs() < 1e-12);
        assert!((grad_angle(&a, &set(&[1.0, 1.0])).unwrap().whole_deg - 45.0).abs() < 1e-12);
        assert_eq!(grad_angle(&a, &set(&[3.0, 0.0])).unwrap().whole_deg, 0.0);
        // tiny angle: atan(1e-10) = 1e-10 rad, far below acos's ~1e-8 rad floor
        let t = grad_angle(&a, &set(&[1.0, 1e-10])).unwrap().whole_deg;
        assert!((t - 1e-10f64.to_degrees()).abs() < 1e-18, "{t}");
    }
}
