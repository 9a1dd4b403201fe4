//! `report DIR` prints a results directory's summary table from its files, without
//! recomputing; the bench and sweep tables come from their typed results.

use std::process::Command;

fn report(dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_report"))
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn report_prints_the_sweeps_own_table_without_recomputing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let o = Command::new(env!("CARGO_BIN_EXE_snr-sweep"))
        .args([
            "--depths",
            "1,2",
            "--slopes",
            "0.2,0.5",
            "--no-figure",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    let csv_before = std::fs::read(out.join("summary.csv")).unwrap();
    let r = report(&out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = String::from_utf8_lossy(&r.stdout);
    // The table the sweep printed, line for line (the sweep's last line is its timing).
    let table: Vec<&str> = printed
        .lines()
        .filter(|l| !l.contains(" points ("))
        .collect();
    assert!(!table.is_empty());
    assert!(text.contains(&table.join("\n")), "{text}\nvs\n{printed}");
    assert!(
        text.contains("snr-sweep") && text.contains("command:"),
        "{text}"
    );
    assert_eq!(std::fs::read(out.join("summary.csv")).unwrap(), csv_before);
    let results = revstab::experiments::snr_sweep::SweepResults::read(&out).unwrap();
    assert_eq!(results.points.len(), 2 * 2 * 2);
    assert!(text.contains(&results.summary_table()), "{text}");
}

#[test]
fn report_prints_the_benchs_tables_from_its_typed_results() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bench");
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "--workload",
            "stack",
            "--arch",
            "revnet,resnet",
            "--depths",
            "1,2",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--width",
            "4",
            "--batch",
            "2",
            "--input-size",
            "4",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    let results = revstab::experiments::bench::BenchResults::read(&out).unwrap();
    let runs = results.runs().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(results.rows.len(), 2 * 3 + 2);
    let r = report(&out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains("bench") && text.contains("command:"),
        "{text}"
    );
    assert!(text.contains(&results.table().unwrap()), "{text}");
    // Each config's description and table as the run printed them.
    for (cfg, rows) in runs {
        let table = revstab::experiments::bench::format_table(rows);
        assert!(printed.contains(&table), "{printed}\nvs\n{table}");
        assert!(
            text.contains(&table) && text.contains(&cfg.describe()),
            "{text}"
        );
    }
    assert!(
        text.contains("note: resnet stores every activation"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("bench.csv")).unwrap(),
        results.csv().unwrap()
    );
}

#[test]
fn report_prints_a_training_runs_history_and_rejects_a_non_results_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_train"))
        .args([
            "--depth",
            "2",
            "--width",
            "4",
            "--epochs",
            "2",
            "--data",
            "synthetic:train=64,test=32,size=8",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report(&out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("history.csv"), "{text}");
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("epoch"))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[1].starts_with("1 ") && rows[2].starts_with("2 "),
        "{text}"
    );
    let bad = report(tmp.path());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(err.contains("not a results directory"), "{err}");
}

/// A bench directory of an older version, whose `run.json` rows lack fields `BenchResults`
/// now holds, is still reported from its `bench.csv` (with a note), not refused.
#[test]
fn report_shows_an_older_bench_directory_from_its_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("run.json"),
        r#"{"experiment": "bench", "config": {"depths": [4]}, "rows": [{"mode": "stored", "depth": 4, "median_s": 0.5}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("bench.csv"),
        "arch,mode,depth,median_s\nhybrid,stored,4,0.5\n",
    )
    .unwrap();
    let o = report(dir);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("bench.csv") && stdout.contains("hybrid"),
        "{stdout}"
    );
    assert!(stderr.contains("showing bench.csv"), "{stderr}");
    // Without its bench.csv the same directory is an error (exit 2), not an empty table.
    std::fs::remove_file(dir.join("bench.csv")).unwrap();
    let o = report(dir);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Run tool `bin` with `args`, then `--out DIR`; panics unless it succeeds. Its stdout.
fn run_tool(bin: &str, args: &[&str], dir: &std::path::Path) -> String {
    let o = Command::new(crate::common::exe(bin))
        .args(args)
        .arg("--out")
        .arg(dir)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The report of `dir`, which must succeed: its stdout.
fn report_ok(dir: &std::path::Path) -> String {
    let r = report(dir);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8_lossy(&r.stdout).into_owned()
}

/// A single training run of one epoch (layer-wise, depth 2, 64 synthetic 8x8 images).
const TINY_RUN: [&str; 9] = [
    "--depth",
    "2",
    "--width",
    "4",
    "--epochs",
    "1",
    "--data",
    "synthetic:train=64,test=32,size=8",
    "--quiet",
];

/// A memory run of seconds: layer-wise and ResNet networks of depth 2, width 4, 4x4 images,
/// a batch sweep of two points.
const TINY_MEMORY: &str = r#"
archs = ["layerwise", "resnet"]
width = 4
depth = 2
batch = 2
input_size = 4
depths = []
batches = [2, 4]
sizes = []
"#;

/// `report` on a training run showed its history but not the number a reader
/// wants, the test accuracy (in `result.json`).
#[test]
fn report_prints_training_test_accuracy() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    run_tool("train", &TINY_RUN, &out);
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let acc = result["test_acc"].as_f64().unwrap();
    let text = report_ok(&out);
    assert_eq!(result["epochs"], 1);
    assert_eq!(result["steps"], 1, "64 images, the default batch of 64");
    let want = format!("test accuracy {:.2}% after 1 epoch (1 step)", 100.0 * acc);
    assert!(text.contains(&want), "{want}\nnot in\n{text}");
    assert!(
        text.contains("layerwise depth 2 slope 0.2, trained stored"),
        "{text}"
    );
    // The history still follows, after the accuracy.
    assert!(
        text.find(&want).unwrap() < text.find("history.csv").unwrap(),
        "{text}"
    );
}

/// `report` on a memory run printed `summary.csv` as raw CSV rows; it prints
/// the table `memory` printed, from the run's typed results.
#[test]
fn report_prints_memory_table_not_raw_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("memory.toml");
    std::fs::write(&cfg, TINY_MEMORY).unwrap();
    let out = tmp.path().join("memory");
    let printed = run_tool(
        "memory",
        &["--config", cfg.to_str().unwrap(), "--quiet"],
        &out,
    );
    let table = printed.split("\nwrote ").next().unwrap().trim_end();
    assert!(table.contains("| architecture | mode |"), "{printed}");
    let text = report_ok(&out);
    assert!(text.contains(table), "{table}\nnot in\n{text}");
    let typed = revstab::experiments::memory::MemorySummary::read(&out).unwrap();
    assert_eq!(typed.summary.len(), 2 * 2);
    assert!(text.contains(&typed.markdown()), "{text}");
    let csv_header = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let csv_header = csv_header.lines().next().unwrap();
    assert!(!text.contains(csv_header), "raw CSV in\n{text}");
    assert!(!text.contains("arch,mode"), "raw CSV in\n{text}");
}

/// `report` on the accuracy sweep printed `accuracy.csv` as it is; it prints
/// the table `train` printed (stored vs reconstructed, mean ± std over seeds), from the sweep's
/// point files.
#[test]
fn report_prints_accuracy_table() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("accuracy.toml");
    std::fs::write(&cfg, crate::common::TINY_ACCURACY_SWEEP).unwrap();
    let out = tmp.path().join("accuracy");
    let printed = run_tool(
        "train",
        &["--config", cfg.to_str().unwrap(), "--quiet"],
        &out,
    );
    // The table, without the run count and time after it.
    let table = printed.split("\n2 runs in ").next().unwrap();
    assert!(table.contains("stored - recon"), "{printed}");
    let text = report_ok(&out);
    assert!(text.contains(table), "{table}\nnot in\n{text}");
    assert!(!text.contains("arch,depth,slope"), "raw CSV in\n{text}");
    assert!(!text.contains("runs finished"), "{text}");
}

/// The same for the angle experiment: its table (angles at the first and last
/// probe), not `summary.csv`'s rows.
#[test]
fn report_prints_angle_experiment_table() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("angles.toml");
    std::fs::write(&cfg, crate::common::TINY_ANGLES).unwrap();
    let out = tmp.path().join("angles");
    let printed = run_tool(
        "train",
        &["--config", cfg.to_str().unwrap(), "--quiet"],
        &out,
    );
    let table = printed.split("\n1 runs in ").next().unwrap();
    assert!(table.contains("angle0 deg"), "{printed}");
    let text = report_ok(&out);
    assert!(text.contains(table), "{table}\nnot in\n{text}");
    assert!(!text.contains("arch,depth,slope"), "raw CSV in\n{text}");
}

/// A directory with a tool's `run.json` but not its results (only `run.json`,
/// or `run.json` and files that are not the results) is bad input (exit 2) naming the files the
/// tool writes, not an empty report with exit 0.
#[test]
fn report_names_missing_files_for_run_json_only() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("run");
    run_tool("train", &TINY_RUN, &train);
    let cfg = tmp.path().join("memory.toml");
    std::fs::write(&cfg, TINY_MEMORY).unwrap();
    let memory = tmp.path().join("memory");
    run_tool(
        "memory",
        &["--config", cfg.to_str().unwrap(), "--quiet"],
        &memory,
    );
    let sweep = tmp.path().join("sweep");
    run_tool(
        "snr-sweep",
        &["--depths", "1", "--slopes", "0.5", "--no-figure"],
        &sweep,
    );
    // Keep run.json and, for the training run, its timings.csv (not a result).
    for (dir, keep) in [
        (&train, &["run.json", "timings.csv"][..]),
        (&memory, &["run.json"][..]),
        (&sweep, &["run.json"][..]),
    ] {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if keep.contains(&name.as_str()) {
                continue;
            }
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    for (dir, expected) in [
        (&train, &["result.json", "history.csv"][..]),
        (
            &memory,
            &["summary.csv", "measured.csv", "scaling.csv", "table1.csv"][..],
        ),
        (&sweep, &["points/", "snr_sweep.csv", "summary.csv"][..]),
    ] {
        let r = report(dir);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{}: {err}", dir.display());
        assert!(
            r.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&r.stdout)
        );
        for f in expected {
            assert!(err.contains(f), "{f} not named in: {err}");
        }
    }
}
