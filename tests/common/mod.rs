//! Shared test helpers: one tolerance type (burn-style), first failing element reported.
#![allow(dead_code)]

use candle_core::Tensor;

/// `|x - y| <= max(rel * max(|x|, |y|), abs)` elementwise.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    pub rel: f64,
    pub abs: f64,
}

impl Tolerance {
    pub const F64: Tolerance = Tolerance {
        rel: 1e-12,
        abs: 1e-14,
    };
    pub fn rel(rel: f64) -> Self {
        Tolerance { rel, abs: 0.0 }
    }
    pub fn assert_close(&self, got: &Tensor, want: &Tensor, what: &str) {
        assert_eq!(got.dims(), want.dims(), "{what}: shapes differ");
        let g = revstab::util::to_f64_vec(got).unwrap();
        let w = revstab::util::to_f64_vec(want).unwrap();
        for (i, (a, b)) in g.iter().zip(&w).enumerate() {
            let lim = (self.rel * a.abs().max(b.abs())).max(self.abs);
            assert!(
                (a - b).abs() <= lim,
                "{what}: element {i} differs: got {a}, want {b} (|diff| {} > {lim})",
                (a - b).abs()
            );
        }
    }
}

/// Relative L2 error `|a - b| / |b|`.
pub fn rel_l2(a: &Tensor, b: &Tensor) -> f64 {
    let a = revstab::util::to_f64_vec(a).unwrap();
    let b = revstab::util::to_f64_vec(b).unwrap();
    let num: f64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}
