//! Issue 19: `report DIR` prints a results directory's summary table from its files, without
//! recomputing; issue 15: the bench and sweep tables come from their typed results.

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
