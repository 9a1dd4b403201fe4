//! The linearised depth law (`predicted_snr_db_law`): its Jacobian-vector product against a
//! closed form, exactness on a chain whose errors are linear, and its accuracy on real networks
//! of every reconstructing architecture.

use super::depth_law::{reconstruct_two, NoisyGain};
use candle_core::{Device, Tensor};
use revstab::experiments::snr_sweep::{run_point, SweepConfig};
use revstab::layers::{InvLeakyReLU, Layer, Pass, Role};
use revstab::measure::law::{inverse_jvp, linearised_law, LawLayer};
use revstab::nets::Arch;

/// The inverse of a leaky ReLU of slope n is `y` where `y >= 0` and `y / n` elsewhere, so its
/// Jacobian-vector product along `e` is `e` or `e / n`: the forward difference gives it to
/// 1e-6 relative (f64; no element of `y` lies within the step of the kink).
#[test]
fn jvp_of_the_leaky_relu_inverse_is_the_closed_form() {
    let n = 0.1;
    let layer = InvLeakyReLU::new("act", n).unwrap();
    let y: Vec<f64> = (0..40).map(|i| (i as f64 - 19.5) / 7.0).collect();
    let e: Vec<f64> = (0..40)
        .map(|i| ((i * 13 % 9) as f64 - 4.0) * 1e-3)
        .collect();
    let yt = Tensor::new(y.clone(), &Device::Cpu).unwrap();
    let et = Tensor::new(e.clone(), &Device::Cpu).unwrap();
    let got = inverse_jvp(&layer, &yt, &et)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    for ((g, y), e) in got.iter().zip(&y).zip(&e) {
        let want = if *y >= 0.0 { *e } else { e / n };
        assert!(
            (g - want).abs() <= 1e-6 * want.abs().max(1e-3),
            "y {y}: {g} vs {want}"
        );
    }
}

/// [`NoisyGain`] (`y = gain * x` whose inverse adds a fixed error `e`, `inverse(y) = y / gain +
/// e`, whatever its input): a chain of them is linear in its errors, so the law (which keeps the error
/// vectors) reproduces the measured SNR to f64 rounding, where the power and amplitude sums
/// can only bracket it. Both layers' errors here lie on the same elements with partly opposite
/// signs, so neither bracket is tight.
#[test]
fn a_chain_with_linear_errors_follows_the_law_exactly() {
    let n = 64;
    let t = |f: &dyn Fn(usize) -> f64| {
        Tensor::new((0..n).map(f).collect::<Vec<f64>>(), &Device::Cpu).unwrap()
    };
    let x0 = t(&|i| ((i * 37 % 11) as f64 - 5.0) / 3.0 + 0.1);
    let lower = NoisyGain {
        name: "lower".into(),
        gain: 3.0,
        error: t(&|i| 1e-4 * ((i % 3) as f64 - 1.0 + 0.5 * ((i % 5) as f64 - 2.0))),
    };
    let upper = NoisyGain {
        name: "upper".into(),
        gain: 0.5,
        error: t(&|i| 2e-4 * ((i % 3) as f64 - 1.0)),
    };
    let (x1, measured) = reconstruct_two(&lower, &upper, &x0);
    let step = |l: &NoisyGain, x: &Tensor| {
        let y = l.forward_pass(x, Pass::Record).unwrap();
        let error = (l.inverse(&y).unwrap() - x).unwrap();
        (y, error)
    };
    let ((y_upper, s_upper), (y_lower, s_lower)) = (step(&upper, &x1), step(&lower, &x0));
    let layers = [
        LawLayer {
            layer: &upper,
            shadow: &upper,
            input: &x1,
            output: &y_upper,
            step_error: &s_upper,
            exact_output: false,
        },
        LawLayer {
            layer: &lower,
            shadow: &lower,
            input: &x0,
            output: &y_lower,
            step_error: &s_lower,
            exact_output: false,
        },
    ];
    let got = linearised_law(None, &layers, &Device::Cpu, 7).unwrap();
    for (g, m) in got.iter().zip(measured) {
        assert!(
            (g.predicted_snr_db - m).abs() < 1e-6,
            "law {} dB vs measured {m} dB",
            g.predicted_snr_db
        );
    }
    // The carried error and the lower injection overlap: their cosine is neither 0 nor 1.
    let c = got[1].injection_corr;
    assert!(c.abs() > 0.05 && c.abs() < 0.95, "injection cosine {c}");
}

/// Entries with a finite measured SNR above 0 dB, and the law's error at each.
fn law_errors(cfg: &SweepConfig) -> Vec<(String, f64, f64)> {
    let mut out = Vec::new();
    for p in cfg.grid() {
        let (_, trace) = run_point(cfg, &p, &Device::Cpu).unwrap();
        for t in trace.points.iter().filter(|t| t.role != Role::Hidden) {
            if t.snr_db.is_finite() && t.snr_db > 0.0 {
                out.push((
                    format!("{} {}", p.key(), t.layer),
                    t.snr_db,
                    t.predicted_snr_db_law,
                ));
            }
        }
    }
    out
}

/// On small networks of the four reconstructing architectures, in f32, f16 and bf16, the law is
/// within 3 dB of the measured SNR at every entry above 0 dB, and its median error is under 1
/// dB (the acceptance bar of the validation family is 2 dB median, 8 dB max).
#[test]
fn the_law_follows_real_reconstructions() {
    let cfg = SweepConfig {
        archs: vec![Arch::Layerwise, Arch::Hybrid, Arch::Revnet, Arch::Irevnet],
        depths: vec![2, 6],
        slopes: vec![0.05, 0.3],
        widths: vec![8],
        batch: 4,
        input_size: 8,
        dtypes: vec![
            revstab::device::Precision::F32,
            revstab::device::Precision::F16,
            revstab::device::Precision::BF16,
        ],
        ..SweepConfig::default()
    };
    let errs = law_errors(&cfg);
    assert!(errs.len() > 100, "only {} entries", errs.len());
    let mut abs: Vec<f64> = errs.iter().map(|(_, m, p)| (p - m).abs()).collect();
    for (what, m, p) in &errs {
        assert!((p - m).abs() < 3.0, "{what}: law {p} dB vs measured {m} dB");
    }
    abs.sort_by(f64::total_cmp);
    let median = abs[abs.len() / 2];
    assert!(median < 1.0, "median error {median} dB");
}

/// With output noise far above the rounding, the reconstruction error is the noise carried
/// down the inverses, which the law computes to first order: within 0.5 dB everywhere.
#[test]
fn the_law_carries_output_noise() {
    let cfg = SweepConfig {
        archs: vec![Arch::Layerwise, Arch::Hybrid],
        depths: vec![4],
        slopes: vec![0.2],
        batch: 4,
        input_size: 8,
        noise_std: 1e-4,
        ..SweepConfig::default()
    };
    for (what, m, p) in law_errors(&cfg) {
        assert!((p - m).abs() < 0.5, "{what}: law {p} dB vs measured {m} dB");
    }
}
