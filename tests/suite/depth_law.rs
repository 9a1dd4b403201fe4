//! The rounding-aware depth law (`predicted_snr_db_rounding`): a closed form on
//! a two-layer chain, and no `+inf` prediction where the measured SNR is finite.

use candle_core::{Device, Tensor};
use revstab::error::Result;
use revstab::experiments::snr_sweep::{run_point, SweepConfig};
use revstab::layers::{Layer, Param, Pass, Role};
use revstab::measure::alpha::empirical_alpha;
use revstab::measure::snr::Snr;
use revstab::measure::trace::{coherent_depth_law, rounding_depth_law};
use revstab::nets::Arch;

fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

/// The law's closed form on two layers (top layer 2, then layer 1 below it), in ratios:
/// `1/snr_2 = 1/(snr_out alpha_2) + d_2`, `1/snr_1 = 1/(snr_out alpha_2 alpha_1) + d_2/alpha_1
/// + d_1`.
#[test]
fn two_layer_chain_matches_the_closed_form() {
    // (output SNR, alpha_2, alpha_1, one-step SNR of inverse 2, of inverse 1), ratios.
    let cases = [
        (f64::INFINITY, 0.5, 0.25, 1e12, 4e11),
        (1e6, 0.5, 0.25, 1e12, 4e11),
        (1e6, 2.0, 0.1, f64::INFINITY, 1e9),
        (1e3, 1.0, 1.0, 1e3, 1e3),
    ];
    for (out, a2, a1, s2, s1) in cases {
        let got = rounding_depth_law(db(out), &[(db(a2), db(s2)), (db(a1), db(s1))]);
        let nsr2 = 1.0 / (out * a2) + 1.0 / s2;
        let nsr1 = 1.0 / (out * a2 * a1) + 1.0 / (s2 * a1) + 1.0 / s1;
        let want = [-db(nsr2), -db(nsr1)];
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() < 1e-9,
                "case {out} {a2} {a1} {s2} {s1}: {g} vs {w}"
            );
        }
    }
    // Worked numbers: out 1e6 (60 dB), alpha_2 = 0.5, alpha_1 = 0.25, injections 1e-6 each:
    // 1/snr_2 = 2e-6 + 1e-6 = 3e-6 (55.229 dB); 1/snr_1 = 8e-6 + 4e-6 + 1e-6 = 1.3e-5
    // (48.861 dB).
    let got = rounding_depth_law(60.0, &[(db(0.5), 60.0), (db(0.25), 60.0)]);
    assert!((got[0] - 55.228_787_452_803_38).abs() < 1e-9, "{}", got[0]);
    assert!((got[1] - 48.860_566_476_931_63).abs() < 1e-9, "{}", got[1]);
    // No noise anywhere: +inf; an exact inverse below an inexact one carries the noise on.
    let got = rounding_depth_law(f64::INFINITY, &[(-3.0, f64::INFINITY), (-3.0, 100.0)]);
    assert_eq!(got[0], f64::INFINITY);
    assert!((got[1] - 100.0).abs() < 1e-12);
    let got = rounding_depth_law(f64::INFINITY, &[(-3.0, 100.0), (-3.0, f64::INFINITY)]);
    assert!((got[1] - (100.0 - 3.0)).abs() < 1e-12, "{}", got[1]);
}

/// The amplitude-sum (coherent) law on two layers, closed form: rounding amplitudes
/// `r_2 = sqrt(d_2)`, `r_1 = sqrt(d_2 / alpha_1) + sqrt(d_1)`; output noise in power:
/// `1/snr_2 = 1/(snr_out alpha_2) + r_2^2`, `1/snr_1 = 1/(snr_out alpha_2 alpha_1) + r_1^2`.
/// It is never above the power-sum law (triangle inequality), equal with one injection.
#[test]
fn two_layer_chain_coherent_law_matches_the_closed_form() {
    let cases = [
        (f64::INFINITY, 0.5, 0.25, 1e12, 4e11),
        (1e6, 0.5, 0.25, 1e12, 4e11),
        (1e6, 2.0, 0.1, f64::INFINITY, 1e9),
        (1e3, 1.0, 1.0, 1e3, 1e3),
    ];
    for (out, a2, a1, s2, s1) in cases {
        let layers = [(db(a2), db(s2)), (db(a1), db(s1))];
        let got = coherent_depth_law(db(out), &layers);
        let r2 = (1.0 / s2).sqrt();
        let r1 = (1.0 / (s2 * a1)).sqrt() + (1.0 / s1).sqrt();
        let want = [
            -db(1.0 / (out * a2) + r2 * r2),
            -db(1.0 / (out * a2 * a1) + r1 * r1),
        ];
        let power = rounding_depth_law(db(out), &layers);
        for ((g, w), p) in got.iter().zip(want).zip(power) {
            assert!(
                (g - w).abs() < 1e-9,
                "case {out} {a2} {a1} {s2} {s1}: {g} vs {w}"
            );
            assert!(*g <= p + 1e-12, "coherent {g} above power sum {p}");
        }
    }
    // Worked numbers: no output noise, alpha_1 = 0.25, injections 1e-6 each: amplitudes
    // 1e-3 / 0.5 + 1e-3 = 3e-3, 1/snr_1 = 9e-6 (50.458 dB) where the power sum gives
    // 4e-6 + 1e-6 = 5e-6 (53.010 dB).
    let layers = [(db(0.5), 60.0), (db(0.25), 60.0)];
    let got = coherent_depth_law(f64::INFINITY, &layers);
    assert!((got[0] - 60.0).abs() < 1e-9, "{}", got[0]);
    assert!((got[1] - 50.457_574_905_606_75).abs() < 1e-9, "{}", got[1]);
    let power = rounding_depth_law(f64::INFINITY, &layers);
    assert!(
        (power[1] - 53.010_299_956_639_81).abs() < 1e-9,
        "{}",
        power[1]
    );
}

/// `y = gain * x` whose inverse adds a fixed error on the elements of one parity
/// (`inverse(y) = y / gain + e`, `e` nonzero on even or odd flat indices only): two such layers
/// with opposite parities inject orthogonal errors, so their powers add exactly, and a scalar gain
/// leaves every SNR unchanged (alpha = 1).
pub(super) struct NoisyGain {
    pub(super) name: String,
    pub(super) gain: f64,
    pub(super) error: Tensor,
}

impl NoisyGain {
    fn new(name: &str, gain: f64, n: usize, parity: usize, size: f64) -> NoisyGain {
        let e: Vec<f64> = (0..n)
            .map(|i| {
                if i % 2 == parity {
                    size * (1.0 + (i % 7) as f64 / 7.0) * if i % 3 == 0 { -1.0 } else { 1.0 }
                } else {
                    0.0
                }
            })
            .collect();
        NoisyGain {
            name: name.into(),
            gain,
            error: Tensor::new(e, &Device::Cpu).unwrap(),
        }
    }
}

impl Layer for NoisyGain {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, _pass: Pass) -> Result<Tensor> {
        Ok((x * self.gain)?)
    }
    fn is_invertible(&self) -> bool {
        true
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(((y / self.gain)? + self.error.reshape(y.dims())?)?)
    }
    fn params(&self) -> Vec<Param> {
        Vec::new()
    }
}

/// `lower` then `upper` on `x0`, reconstructed top down from the exact output: the middle
/// activation and the measured SNRs of the two rebuilt inputs (top first).
pub(super) fn reconstruct_two(
    lower: &NoisyGain,
    upper: &NoisyGain,
    x0: &Tensor,
) -> (Tensor, [f64; 2]) {
    let x1 = lower.forward_pass(x0, Pass::Record).unwrap();
    let y = upper.forward_pass(&x1, Pass::Record).unwrap();
    let x1_hat = upper.inverse(&y).unwrap();
    let x0_hat = lower.inverse(&x1_hat).unwrap();
    let measured = [
        Snr::of(&x1, &x1_hat).unwrap().db(),
        Snr::of(x0, &x0_hat).unwrap().db(),
    ];
    (x1, measured)
}

/// The law fed with each layer's measured alpha and one-step SNR predicts the measured SNR of a
/// real two-layer reconstruction to within 1e-6 dB (f64; the only departures are f64 rounding).
#[test]
fn two_scalar_gain_layers_follow_the_law_exactly() {
    let n = 64;
    let x0 = Tensor::new(
        (0..n)
            .map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0 + 0.1)
            .collect::<Vec<f64>>(),
        &Device::Cpu,
    )
    .unwrap();
    let lower = NoisyGain::new("lower", 3.0, n, 0, 1e-4);
    let upper = NoisyGain::new("upper", 0.5, n, 1, 2e-4);
    let (x1, measured) = reconstruct_two(&lower, &upper, &x0);
    // The law's inputs, measured one layer at a time.
    let step = |l: &NoisyGain, x: &Tensor| {
        let y = l.forward_pass(x, Pass::Record).unwrap();
        Snr::of(x, &l.inverse(&y).unwrap()).unwrap().db()
    };
    // alpha of a scalar gain is 1 whatever the noise: measure it anyway, with an exact inverse.
    let exact = |g: f64| NoisyGain::new("exact", g, n, 0, 0.0);
    let a_upper = empirical_alpha(&exact(0.5), &x1, 1e-5, 1).unwrap().alpha;
    let a_lower = empirical_alpha(&exact(3.0), &x0, 1e-5, 2).unwrap().alpha;
    assert!((a_upper - 1.0).abs() < 1e-9 && (a_lower - 1.0).abs() < 1e-9);
    let predicted = rounding_depth_law(
        f64::INFINITY,
        &[
            (db(a_upper), step(&upper, &x1)),
            (db(a_lower), step(&lower, &x0)),
        ],
    );
    for (p, m) in predicted.iter().zip(measured) {
        assert!((p - m).abs() < 1e-6, "predicted {p} dB vs measured {m} dB");
    }
    // And eq. 19 alone (no injection below the top) is optimistic here by the lower injection.
    assert!(measured[1] < measured[0] - 1.0);
}

/// Over a small sweep with exact layers (n = 1, n = 0.5), pools on top (depth 1, 2) and inexact
/// ones (n = 0.1), neither prediction is `+inf` where the measured SNR is finite, and the
/// rounding-aware one equals the measurement at the first inexact entry.
#[test]
fn no_infinite_prediction_where_the_measurement_is_finite() {
    let cfg = SweepConfig {
        archs: vec![Arch::Layerwise, Arch::Hybrid],
        depths: vec![1, 2, 4],
        slopes: vec![1.0, 0.5, 0.1],
        batch: 4,
        input_size: 8,
        ..SweepConfig::default()
    };
    let mut checked = 0;
    let mut exact_tops = 0;
    for p in cfg.grid() {
        let (_, trace) = run_point(&cfg, &p, &Device::Cpu).unwrap();
        let top: Vec<_> = trace
            .points
            .iter()
            .filter(|t| t.role != Role::Hidden)
            .collect();
        if top.first().is_some_and(|t| t.snr_db.is_infinite()) {
            exact_tops += 1;
        }
        let mut first_inexact = true;
        for t in &top {
            if !t.snr_db.is_finite() {
                continue;
            }
            checked += 1;
            for (what, v) in [
                ("predicted_snr_db", t.predicted_snr_db),
                ("predicted_snr_db_rounding", t.predicted_snr_db_rounding),
                ("predicted_snr_db_coherent", t.predicted_snr_db_coherent),
            ] {
                assert!(
                    v.is_finite(),
                    "{} {}: {what} = {v} where measured {}",
                    p.key(),
                    t.layer,
                    t.snr_db
                );
            }
            if first_inexact {
                assert!(
                    (t.predicted_snr_db_rounding - t.snr_db).abs() < 1e-9
                        && (t.predicted_snr_db_coherent - t.snr_db).abs() < 1e-9,
                    "{} {}: first inexact entry predicted {} vs measured {}",
                    p.key(),
                    t.layer,
                    t.predicted_snr_db_rounding,
                    t.snr_db
                );
                first_inexact = false;
            }
        }
    }
    assert!(checked > 50, "only {checked} finite entries checked");
    assert!(exact_tops > 0, "no point with an exact top entry");
}
