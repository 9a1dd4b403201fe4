//! Issue 19 item 8 (the parts of `train`): progress without a terminal before the first epoch
//! ends, and `history.csv` counting epochs from 1 like the console.

use std::process::Command;

#[test]
fn train_without_a_terminal_reports_progress_before_the_first_epoch_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // 320 images, batch 16: 20 steps per epoch, a line every 2 steps.
    let o = Command::new(env!("CARGO_BIN_EXE_train"))
        .args([
            "--depth",
            "2",
            "--width",
            "4",
            "--epochs",
            "2",
            "--batch",
            "16",
            "--data",
            "synthetic:train=320,test=32,size=8",
            "--out",
        ])
        .arg(&out)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let first_step = err.find("epoch 1/2: step 2/20").expect(&err);
    let first_epoch = err.find("epoch 1/2: train loss").expect(&err);
    assert!(first_step < first_epoch, "{err}");
    let lines = err.lines().filter(|l| l.contains(": step ")).count();
    assert_eq!(lines, 2 * 9, "{err}");
    // history.csv: epochs 1 and 2, as the console printed them.
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let epochs: Vec<&str> = history
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(epochs, ["1", "2"], "{history}");
    assert!(err.contains("epoch 2/2: train loss"), "{err}");
}

/// Issue 19: `history.csv` has no wall-time column (those go to `timings.csv`), so two runs of
/// the same seed and config write the same bytes.
#[test]
fn history_csv_of_a_rerun_is_byte_identical_and_timings_are_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in ["a", "b"] {
        let out = tmp.path().join(name);
        let o = Command::new(env!("CARGO_BIN_EXE_train"))
            .args([
                "--depth",
                "2",
                "--width",
                "4",
                "--epochs",
                "2",
                "--batch",
                "16",
                "--data",
                "synthetic:train=64,test=32,size=8",
                "--quiet",
                "--out",
            ])
            .arg(&out)
            .env("RAYON_NUM_THREADS", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        files.push((
            std::fs::read(out.join("history.csv")).unwrap(),
            std::fs::read_to_string(out.join("timings.csv")).unwrap(),
        ));
    }
    assert_eq!(files[0].0, files[1].0, "history.csv differs between reruns");
    let history = String::from_utf8(files[0].0.clone()).unwrap();
    assert_eq!(
        history.lines().next().unwrap(),
        "epoch,train_loss,train_acc,lr"
    );
    let timings = &files[0].1;
    let mut lines = timings.lines();
    assert_eq!(lines.next().unwrap(), "epoch,seconds");
    let rows: Vec<(String, f64)> = lines
        .map(|l| {
            let (e, s) = l.split_once(',').unwrap();
            (e.to_string(), s.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 2, "{timings}");
    assert_eq!((rows[0].0.as_str(), rows[1].0.as_str()), ("1", "2"));
    assert!(rows[0].1 > 0.0 && rows[1].1 >= rows[0].1, "{timings}");
}
