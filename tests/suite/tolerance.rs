//! The shared tolerance helper ([`crate::common::Tolerance`]): what passes and fails under each
//! criterion, and that a failure names the first element that is off.

use crate::common::{max_scaled_diff, Tolerance};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

fn t(v: &[f64]) -> Tensor {
    Tensor::new(v, &Device::Cpu).unwrap()
}

#[test]
fn elementwise_check_names_the_first_element_off() {
    let tol = Tolerance::rel(1e-3);
    // 1 vs 1.0005: |diff| 5e-4 <= 1e-3 * 1.0005, within; 2 vs 2.01 off; 3 vs 4 off (later).
    let e = tol
        .check(&t(&[1.0005, 2.01, 4.0]), &t(&[1.0, 2.0, 3.0]))
        .unwrap_err();
    assert!(
        e.starts_with("element 1 is off: got 2.01e0, expected 2e0"),
        "{e}"
    );
    assert!(e.contains("> tolerance 2.0099"), "{e}");
    assert!(tol
        .check(&t(&[1.0005, 2.0, 3.0]), &t(&[1.0, 2.0, 3.0]))
        .is_ok());
    // The absolute floor covers values near zero.
    let floor = Tolerance {
        rel: 0.0,
        abs: 1e-6,
    };
    assert!(floor.check(&t(&[5e-7]), &t(&[0.0])).is_ok());
    assert!(floor.check(&t(&[2e-6]), &t(&[0.0])).is_err());
    // NaN is never close; shapes must agree.
    assert!(tol.check(&t(&[f64::NAN]), &t(&[f64::NAN])).is_err());
    let e = tol.check(&t(&[1.0, 2.0]), &t(&[1.0])).unwrap_err();
    assert!(e.contains("shapes differ"), "{e}");
}

#[test]
fn relative_l2_check_fails_exactly_past_its_threshold_and_names_an_element() {
    // want = (3, 4): |want| = 5. got = (3, 4 + d): relative error d / 5.
    let want = t(&[3.0, 4.0]);
    let within = t(&[3.0, 4.0 + 0.5e-2 * 5.0 * 0.99]);
    assert!(Tolerance::rel(0.5e-2).check_rel_l2(&within, &want).is_ok());
    let off = t(&[3.0, 4.0 + 0.5e-2 * 5.0 * 1.01]);
    let e = Tolerance::rel(0.5e-2)
        .check_rel_l2(&off, &want)
        .unwrap_err();
    // rms(want) = 5 / sqrt 2: element 1's |diff| 0.02525 exceeds 0.005 * 3.5355 = 0.01768.
    assert!(
        e.contains("relative L2 error 5.0499") && e.contains("> 5e-3"),
        "{e}"
    );
    assert!(e.contains("element 1 is off"), "{e}");
    // EXACT: any difference fails, identical values pass.
    assert!(Tolerance::EXACT.check_rel_l2(&want, &want).is_ok());
    let e = Tolerance::EXACT
        .check_rel_l2(&t(&[3.0, 4.0 + 1e-15]), &want)
        .unwrap_err();
    assert!(e.contains("element 1 is off"), "{e}");
}

#[test]
fn scaled_check_reads_the_tolerance_against_the_largest_value() {
    let want = vec![100.0, 1.0];
    // |diff| 0.5 at the small element is within 1e-2 * 100.
    assert!(Tolerance::rel(1e-2)
        .check_scaled(&[100.0, 1.5], &want)
        .is_ok());
    let e = Tolerance::rel(1e-3)
        .check_scaled(&[100.0, 1.5], &want)
        .unwrap_err();
    assert!(e.starts_with("element 1 is off"), "{e}");
    let a = HashMap::from([("w".to_string(), vec![100.0, 1.5])]);
    let b = HashMap::from([("w".to_string(), want)]);
    assert_eq!(max_scaled_diff(&a, &b), (0.005, "w".to_string()));
}

#[test]
fn dtype_presets_follow_the_unit_roundoff() {
    let order = [DType::F64, DType::F32, DType::F16, DType::BF16];
    for pair in order.windows(2) {
        let (a, b) = (Tolerance::for_dtype(pair[0]), Tolerance::for_dtype(pair[1]));
        assert!(a.rel < b.rel && a.abs < b.abs, "{pair:?}");
    }
    // Each preset is well above its dtype's unit roundoff and well below 1.
    let roundoff = [
        2f64.powi(-53),
        2f64.powi(-24),
        2f64.powi(-11),
        2f64.powi(-8),
    ];
    for (d, u) in order.into_iter().zip(roundoff) {
        let tol = Tolerance::for_dtype(d);
        assert!(tol.rel > 10.0 * u && tol.rel < 0.1, "{d:?}: {tol:?}");
    }
    assert_eq!(Tolerance::for_dtype(DType::U8), Tolerance::EXACT);
}
