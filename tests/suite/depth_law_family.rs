//! The depth-law validation family (`figures --only depth-law`): its draws are fixed by the
//! family seed and member index, its split is the config's, a small family runs, resumes to
//! the same data and renders, the linearised law holds on it, and bad configs are refused.

use crate::common::exe;
use revstab::device::Precision;
use revstab::experiments::depth_law::{error_stats, run_depth_law, DepthLawConfig};
use revstab::experiments::figures::{run_experiment_in, ExperimentConfig, Results};
use revstab::nets::Arch;
use std::process::Command;

/// A family small enough for a test: 8 members of width 8-12 on 8x8 inputs, depth 1-5.
fn small() -> DepthLawConfig {
    DepthLawConfig {
        networks: 8,
        seeds: vec![0, 1],
        report: vec![1, 2, 5, 6],
        depth_range: [1, 5],
        width_range: [8, 12],
        input_sizes: vec![8],
        batches: vec![2, 4],
        ..DepthLawConfig::default()
    }
}

#[test]
fn members_are_fixed_by_the_seed_and_index_and_split_by_the_config() {
    let c = small();
    let more = DepthLawConfig {
        networks: 20,
        ..small()
    };
    for i in 0..c.networks {
        let m = c.member(i).unwrap();
        assert_eq!(m, c.member(i).unwrap(), "member {i} drawn twice differs");
        // Adding members leaves the others as they were.
        assert_eq!(m, more.member(i).unwrap(), "member {i} moved");
        let held = c.report.contains(&i);
        assert_eq!(m.split, if held { "report" } else { "dev" }, "member {i}");
        assert!(m.net.width >= 8 && m.net.width <= 12, "{m:?}");
        assert!(m.depth >= 1 && m.depth <= 5, "{m:?}");
        assert!(m.slope >= 0.01 && m.slope <= 1.0, "{m:?}");
    }
    // Another family seed draws another family.
    let other = DepthLawConfig {
        family_seed: 7,
        ..small()
    };
    assert!((0..c.networks).any(|i| c.member(i).unwrap() != other.member(i).unwrap()));
    // Over many members every architecture and dtype is drawn.
    let big = DepthLawConfig {
        networks: 60,
        ..small()
    };
    let ms: Vec<_> = (0..60).map(|i| big.member(i).unwrap()).collect();
    for a in [Arch::Layerwise, Arch::Hybrid, Arch::Revnet, Arch::Irevnet] {
        assert!(ms.iter().any(|m| m.arch == a), "{a} never drawn");
    }
    for d in [Precision::F32, Precision::F16, Precision::BF16] {
        assert!(ms.iter().any(|m| m.dtype == d), "{d} never drawn");
    }
}

#[test]
fn a_small_family_runs_resumes_renders_and_the_law_holds() {
    let c = small();
    let tmp = tempfile::tempdir().unwrap();
    let points = tmp.path().join("points");
    let d = run_depth_law(&c, Some(&points)).unwrap();
    assert_eq!(d.members.len(), 8);
    assert!(d.entries.len() > 40, "only {} entries", d.entries.len());
    assert_eq!(std::fs::read_dir(&points).unwrap().count(), 16);
    // Resumed: the point files are read back, giving the same data (NaN != NaN: as text).
    let again = run_depth_law(&c, Some(&points)).unwrap();
    let text =
        |d: &revstab::experiments::depth_law::DepthLawData| serde_json::to_string(d).unwrap();
    assert_eq!(text(&again), text(&d));
    // The linearised law within the acceptance bar on both halves of this family.
    let (n, median, max) = error_stats(d.entries.iter().map(|e| (e.snr_db, e.law_db))).unwrap();
    assert!(
        n > 20 && median <= 2.0 && max <= 8.0,
        "{n} entries: {median} / {max} dB"
    );
    // Rendered: the figure, the entries, the error table and the members.
    let cfg = ExperimentConfig::DepthLaw(c);
    let r = run_experiment_in("depth-law", &cfg, "test", 1, Some(&points)).unwrap();
    let res = Results::new(tmp.path().join("cache"));
    res.store(&r).unwrap();
    let out = tmp.path().join("figures");
    revstab::plot::depth_law::depth_law(&res, &out).unwrap();
    let errors = std::fs::read_to_string(out.join("depth-law-errors.csv")).unwrap();
    assert!(
        errors.starts_with("split,law,arch,dtype,entries,median_abs_error_db,max_abs_error_db"),
        "{errors}"
    );
    assert!(
        errors.contains("report,linearised (recommended),all,all,"),
        "{errors}"
    );
    let entries = std::fs::read_to_string(out.join("depth-law.csv")).unwrap();
    assert_eq!(entries.lines().count(), d.entries.len() + 1);
    let members = std::fs::read_to_string(out.join("depth-law-members.csv")).unwrap();
    assert_eq!(members.lines().count(), 9);
    let diag = std::fs::read_to_string(out.join("depth-law-diagnostics.csv")).unwrap();
    assert!(
        diag.starts_with("layer_kind,dtype,entries,alpha_db"),
        "{diag}"
    );
    for ext in ["png", "svg", "provenance.json"] {
        assert!(out.join(format!("depth-law.{ext}")).exists(), "{ext}");
    }
}

#[test]
fn bad_family_configs_are_refused_before_any_file() {
    let cases: [(&str, &str); 4] = [
        ("networks = 4\nreport = [4]\n", "report"),
        ("networks = 4\nreport = [1, 1]\n", "each member once"),
        ("archs = []\n", "archs"),
        ("slope_range = [0.0, 1.0]\n", "slope_range"),
    ];
    for (body, needle) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let exp = tmp.path().join("exp");
        std::fs::create_dir_all(&exp).unwrap();
        let text = format!("experiment = \"depth-law\"\n{body}");
        std::fs::write(exp.join("depth-law.toml"), text).unwrap();
        let out = tmp.path().join("out");
        let o = Command::new(exe("figures"))
            .args(["--only", "depth-law", "--experiments"])
            .arg(&exp)
            .arg("--results")
            .arg(tmp.path().join("res"))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{body}: {err}");
        assert!(err.contains(needle), "{body}: expected `{needle}` in {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.join("depth-law.csv").exists(), "{body}: wrote output");
    }
}
