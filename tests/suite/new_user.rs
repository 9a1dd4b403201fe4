//! The defects a new user met running the tools end to end, one test each, named
//! after the defect it pins. Every test runs the real binaries on tiny inputs.

use crate::common::TINY_ACCURACY_SWEEP;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

fn run(bin: &str, args: &[&str]) -> Output {
    crate::common::run_tool(bin, args)
}

fn text(o: &Output) -> String {
    crate::common::output_text(o)
}

/// `bin args` must exit with `code`; its stdout and stderr.
fn exits(code: i32, bin: &str, args: &[&str]) -> String {
    let o = run(bin, args);
    assert_eq!(
        o.status.code(),
        Some(code),
        "{bin} {args:?}: expected exit {code}\n{}",
        text(&o)
    );
    text(&o)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const TINY_TRAIN: [&str; 8] = [
    "--data",
    "synthetic:train=64,test=32,size=8",
    "--batch",
    "16",
    "--width",
    "4",
    "--depth",
    "2",
];

// ---- item 2: memory guards and quick dry runs ----

#[test]
fn memory_and_bench_refuse_a_width_beyond_memory_before_allocating() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    for (bin, extra) in [
        ("memory", vec![]),
        ("memory", vec!["--dry-run"]),
        ("bench", vec![]),
        ("bench", vec!["--dry-run"]),
    ] {
        let mut args = vec!["--width", "100000", "--out", s(&out)];
        args.extend(extra);
        let msg = exits(2, bin, &args);
        assert!(msg.contains("GiB of memory available"), "{bin}: {msg}");
        assert!(!out.exists(), "{bin} wrote {}", out.display());
    }
    let msg = exits(
        2,
        "bench",
        &["--input-size", "100000", "--dry-run", "--out", s(&out)],
    );
    assert!(msg.contains("GiB"), "{msg}");
}

#[test]
fn dry_run_of_a_deep_sweep_probes_a_small_network_within_seconds() {
    let start = Instant::now();
    let msg = exits(
        0,
        "snr-sweep",
        &[
            "--depths",
            "5000",
            "--slopes",
            "0.5",
            "--archs",
            "hybrid",
            "--dry-run",
        ],
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    assert!(msg.contains("at most 4 deep and 32 wide"), "{msg}");
    assert!(
        msg.contains("-d4-"),
        "the probe is the depth-4 network: {msg}"
    );
}

// ---- item 3: no run claims what it did not do ----

#[test]
fn train_refuses_reconstructed_mode_for_resnet() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let mut args = vec![
        "--arch",
        "resnet",
        "--mode",
        "reconstructed",
        "--out",
        s(&out),
    ];
    args.extend(TINY_TRAIN);
    let msg = exits(2, "train", &args);
    assert!(msg.contains("resnet has no inverse"), "{msg}");
    assert!(!out.exists());
}

// ---- item 4: --out belongs to one tool ----

#[test]
fn a_tool_refuses_a_directory_another_tool_wrote() {
    let t = tempfile::tempdir().unwrap();
    let sweep = t.path().join("sweep");
    assert!(sweep_run(&sweep, "1", &["-q"]).starts_with("0|"));
    let before = std::fs::read(sweep.join("run.json")).unwrap();
    let mut args = vec!["--out", s(&sweep)];
    args.extend(TINY_TRAIN);
    let msg = exits(2, "train", &args);
    assert!(
        msg.contains("`snr-sweep`") && msg.contains("`train single`"),
        "names both tools: {msg}"
    );
    assert_eq!(std::fs::read(sweep.join("run.json")).unwrap(), before);
    // The sweep's results are intact.
    exits(0, "report", &[s(&sweep)]);
}

#[test]
fn an_interrupted_run_still_owns_its_directory() {
    let t = tempfile::tempdir().unwrap();
    // A sweep killed before its run.json: only points/ (with the manifest) is there.
    let sweep = t.path().join("sweep");
    assert!(sweep_run(&sweep, "1", &["-q"]).starts_with("0|"));
    std::fs::remove_file(sweep.join("run.json")).unwrap();
    let mut args = vec!["--out", s(&sweep)];
    args.extend(TINY_TRAIN);
    let msg = exits(2, "train", &args);
    assert!(msg.contains("`snr-sweep`"), "{msg}");
    // A single training run killed before its run.json: only its checkpoint is there.
    let run = t.path().join("run");
    let mut args = vec!["--epochs", "1", "--out", s(&run), "-q"];
    args.extend(TINY_TRAIN);
    exits(0, "train", &args);
    std::fs::remove_file(run.join("run.json")).unwrap();
    let msg = exits(2, "snr-sweep", &["--depths", "1", "--out", s(&run)]);
    assert!(msg.contains("`train single`"), "{msg}");
}

#[test]
fn snr_sweep_resume_refuses_a_train_directory() {
    let t = tempfile::tempdir().unwrap();
    let train = t.path().join("train");
    let cfg = t.path().join("acc.toml");
    std::fs::write(&cfg, TINY_ACCURACY_SWEEP).unwrap();
    exits(0, "train", &["--config", s(&cfg), "--out", s(&train), "-q"]);
    let msg = exits(
        2,
        "snr-sweep",
        &["--resume", "--depths", "1", "--out", s(&train)],
    );
    assert!(
        msg.contains("`train accuracy`") && msg.contains("`snr-sweep`"),
        "{msg}"
    );
    // Another training experiment is another owner too.
    let mut args = vec!["--out", s(&train)];
    args.extend(TINY_TRAIN);
    exits(2, "train", &args);
}

// ---- item 5: training state ----

#[test]
fn final_state_is_saved_when_checkpoint_every_does_not_divide_the_steps() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("run");
    // 64 images in batches of 16: 4 steps per epoch, 8 steps; checkpoints every 3 steps.
    let mut args = vec![
        "--epochs",
        "2",
        "--checkpoint-every",
        "3",
        "--out",
        s(&out),
        "-q",
    ];
    args.extend(TINY_TRAIN);
    exits(0, "train", &args);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checkpoint.json")).unwrap())
            .unwrap();
    assert_eq!(meta["step"], 8, "the last step is saved");
    assert!(out.join("checkpoint-step8.safetensors").is_file());
}

#[test]
fn resume_of_a_finished_run_trains_nothing_and_rewrites_the_same_files() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("run");
    let mut args = vec![
        "--epochs",
        "1",
        "--checkpoint-every",
        "3",
        "--out",
        s(&out),
        "-q",
    ];
    args.extend(TINY_TRAIN);
    exits(0, "train", &args);
    let files = ["history.csv", "result.json", "timings.csv"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect();
    args.push("--resume");
    args.retain(|a| *a != "-q");
    let msg = exits(0, "train", &args);
    assert!(msg.contains("already finished"), "{msg}");
    // The same files; result.json's top-level `seconds` is the run's wall time (up to the
    // end of its evaluation), the one field that may differ.
    let without_seconds = |b: &[u8]| {
        let mut v: serde_json::Value = serde_json::from_slice(b).unwrap();
        v.as_object_mut().unwrap().remove("seconds");
        v
    };
    for (f, b) in files.iter().zip(&before) {
        let now = std::fs::read(out.join(f)).unwrap();
        if *f == "result.json" {
            assert_eq!(without_seconds(&now), without_seconds(b), "{f} changed");
        } else {
            assert_eq!(&now, b, "{f} changed");
        }
    }
    // The dry run agrees: nothing left to train.
    args.push("--dry-run");
    let msg = exits(0, "train", &args);
    assert!(msg.contains("0 steps left"), "{msg}");
}

// ---- item 7: resume and grids ----

const SWEEP: [&str; 6] = [
    "--slopes",
    "0.5",
    "--input-size",
    "8",
    "--archs",
    "layerwise",
];

fn sweep_run(out: &Path, depths: &str, extra: &[&str]) -> String {
    let mut args: Vec<&str> = SWEEP.to_vec();
    args.extend(["--depths", depths, "--out", s(out)]);
    args.extend(extra);
    let o = run("snr-sweep", &args);
    format!("{}|{}", o.status.code().unwrap_or(-1), text(&o))
}

#[test]
fn resume_with_another_config_names_the_keys_that_differ() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("s");
    assert!(sweep_run(&out, "1,2", &["-q"]).starts_with("0|"));
    let msg = sweep_run(&out, "1,2", &["--resume", "--batch", "4"]);
    assert!(msg.starts_with("2|"), "{msg}");
    assert!(msg.contains("batch: 8 -> 4"), "{msg}");
    let msg = sweep_run(&out, "1", &["--resume"]);
    assert!(msg.contains("depths: [1,2] -> [1]"), "{msg}");
}

#[test]
fn resume_extends_a_superset_grid_computing_only_the_new_points() {
    let t = tempfile::tempdir().unwrap();
    let (grown, fresh) = (t.path().join("grown"), t.path().join("fresh"));
    assert!(sweep_run(&grown, "1,4", &["-q"]).starts_with("0|"));
    let msg = sweep_run(&grown, "1,2,4", &["--resume"]);
    assert!(msg.starts_with("0|"), "{msg}");
    assert!(msg.contains("1 computed, 2 resumed"), "{msg}");
    assert!(sweep_run(&fresh, "1,2,4", &["-q"]).starts_with("0|"));
    for f in ["snr_sweep.csv", "summary.csv"] {
        assert_eq!(
            std::fs::read(grown.join(f)).unwrap(),
            std::fs::read(fresh.join(f)).unwrap(),
            "{f}: an extended sweep writes what a fresh one does"
        );
    }
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d.join("points"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&grown),
        names(&fresh),
        "point files under the new grid"
    );
}

#[test]
fn repeated_grid_values_are_rejected() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("s");
    let msg = sweep_run(&out, "2,2", &[]);
    assert!(
        msg.starts_with("2|") && msg.contains("more than once"),
        "{msg}"
    );
    assert!(!out.exists());
    let cfg = t.path().join("acc.toml");
    std::fs::write(
        &cfg,
        TINY_ACCURACY_SWEEP.replace("seeds = [0]", "seeds = [0, 0]"),
    )
    .unwrap();
    let msg = exits(2, "train", &["--config", s(&cfg), "--out", s(&out)]);
    assert!(msg.contains("seeds"), "{msg}");
}

#[test]
fn truncated_point_file_error_says_what_to_do() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("s");
    assert!(sweep_run(&out, "1,2", &["-q"]).starts_with("0|"));
    let point = std::fs::read_dir(out.join("points"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.ends_with("manifest.json"))
        .unwrap();
    let bytes = std::fs::read(&point).unwrap();
    std::fs::write(&point, &bytes[..bytes.len() / 2]).unwrap();
    let msg = sweep_run(&out, "1,2", &["--resume"]);
    assert!(msg.starts_with("2|"), "{msg}");
    assert!(
        msg.contains("delete it and rerun with --resume"),
        "advice: {msg}"
    );
}

// ---- item 8: bad input that escaped ----

#[test]
fn threads_beyond_the_machine_are_refused_up_front() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    for bin in ["snr-sweep", "train", "memory", "bench", "figures"] {
        let start = Instant::now();
        let msg = exits(2, bin, &["--threads", "100000", "--out", s(&out)]);
        assert!(msg.contains("--threads"), "{bin}: {msg}");
        assert!(start.elapsed() < Duration::from_secs(5), "{bin}");
        assert!(!out.exists(), "{bin} left {}", out.display());
    }
}

#[test]
fn figures_bad_experiment_config_or_results_file_exits_2() {
    let t = tempfile::tempdir().unwrap();
    let exp = t.path().join("experiments");
    std::fs::create_dir(&exp).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/fig06.toml");
    let mut bad = std::fs::read_to_string(shipped).unwrap();
    bad.push_str("\nnot_a_key = [\n");
    std::fs::write(exp.join("fig06.toml"), bad).unwrap();
    let out = t.path().join("figs");
    let cache = t.path().join("cache");
    exits(
        2,
        "figures",
        &[
            "--only",
            "fig06",
            "--experiments",
            s(&exp),
            "--out",
            s(&out),
            "--results",
            s(&cache),
        ],
    );
    assert!(!out.exists() && !cache.exists());
    let file = t.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let msg = exits(2, "figures", &["--only", "fig06", "--results", s(&file)]);
    assert!(msg.contains("expected a directory"), "{msg}");
}

#[test]
fn a_run_failing_after_validation_leaves_no_empty_out() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    // Diverges at once (exit 1).
    let mut args = vec!["--lr", "1e300", "--out", s(&out), "-q"];
    args.extend(TINY_TRAIN);
    exits(1, "train", &args);
    assert!(!out.exists(), "a diverged run leaves {}", out.display());
    // A data error found on loading (exit 2).
    exits(
        2,
        "train",
        &["--data", "fashion-mnist:/nonexistent", "--out", s(&out)],
    );
    assert!(!out.exists());
    exits(
        2,
        "train",
        &["merge", "--out", s(&out), s(&t.path().join("missing"))],
    );
    assert!(!out.exists());
}

// ---- item 9: one CLI ----

#[test]
fn every_tool_accepts_silent_and_states_exit_codes_in_help() {
    for bin in ["snr-sweep", "train", "memory", "bench", "figures", "report"] {
        let help = exits(0, bin, &["--help"]);
        assert!(help.contains("Exit codes: 0"), "{bin} --help");
        if bin != "report" {
            assert!(help.contains("--quiet"), "{bin}");
            let o = run(bin, &["--silent", "--help"]);
            assert_eq!(o.status.code(), Some(0), "{bin} --silent: {}", text(&o));
        }
        if bin != "report" {
            // The --threads entry: its lines up to the next option.
            let lines: Vec<&str> = help.lines().collect();
            let at = lines
                .iter()
                .position(|l| l.trim_start().starts_with("--threads"))
                .unwrap_or_else(|| panic!("{bin} has --threads"));
            let entry: String = lines[at..]
                .iter()
                .take_while(|l| *l == &lines[at] || !l.trim_start().starts_with('-'))
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            assert_eq!(
                entry.matches("[default: 0]").count(),
                1,
                "{bin}: --threads defaults to 0, stated once:\n{entry}"
            );
        }
    }
}

#[test]
fn both_spellings_of_seed_arch_and_dtype_are_accepted() {
    for (bin, flags) in [
        (
            "snr-sweep",
            vec![
                "--seed", "--seeds", "--arch", "--archs", "--dtype", "--dtypes",
            ],
        ),
        (
            "train",
            vec![
                "--seed", "--seeds", "--arch", "--archs", "--dtype", "--dtypes",
            ],
        ),
        (
            "bench",
            vec![
                "--seed", "--seeds", "--arch", "--archs", "--dtype", "--dtypes",
            ],
        ),
        ("memory", vec!["--seed", "--seeds", "--dtype", "--dtypes"]),
    ] {
        for flag in flags {
            let value = match flag {
                "--seed" | "--seeds" => "1",
                "--arch" | "--archs" => "hybrid",
                _ => "f32",
            };
            let o = run(bin, &[flag, value, "--dry-run", "--help"]);
            assert_eq!(o.status.code(), Some(0), "{bin} {flag}: {}", text(&o));
        }
    }
}

#[test]
fn bench_takes_a_config_file_and_train_takes_input_size() {
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("bench.toml");
    std::fs::write(
        &cfg,
        "archs = [\"hybrid\"]\ndepths = [1]\nwidth = 4\ninput_size = 8\nbatch = 4\npools = \"none\"\nsteps = 1\nwarmup = 0\nquiet = true\n",
    )
    .unwrap();
    let out = t.path().join("bench");
    exits(
        0,
        "bench",
        &["--config", s(&cfg), "--depths", "2", "--out", s(&out), "-q"],
    );
    let csv = std::fs::read_to_string(out.join("bench.csv")).unwrap();
    assert!(
        csv.lines().skip(1).all(|l| l.starts_with("hybrid,none,")),
        "{csv}"
    );
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.split(',').nth(3) == Some("2")),
        "the flag wins over the file: {csv}"
    );
    std::fs::write(&cfg, "not_a_flag = 1\n").unwrap();
    let msg = exits(2, "bench", &["--config", s(&cfg), "--out", s(&out)]);
    assert!(msg.contains("unknown key `not_a_flag`"), "{msg}");

    let run_dir = t.path().join("run");
    exits(
        0,
        "train",
        &[
            "--data",
            "synthetic:train=32,test=16",
            "--input-size",
            "8",
            "--batch",
            "16",
            "--epochs",
            "1",
            "--width",
            "4",
            "--depth",
            "1",
            "--out",
            s(&run_dir),
            "-q",
        ],
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["data"]["image"][1], 8, "{}", run["data"]);
    let msg = exits(
        2,
        "train",
        &["--data", "fashion-mnist", "--input-size", "20", "--dry-run"],
    );
    assert!(msg.contains("32, 28, 16 or 14"), "{msg}");
}

// ---- item 11: smaller things ----

#[test]
fn messages_count_one_in_the_singular_and_one_seed_shows_no_spread() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("run");
    let mut args = vec!["--epochs", "1", "--out", s(&out)];
    args.extend(TINY_TRAIN);
    let msg = exits(0, "train", &args);
    assert!(msg.contains("after 1 epoch ("), "{msg}");
    args.push("--dry-run");
    let msg = exits(0, "train", &args);
    assert!(msg.contains("1 training run would"), "{msg}");
    assert!(
        !msg.contains("1 epochs") && !msg.contains("1 training runs"),
        "{msg}"
    );
    let cfg = t.path().join("acc.toml");
    std::fs::write(&cfg, TINY_ACCURACY_SWEEP).unwrap();
    let msg = exits(
        0,
        "train",
        &["--config", s(&cfg), "--out", s(&t.path().join("acc"))],
    );
    assert!(msg.contains("one seed (no spread)"), "{msg}");
    assert!(!msg.contains("± 0.0"), "{msg}");
}

#[test]
fn input_size_message_names_the_multiple_the_poolings_need() {
    let msg = exits(
        2,
        "snr-sweep",
        &["--input-size", "12", "--depths", "1", "--dry-run"],
    );
    assert!(msg.contains("a positive multiple of 8"), "{msg}");
    assert!(!msg.contains("expected even"), "{msg}");
}

#[test]
fn run_json_names_each_data_file_with_its_checksum() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("fm");
    std::fs::create_dir(&data).unwrap();
    // Four tiny IDX files: 8 training and 4 test images of 28x28.
    let images = |n: u32| {
        let mut b = Vec::new();
        for v in [2051u32, n, 28, 28] {
            b.extend(v.to_be_bytes());
        }
        b.extend((0..n as usize * 784).map(|i| (i % 251) as u8));
        b
    };
    let labels = |n: u32| {
        let mut b = Vec::new();
        b.extend(2049u32.to_be_bytes());
        b.extend(n.to_be_bytes());
        b.extend((0..n).map(|i| (i % 10) as u8));
        b
    };
    for (name, bytes) in [
        ("train-images-idx3-ubyte", images(8)),
        ("train-labels-idx1-ubyte", labels(8)),
        ("t10k-images-idx3-ubyte", images(4)),
        ("t10k-labels-idx1-ubyte", labels(4)),
    ] {
        std::fs::write(data.join(name), bytes).unwrap();
    }
    let out = t.path().join("run");
    let spec = format!("fashion-mnist:{},fit=pool2-pad16", data.display());
    exits(
        0,
        "train",
        &[
            "--data",
            &spec,
            "--batch",
            "4",
            "--epochs",
            "1",
            "--width",
            "4",
            "--depth",
            "1",
            "--out",
            s(&out),
            "-q",
        ],
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let files = run["data"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 4, "{}", run["data"]);
    let first = &files[0];
    let bytes = std::fs::read(data.join("train-images-idx3-ubyte")).unwrap();
    assert_eq!(first["bytes"], bytes.len());
    assert_eq!(
        first["fnv1a64"],
        format!("{:016x}", revstab::results::hash::fnv1a64(&bytes))
    );
}

#[test]
fn accuracy_resume_extends_a_superset_grid_training_only_the_new_runs() {
    let t = tempfile::tempdir().unwrap();
    let small = t.path().join("small.toml");
    let large = t.path().join("large.toml");
    std::fs::write(&small, TINY_ACCURACY_SWEEP).unwrap();
    let grown_cfg = TINY_ACCURACY_SWEEP
        .replace("depths = [2]", "depths = [1, 2]")
        .replace("slopes = []", "slopes = [1.0]");
    assert_ne!(grown_cfg, TINY_ACCURACY_SWEEP);
    std::fs::write(&large, grown_cfg).unwrap();
    let (grown, fresh) = (t.path().join("grown"), t.path().join("fresh"));
    exits(
        0,
        "train",
        &["--config", s(&small), "--out", s(&grown), "-q"],
    );
    // The dry run of the extension lists the finished runs as kept.
    let msg = exits(
        0,
        "train",
        &[
            "--config",
            s(&large),
            "--out",
            s(&grown),
            "--resume",
            "--dry-run",
        ],
    );
    assert!(msg.contains("2 training runs already finished"), "{msg}");
    exits(
        0,
        "train",
        &["--config", s(&large), "--out", s(&grown), "--resume", "-q"],
    );
    exits(
        0,
        "train",
        &["--config", s(&large), "--out", s(&fresh), "-q"],
    );
    assert_eq!(
        std::fs::read(grown.join("accuracy.csv")).unwrap(),
        std::fs::read(fresh.join("accuracy.csv")).unwrap(),
        "an extended sweep writes what a fresh one does"
    );
    // Taking a value away is not an extension: the keys are named.
    let msg = exits(
        2,
        "train",
        &["--config", s(&small), "--out", s(&grown), "--resume"],
    );
    assert!(msg.contains("depth_sweep.depths"), "{msg}");
}

#[test]
fn a_new_first_slope_keeps_the_points_of_architectures_without_a_slope() {
    let t = tempfile::tempdir().unwrap();
    let (grown, fresh) = (t.path().join("grown"), t.path().join("fresh"));
    let base = [
        "--archs",
        "layerwise,revnet",
        "--depths",
        "1",
        "--input-size",
        "8",
    ];
    let go = |out: &Path, slopes: &str, extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(["--slopes", slopes, "--out", s(out)]);
        args.extend(extra);
        exits(0, "snr-sweep", &args)
    };
    go(&grown, "0.5", &["-q"]);
    let msg = go(&grown, "0.2,0.5", &["--resume"]);
    assert!(msg.contains("1 computed, 2 resumed"), "{msg}");
    go(&fresh, "0.2,0.5", &["-q"]);
    assert_eq!(
        std::fs::read(grown.join("snr_sweep.csv")).unwrap(),
        std::fs::read(fresh.join("snr_sweep.csv")).unwrap()
    );
}
