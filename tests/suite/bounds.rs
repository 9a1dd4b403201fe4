//! The CI regression on reconstruction error bounds: every bound in experiments/bounds.toml holds.

use revstab::experiments::snr_sweep::{bounds_table, check_bounds, read_bounds};

#[test]
fn reconstruction_error_bounds_hold() {
    let file = read_bounds(std::path::Path::new("experiments/bounds.toml")).unwrap();
    assert!(file.bounds.len() >= 19);
    let checks = check_bounds(&file, 0).unwrap();
    let failed: Vec<_> = checks.iter().filter(|c| !c.ok()).collect();
    assert!(
        failed.is_empty(),
        "reconstruction bounds regressed:\n{}",
        bounds_table(&checks, true)
    );
}
