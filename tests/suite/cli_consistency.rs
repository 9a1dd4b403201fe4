//! The binaries agree with each other: each `--help` names its own tool and
//! leaks no rustdoc link syntax; `-q/--quiet`, `--threads 0` (all cores), `--device`, `--width`
//! and `--input-size` are spelled the same everywhere; configs are TOML (memory still reads
//! its older JSON); a resume with a different config is bad input (exit 2).

use crate::common::{exe, TOOLS};
use std::path::Path;
use std::process::{Command, Output};

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().expect("run binary")
}

fn help(bin: &str) -> String {
    let o = run(bin, &["--help"]);
    assert!(o.status.success(), "{bin} --help failed");
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn every_binary_help_names_its_own_tool_and_leaks_no_rustdoc_links() {
    let crate_description = env!("CARGO_PKG_DESCRIPTION");
    for name in TOOLS {
        let text = help(exe(name));
        assert!(
            text.contains(&format!("Usage: {name}")),
            "{name} --help does not name its tool:\n{text}"
        );
        assert!(
            !text.contains(crate_description),
            "{name} --help prints the crate's description instead of its own"
        );
        // The first line is the tool's own description.
        let first = text.lines().next().unwrap_or("");
        assert!(!first.trim().is_empty(), "{name}: empty description");
        for leak in ["[`", "`]", "](crate::", "::PerLayer"] {
            assert!(
                !text.contains(leak),
                "{name} --help leaks `{leak}`:\n{text}"
            );
        }
    }
}

#[test]
fn quiet_threads_and_device_are_spelled_the_same_everywhere() {
    for name in TOOLS {
        let text = help(exe(name));
        assert!(text.contains("-q, --quiet"), "{name}: no -q/--quiet");
        assert!(text.contains("--device"), "{name}: no --device");
        let threads = text
            .lines()
            .skip_while(|l| !l.contains("--threads"))
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            threads.contains("0 = all cores"),
            "{name}: --threads 0 is not all cores: {threads}"
        );
    }
    for (name, flags) in [
        (
            "snr-sweep",
            &["--widths", "--input-size", "--pools", "--stem", "--fg"][..],
        ),
        (
            "train",
            &["--width", "--pools", "--stem", "--fg", "--init-scale"][..],
        ),
        ("memory", &["--width", "--input-size"][..]),
        (
            "bench",
            &[
                "--width",
                "--input-size",
                "--pools",
                "--stem",
                "--init-scale",
            ][..],
        ),
    ] {
        let text = help(exe(name));
        for f in flags {
            assert!(text.contains(f), "{name}: no {f}");
        }
    }
    // The old spelling of memory's quiet flag still works.
    let tmp = tempfile::tempdir().unwrap();
    let o = run(
        env!("CARGO_BIN_EXE_memory"),
        &[
            "--quick",
            "--silent",
            "--out",
            tmp.path().join("m").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn threads_zero_runs_on_all_cores_in_memory_and_bench() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mem");
    let o = run(
        env!("CARGO_BIN_EXE_memory"),
        &[
            "--quick",
            "--threads",
            "0",
            "-q",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("summary.csv").exists());
    let out = tmp.path().join("bench");
    let o = run(
        env!("CARGO_BIN_EXE_bench"),
        &[
            "--workload",
            "stack",
            "--depths",
            "1",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--width",
            "4",
            "--input-size",
            "8",
            "--batch",
            "2",
            "--threads",
            "0",
            "-q",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(run_json["configs"][0]["threads"], cores, "{run_json}");
}

fn write(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap();
}

#[test]
fn memory_reads_toml_configs_and_its_older_json() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = revstab::experiments::memory::MemoryConfig::quick();
    let toml_path = tmp.path().join("quick.toml");
    write(&toml_path, &toml::to_string(&cfg).unwrap());
    let json_path = tmp.path().join("quick.json");
    write(&json_path, &serde_json::to_string(&cfg).unwrap());
    let mut outputs = Vec::new();
    for path in [&toml_path, &json_path] {
        let out = tmp.path().join(path.file_stem().unwrap()).join("out");
        let o = run(
            env!("CARGO_BIN_EXE_memory"),
            &[
                "--config",
                path.to_str().unwrap(),
                "-q",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert!(
            o.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let run: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
        outputs.push(run["config"].clone());
    }
    assert_eq!(outputs[0], outputs[1], "the TOML and JSON configs differ");
    // A TOML typo is bad input with the file named.
    let bad = tmp.path().join("bad.toml");
    write(&bad, "quick = true\nwidht = 8\n");
    let o = run(
        env!("CARGO_BIN_EXE_memory"),
        &[
            "--config",
            bad.to_str().unwrap(),
            "--out",
            tmp.path().join("x").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.toml"));
    // The committed paper config is TOML.
    let paper = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/memory-paper.toml");
    let file: revstab::experiments::memory::MemoryConfig =
        toml::from_str(&std::fs::read_to_string(paper).unwrap()).unwrap();
    file.validate().unwrap();
}

#[test]
fn resume_with_a_different_config_exits_2_in_every_tool() {
    let tmp = tempfile::tempdir().unwrap();
    // snr-sweep
    let out = tmp.path().join("sweep");
    let base = [
        "--archs",
        "layerwise",
        "--depths",
        "1",
        "--slopes",
        "0.2",
        "-q",
        "--no-figure",
        "--out",
    ];
    let mut args: Vec<&str> = base.to_vec();
    args.push(out.to_str().unwrap());
    let o = run(env!("CARGO_BIN_EXE_snr-sweep"), &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    args.extend(["--resume", "--widths", "4"]);
    let o = run(env!("CARGO_BIN_EXE_snr-sweep"), &args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "snr-sweep: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("different config"));
    // train (a single run)
    let out = tmp.path().join("train");
    let base = [
        "--depth",
        "1",
        "--epochs",
        "1",
        "--batch",
        "16",
        "--data",
        "synthetic:train=32,test=16,size=8",
        "-q",
        "--out",
    ];
    let mut args: Vec<&str> = base.to_vec();
    args.push(out.to_str().unwrap());
    let o = run(env!("CARGO_BIN_EXE_train"), &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    args.extend(["--resume", "--lr", "0.05"]);
    let o = run(env!("CARGO_BIN_EXE_train"), &args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "train: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
