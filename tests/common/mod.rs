//! Shared test helpers: one tolerance type for every float comparison of the suite, with
//! presets per dtype; a failing comparison names the first element that is off (index, got,
//! expected and the tolerance it broke).
//!
//! Three criteria, each the one its tests used before this module existed (the thresholds are
//! the tests' own; only the reporting is shared):
//! - elementwise ([`Tolerance::check`]): `|got_i - want_i| <= max(rel * max(|got_i|, |want_i|), abs)`;
//! - relative L2 ([`Tolerance::check_rel_l2`]): `|got - want|_2 / |want|_2 <= rel` (absolute
//!   `|got - want|_2 <= rel` when `want` is all zeros); on failure the first element with
//!   `|got_i - want_i| > rel * rms(want)` is named (one exists whenever the norm check fails:
//!   were every element within it, the norm ratio would be within `rel`);
//! - scaled ([`Tolerance::check_scaled`]): `|got_i - want_i| <= rel * max_j |want_j|` (relative
//!   to the tensor's scale; what the weight comparisons of whole training runs use).
#![allow(dead_code)]

use candle_core::{DType, Tensor};
use std::collections::HashMap;

/// A float tolerance: relative part `rel`, absolute floor `abs` (see the module docs for how
/// each criterion reads them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub rel: f64,
    pub abs: f64,
}

impl Tolerance {
    /// Bitwise-equal values (any difference is off; NaN is never equal).
    pub const EXACT: Tolerance = Tolerance { rel: 0.0, abs: 0.0 };
    /// f64 results of the same formula in another summation order (unit roundoff 1.1e-16,
    /// accumulated over up to ~10^4 terms).
    pub const F64: Tolerance = Tolerance {
        rel: 1e-12,
        abs: 1e-14,
    };
    /// f32 (unit roundoff 6.0e-8), same reading as [`Tolerance::F64`].
    pub const F32: Tolerance = Tolerance {
        rel: 1e-5,
        abs: 1e-7,
    };
    /// f16 (unit roundoff 4.9e-4; results computed in f32 and rounded once or a few times).
    pub const F16: Tolerance = Tolerance {
        rel: 1e-2,
        abs: 1e-3,
    };
    /// bf16 (unit roundoff 3.9e-3).
    pub const BF16: Tolerance = Tolerance {
        rel: 5e-2,
        abs: 1e-2,
    };

    /// The preset of a dtype (integer dtypes compare exactly).
    pub fn for_dtype(dtype: DType) -> Tolerance {
        match dtype {
            DType::F64 => Tolerance::F64,
            DType::F32 => Tolerance::F32,
            DType::F16 => Tolerance::F16,
            DType::BF16 => Tolerance::BF16,
            _ => Tolerance::EXACT,
        }
    }

    /// Relative tolerance `rel`, no absolute floor.
    pub fn rel(rel: f64) -> Tolerance {
        Tolerance { rel, abs: 0.0 }
    }

    /// Elementwise: `|g - w| <= max(rel * max(|g|, |w|), abs)`; `Err` names the first element
    /// off.
    pub fn check_slices(&self, got: &[f64], want: &[f64]) -> Result<(), String> {
        if got.len() != want.len() {
            return Err(format!(
                "lengths differ: got {}, expected {}",
                got.len(),
                want.len()
            ));
        }
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let lim = (self.rel * g.abs().max(w.abs())).max(self.abs);
            if !((g - w).abs() <= lim) && g != w {
                return Err(first_off(i, *g, *w, lim));
            }
        }
        Ok(())
    }

    /// [`Tolerance::check_slices`] on two tensors of one shape (read as f64).
    pub fn check(&self, got: &Tensor, want: &Tensor) -> Result<(), String> {
        if got.dims() != want.dims() {
            return Err(format!(
                "shapes differ: got {:?}, expected {:?}",
                got.dims(),
                want.dims()
            ));
        }
        self.check_slices(&values(got), &values(want))
    }

    /// Panics with `what` and the first element off unless [`Tolerance::check`] holds.
    pub fn assert_close(&self, got: &Tensor, want: &Tensor, what: &str) {
        if let Err(e) = self.check(got, want) {
            panic!("{what}: {e}");
        }
    }

    /// Relative L2 error `|got - want|_2 / |want|_2 <= rel` on f64 slices; `Err` gives the
    /// error and names the first element with `|g - w| > rel * rms(want)`.
    pub fn check_rel_l2_slices(&self, got: &[f64], want: &[f64]) -> Result<(), String> {
        if got.len() != want.len() {
            return Err(format!(
                "lengths differ: got {}, expected {}",
                got.len(),
                want.len()
            ));
        }
        let err = rel_l2_slices(got, want);
        if err <= self.rel {
            return Ok(());
        }
        let den: f64 = want.iter().map(|y| y * y).sum();
        let lim = if den == 0.0 {
            self.rel / (want.len().max(1) as f64).sqrt()
        } else {
            self.rel * (den / want.len() as f64).sqrt()
        };
        let at = got
            .iter()
            .zip(want)
            .position(|(g, w)| !((g - w).abs() <= lim))
            .unwrap_or(0);
        let (g, w) = (
            got.get(at).copied().unwrap_or(f64::NAN),
            want.get(at).copied().unwrap_or(f64::NAN),
        );
        Err(format!(
            "relative L2 error {err:e} > {:e}; {}",
            self.rel,
            first_off(at, g, w, lim)
        ))
    }

    /// [`Tolerance::check_rel_l2_slices`] on two tensors of one shape.
    pub fn check_rel_l2(&self, got: &Tensor, want: &Tensor) -> Result<(), String> {
        if got.dims() != want.dims() {
            return Err(format!(
                "shapes differ: got {:?}, expected {:?}",
                got.dims(),
                want.dims()
            ));
        }
        self.check_rel_l2_slices(&values(got), &values(want))
    }

    /// Panics with `what` unless [`Tolerance::check_rel_l2`] holds.
    pub fn assert_rel_l2(&self, got: &Tensor, want: &Tensor, what: &str) {
        if let Err(e) = self.check_rel_l2(got, want) {
            panic!("{what}: {e}");
        }
    }

    /// Scaled: `|g_i - w_i| <= rel * max_j |w_j|`; `Err` names the first element off.
    pub fn check_scaled(&self, got: &[f64], want: &[f64]) -> Result<(), String> {
        if got.len() != want.len() {
            return Err(format!(
                "lengths differ: got {}, expected {}",
                got.len(),
                want.len()
            ));
        }
        let lim = self.rel * scale(want);
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            if !((g - w).abs() <= lim) && g != w {
                return Err(first_off(i, *g, *w, lim));
            }
        }
        Ok(())
    }

    /// [`Tolerance::check_scaled`] for every named tensor of `want` (the same names in both,
    /// checked in name order); panics naming the tensor and its first element off.
    pub fn assert_scaled_named(
        &self,
        got: &HashMap<String, Vec<f64>>,
        want: &HashMap<String, Vec<f64>>,
        what: &str,
    ) {
        let mut names: Vec<&String> = want.keys().collect();
        names.sort();
        let mut got_names: Vec<&String> = got.keys().collect();
        got_names.sort();
        assert_eq!(got_names, names, "{what}: different parameter sets");
        for name in names {
            if let Err(e) = self.check_scaled(&got[name], &want[name]) {
                panic!("{what}: {name}: {e}");
            }
        }
    }
}

/// `max_j |w_j|`, at least the smallest positive f64.
fn scale(want: &[f64]) -> f64 {
    want.iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE)
}

fn first_off(i: usize, got: f64, want: f64, lim: f64) -> String {
    format!(
        "element {i} is off: got {got:e}, expected {want:e} (|diff| {:e} > tolerance {lim:e})",
        (got - want).abs()
    )
}

fn values(t: &Tensor) -> Vec<f64> {
    revstab::util::to_f64_vec(t).unwrap()
}

fn rel_l2_slices(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

/// Relative L2 error `|a - b|_2 / |b|_2` (absolute when `b` is all zeros), for the tests that
/// report or compare errors rather than assert a tolerance.
pub fn rel_l2(a: &Tensor, b: &Tensor) -> f64 {
    rel_l2_slices(&values(a), &values(b))
}

/// Largest over the named tensors of `max_i |a_i - b_i| / max_i |b_i|`, with that tensor's name:
/// how far `a` moved from `b`, for the tests that require a change rather than closeness.
pub fn max_scaled_diff(
    a: &HashMap<String, Vec<f64>>,
    b: &HashMap<String, Vec<f64>>,
) -> (f64, String) {
    assert_eq!(a.len(), b.len(), "different parameter sets");
    let mut names: Vec<&String> = a.keys().collect();
    names.sort();
    let mut worst = (0.0, String::new());
    for name in names {
        let (va, vb) = (&a[name], &b[name]);
        let d = va
            .iter()
            .zip(vb)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
            / scale(vb);
        if d > worst.0 || !d.is_finite() {
            worst = (d, name.clone());
        }
    }
    worst
}

/// The five long-running tools, in the order the CLI tests visit them.
pub const TOOLS: [&str; 5] = ["snr-sweep", "train", "memory", "bench", "figures"];

/// Run tool `bin` (one of [`TOOLS`] or `report`) with `args`, its kernels on one thread.
pub fn run_tool(bin: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(exe(bin))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .env("CANDLE_NUM_THREADS", "1")
        .output()
        .unwrap_or_else(|e| panic!("{bin}: {e}"))
}

/// A finished tool's stdout then stderr, as text.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The built executable of tool `bin` (one of [`TOOLS`], or `report`).
pub fn exe(bin: &str) -> &'static str {
    match bin {
        "snr-sweep" => env!("CARGO_BIN_EXE_snr-sweep"),
        "train" => env!("CARGO_BIN_EXE_train"),
        "memory" => env!("CARGO_BIN_EXE_memory"),
        "bench" => env!("CARGO_BIN_EXE_bench"),
        "figures" => env!("CARGO_BIN_EXE_figures"),
        "report" => env!("CARGO_BIN_EXE_report"),
        other => panic!("unknown binary {other}"),
    }
}

/// A tiny accuracy sweep of two runs (one layer-wise network of depth 2, stored and
/// reconstructed, one epoch on 64 synthetic 8x8 images): what the dry-run and output tests run.
pub const TINY_ACCURACY_SWEEP: &str = r#"
experiment = "accuracy"
archs = ["layerwise"]
modes = ["stored", "reconstructed"]
seeds = [0]
arch_lr = {}
[depth_sweep]
slope = 0.2
depths = [2]
[slope_sweep]
depth = 2
slopes = []
[train]
width = 4
epochs = 1
batch = 32
data = "synthetic:train=64,test=32,size=8"
"#;

/// The angle experiment of one run (a layer-wise network of depth 2), a probe every step.
pub const TINY_ANGLES: &str = r#"
experiment = "angles"
modes = ["reconstructed"]
seeds = [0]
[[nets]]
arch = "layerwise"
depth = 2
[train]
width = 4
epochs = 1
batch = 32
angle_every = 1
data = "synthetic:train=64,test=32,size=8"
"#;

/// A unit-Gaussian f64 CPU tensor of `shape` from the crate's seeded stream `stream` (seed 0).
pub fn randn_f64(shape: &[usize], stream: &str) -> Tensor {
    revstab::util::randn(
        &mut revstab::util::rng_for(0, stream),
        shape,
        0.0,
        1.0,
        DType::F64,
        &candle_core::Device::Cpu,
    )
    .unwrap()
}
