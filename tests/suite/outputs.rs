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
