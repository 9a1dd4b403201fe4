//! No stale outputs. `snr-sweep --no-figure` into a directory with an earlier
//! figure removes it; `figures` does not fail (or write) the figures of `train` results that do
//! not exist yet.

use std::process::Command;

#[test]
fn no_figure_into_an_existing_directory_removes_the_old_png() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let sweep = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_snr-sweep"))
            .args(["--depths", "1,2", "--slopes", "0.5", "--quiet", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    sweep(&[]);
    let png = out.join("snr_vs_depth.png");
    let svg = out.join("snr_vs_depth.svg");
    assert!(
        png.exists() && svg.exists(),
        "the first run draws the figure"
    );
    let err = sweep(&["--no-figure", "--slopes", "0.3"]);
    assert!(!png.exists() && !svg.exists(), "stale figure kept");
    assert!(
        err.contains("removed") && err.contains("snr_vs_depth.png"),
        "{err}"
    );
    assert!(out.join("summary.csv").exists());
}

#[test]
fn figures_of_missing_train_results_fail_only_when_requested_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("figs");
    let empty = tmp.path().join("no-train-results");
    let o = Command::new(env!("CARGO_BIN_EXE_figures"))
        .args(["--only", "fig12"])
        .arg("--accuracy-results")
        .arg(&empty)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("needs the results of `train accuracy`") && err.contains("no-train-results"),
        "{err}"
    );
    let written: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "wrote {written:?}");
    assert!(!empty.exists());
}
