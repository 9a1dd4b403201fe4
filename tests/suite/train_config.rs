//! `train --config FILE` with flags beside it (the flags override the file), a
//! single run written as TOML, and the grid axes of an experiment file as a clear error.

use std::path::Path;
use std::process::{Command, Output};

fn train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_train"))
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("run train")
}

fn read_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn epochs_in_history(dir: &Path) -> usize {
    let text = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    text.lines().skip(1).filter(|l| !l.is_empty()).count()
}

const SINGLE_RUN: &str = r#"
arch = "hybrid"
depth = 2
width = 8
epochs = 2
lr = 0.05
batch = 32
data = "synthetic:train=64,test=32,size=8"
"#;

#[test]
fn a_single_training_run_can_be_written_as_toml_without_an_experiment_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("single.toml");
    std::fs::write(&cfg, SINGLE_RUN).unwrap();
    let out = tmp.path().join("out");
    let o = train(&[
        "--config",
        cfg.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = read_json(&out.join("run.json"));
    assert_eq!(run["experiment"], "single");
    let c = &run["config"];
    assert_eq!(c["arch"], "hybrid");
    assert_eq!(c["epochs"], 2);
    assert_eq!(c["lr"], 0.05);
    assert_eq!(c["batch"], 32);
    assert_eq!(epochs_in_history(&out), 2);
}

#[test]
fn flags_beside_train_config_override_the_file_instead_of_being_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("single.toml");
    std::fs::write(&cfg, SINGLE_RUN).unwrap();
    let out = tmp.path().join("out");
    let o = train(&[
        "--config",
        cfg.to_str().unwrap(),
        "--epochs",
        "1",
        "--lr",
        "0.01",
        "--arch",
        "layerwise",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = read_json(&out.join("run.json"))["config"].clone();
    // The flags win ...
    assert_eq!(c["arch"], "layerwise");
    assert_eq!(c["epochs"], 1);
    assert_eq!(c["lr"], 0.01);
    // ... and the file's other values stay.
    assert_eq!(c["depth"], 2);
    assert_eq!(c["batch"], 32);
    assert_eq!(c["data"], "synthetic:train=64,test=32,size=8");
    assert_eq!(epochs_in_history(&out), 1);
}

const SWEEP: &str = r#"
experiment = "accuracy"
archs = ["layerwise"]
modes = ["stored"]
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
epochs = 2
batch = 32
data = "synthetic:train=64,test=32,size=8"
"#;

#[test]
fn flags_beside_an_experiment_config_override_its_shared_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("sweep.toml");
    std::fs::write(&cfg, SWEEP).unwrap();
    let out = tmp.path().join("out");
    let o = train(&[
        "--config",
        cfg.to_str().unwrap(),
        "--epochs",
        "1",
        "--lr",
        "0.02",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = read_json(&out.join("run.json"))["config"].clone();
    assert_eq!(c["train"]["epochs"], 1, "{c}");
    assert_eq!(c["train"]["lr"], 0.02, "{c}");
    assert_eq!(c["train"]["width"], 4, "{c}");
}

#[test]
fn grid_axis_flags_beside_an_experiment_config_are_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("sweep.toml");
    std::fs::write(&cfg, SWEEP).unwrap();
    let out = tmp.path().join("out");
    let o = train(&[
        "--config",
        cfg.to_str().unwrap(),
        "--arch",
        "hybrid",
        "--depth",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--arch, --depth"), "{err}");
    assert!(err.contains(cfg.to_str().unwrap()), "{err}");
    assert!(!out.exists(), "{} was created", out.display());
}
