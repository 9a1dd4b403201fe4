//! Bad input that used to slip through is caught before any file is written,
//! with exit code 2 and one clear line.

use crate::common::exe;
use std::path::Path;
use std::process::{Command, Output};

fn run(bin: &str, args: &[&str], out: &Path) -> Output {
    Command::new(exe(bin))
        .args(args)
        .arg("--out")
        .arg(out)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
}

/// Exit code 2, one line on stderr containing `needle`, no panic, and `out` not created.
fn expect_rejected(bin: &str, args: &[&str], needle: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run(bin, args, &out);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{bin} {args:?}: {err}");
    assert!(
        err.contains(needle),
        "{bin} {args:?}: expected `{needle}` in {err}"
    );
    assert!(!err.contains("panicked"), "{bin} {args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{bin} {args:?}: {err}");
    assert!(
        !out.exists(),
        "{bin} {args:?}: {} was created",
        out.display()
    );
    err
}

#[test]
fn negative_eps_i_is_rejected_before_any_file_in_sweep_and_train() {
    expect_rejected(
        "snr-sweep",
        &["--eps-i=-1"],
        "eps_i: expected a finite value >= 0",
    );
    expect_rejected(
        "train",
        &["--eps-i=-1"],
        "eps_i: expected a finite value >= 0",
    );
    expect_rejected("snr-sweep", &["--eps-i", "0,-0.5"], "got -0.5");
}

#[test]
fn extreme_slopes_are_rejected_with_the_supported_range_not_mid_run() {
    for s in ["1e300", "1e-300", "2e6", "5e-7"] {
        expect_rejected("snr-sweep", &["--slopes", s], "supported range [1e-6, 1e6]");
        expect_rejected("train", &["--slope", s], "supported range [1e-6, 1e6]");
    }
}

#[test]
fn huge_width_is_rejected_up_front_with_a_memory_estimate_instead_of_oom() {
    let start = std::time::Instant::now();
    let err = expect_rejected("snr-sweep", &["--widths", "100000"], "GiB");
    assert!(err.contains("width 100000"), "{err}");
    expect_rejected("train", &["--width", "100000"], "GiB of memory available");
    assert!(start.elapsed().as_secs() < 30, "not up front");
}

#[test]
fn train_experiment_on_a_device_the_build_lacks_leaves_nothing_behind() {
    if cfg!(feature = "cuda") {
        return; // the device exists in this build
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = Command::new(exe("train"))
        .args(["accuracy", "--device", "cuda", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cuda"), "{err}");
    assert!(!out.exists(), "{}", out.display());
    expect_rejected("train", &["--device", "cuda"], "cuda");
}

#[test]
fn negative_numbers_are_values_without_an_equals_sign() {
    // The value reaches the tool's own check (not clap's `unexpected argument '-1'`).
    expect_rejected(
        "snr-sweep",
        &["--noise-std", "-1"],
        "noise_std: expected a finite value >= 0, got -1",
    );
    expect_rejected(
        "train",
        &["--eps-i", "-1"],
        "eps_i: expected a finite value >= 0",
    );
    expect_rejected(
        "train",
        &["--lr", "-0.1"],
        "lr: expected a finite value > 0, got -0.1",
    );
}

#[test]
fn missing_config_file_prints_the_os_error_once() {
    let missing = "/nonexistent-revstab-dir/missing.toml";
    for bin in ["snr-sweep", "train", "memory"] {
        let err = expect_rejected(bin, &["--config", missing], missing);
        let os = std::io::Error::from(std::io::ErrorKind::NotFound).to_string();
        let os_text = "No such file or directory";
        let n = err.matches(os_text).count() + err.matches(os.as_str()).count();
        assert!(n >= 1, "{bin}: {err}");
        assert_eq!(err.matches(os_text).count(), 1, "{bin}: {err}");
    }
}

#[test]
fn memory_and_bench_do_not_double_invalid_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("m.json");
    std::fs::write(&cfg, r#"{"repeats": 0}"#).unwrap();
    let memory_cfg = cfg.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("memory", vec!["--config", &memory_cfg]),
        ("bench", vec!["--steps", "0"]),
    ];
    for (bin, args) in cases {
        let err = expect_rejected(bin, &args, "invalid configuration");
        assert_eq!(
            err.matches("invalid configuration").count(),
            1,
            "{bin}: {err}"
        );
        assert!(err.starts_with(&format!("{bin}: error: ")), "{err}");
    }
}

#[test]
fn figures_bad_input_exits_2_before_writing() {
    expect_rejected("figures", &["--only", "fig99"], "unknown figure id");
    expect_rejected(
        "figures",
        &[
            "--only",
            "fig10",
            "--experiments",
            "/nonexistent-revstab-dir",
        ],
        "no such directory",
    );
    expect_rejected("figures", &["--device", "tpu"], "tpu");
}

/// The anchored mode of `bench` and `memory`: a target that is not a finite number of dB is a
/// usage error of the flag (clap's message and its hint line), an anchor the network does not
/// have is a configuration error naming it; exit 2 and no output directory either way.
#[test]
fn bad_anchors_are_rejected_by_bench_and_memory_before_any_file() {
    let tools: [(&str, &[&str]); 2] = [
        (
            "bench",
            &[
                "--arch",
                "layerwise",
                "--depths",
                "4",
                "--width",
                "8",
                "--modes",
                "stored,anchored",
            ],
        ),
        ("memory", &["--quick", "--modes", "stored,anchored"]),
    ];
    for (bin, base) in tools {
        for bad in ["nan", "inf"] {
            let tmp = tempfile::tempdir().unwrap();
            let out = tmp.path().join("out");
            let mut args = base.to_vec();
            args.extend(["--min-snr-db", bad]);
            let o = run(bin, &args, &out);
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            assert_eq!(o.status.code(), Some(2), "{bin} {args:?}: {err}");
            assert!(
                err.contains("expected a finite number of dB"),
                "{bin} {args:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{bin} {args:?}: {err}");
            assert!(!out.exists(), "{bin} {args:?}: output created");
        }
        let mut args = base.to_vec();
        args.extend(["--anchors", "999"]);
        expect_rejected(bin, &args, "anchor position (--anchors)");
        let mut args = base.to_vec();
        args.extend(["--anchors", "not_a_layer"]);
        expect_rejected(bin, &args, "`not_a_layer`");
    }
}
