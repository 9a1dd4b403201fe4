//! The lock on `--out`, one exit-code convention, build-time provenance,
//! and a resume that keeps the original `run.json`. Each test is named after the problem it pins.

use crate::common::{exe, TOOLS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every binary, with arguments that make it a small run writing into `out`.
fn small_run(bin: &str, out: &str) -> Vec<String> {
    let args: &[&str] = match bin {
        "snr-sweep" => &["--depths", "1", "--slopes", "0.5", "--quiet", "--no-figure"],
        "train" => &[
            "--depth",
            "2",
            "--width",
            "4",
            "--epochs",
            "1",
            "--data",
            "synthetic:train=64,test=32,size=8",
            "--quiet",
        ],
        "memory" => &["--quick", "--silent"],
        "bench" => &["--steps", "1", "--warmup", "0"],
        "figures" => &["--only", "table1"],
        other => panic!("unknown binary {other}"),
    };
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.extend(["--out".to_string(), out.to_string()]);
    v
}

fn run_bin(bin: &str, args: &[String], dir: Option<&Path>) -> Output {
    let mut c = Command::new(exe(bin));
    c.args(args).env("RAYON_NUM_THREADS", "1");
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c.output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file under `dir` (relative path -> bytes).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(dir, dir, &mut m);
    m
}

#[test]
fn second_writer_into_a_locked_out_dir_exits_2_and_leaves_the_first_runs_files_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    for bin in TOOLS {
        let out = tmp.path().join(format!("{bin}-out"));
        std::fs::create_dir_all(out.join("points")).unwrap();
        std::fs::write(out.join("run.json"), b"{\"first\": true}").unwrap();
        std::fs::write(out.join("points").join("manifest.json"), b"first run").unwrap();
        let before = snapshot(&out);
        // The first writer: this test holds the directory's lock, as a running tool does.
        let held = std::fs::File::open(&out).unwrap();
        held.try_lock().expect("the test takes the lock first");
        let o = run_bin(bin, &small_run(bin, out.to_str().unwrap()), None);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{bin}: {err}");
        assert!(
            err.contains("is in use") && err.contains("another revstab run holds its lock"),
            "{bin}: {err}"
        );
        assert!(err.contains(out.to_str().unwrap()), "{bin}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{bin}: {err}");
        assert_eq!(
            snapshot(&out),
            before,
            "{bin} touched the first run's files"
        );
        drop(held);
    }
}

#[test]
fn a_released_lock_lets_the_next_run_write() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    {
        let l = revstab::lock::lock_out(&out, "snr-sweep").unwrap();
        assert_eq!(l.dir(), out.as_path());
        // A second lock from this process (another open file) is refused while held.
        let e = revstab::lock::lock_out(&out, "snr-sweep").unwrap_err();
        assert!(matches!(e, revstab::Error::Locked { .. }), "{e}");
        assert!(e.is_bad_input());
    }
    let o = run_bin(
        "snr-sweep",
        &small_run("snr-sweep", out.to_str().unwrap()),
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("run.json").exists());
}

#[test]
fn exit_codes_are_one_convention_decided_in_one_place() {
    use revstab::error::{
        bad_input, exit_code_of, exit_code_or, failed, one_line, EXIT_BAD_INPUT, EXIT_FAILURE,
        EXIT_OK,
    };
    use revstab::Error;
    assert_eq!((EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT), (0, 1, 2));
    let config = || anyhow::Error::from(Error::config("depths", "at least one value", "none"));
    let diverged = || {
        anyhow::Error::from(Error::Diverged {
            step: 3,
            diagnosis: "loss nan".into(),
            layer: None,
        })
    };
    assert_eq!(exit_code_of(&config()), EXIT_BAD_INPUT);
    assert_eq!(exit_code_of(&diverged()), EXIT_FAILURE);
    assert_eq!(exit_code_of(&anyhow::anyhow!("plain")), EXIT_FAILURE);
    assert_eq!(
        exit_code_or(&anyhow::anyhow!("plain"), EXIT_BAD_INPUT),
        EXIT_BAD_INPUT
    );
    // Markers win over the kind of the error they wrap (the outermost decides).
    assert_eq!(exit_code_of(&failed(config())), EXIT_FAILURE);
    assert_eq!(exit_code_of(&bad_input(diverged())), EXIT_BAD_INPUT);
    assert_eq!(
        exit_code_of(&failed(config()).context("while writing")),
        EXIT_FAILURE
    );
    assert_eq!(
        exit_code_or(&config().context("reading"), EXIT_FAILURE),
        EXIT_BAD_INPUT
    );
    // No doubled prefix, no doubled OS error.
    assert_eq!(
        one_line(&config().context("invalid configuration")),
        "invalid configuration: depths: expected at least one value, got none"
    );
    let io = anyhow::Error::from(Error::io(
        "/nonexistent/c.toml",
        std::io::Error::from(std::io::ErrorKind::NotFound),
    ));
    let line = one_line(&io.context("cannot read config"));
    assert_eq!(line.matches("not found").count(), 1, "{line}");
}

#[test]
fn every_binary_exits_0_on_help_and_2_on_bad_input_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    for bin in TOOLS {
        let help = run_bin(bin, &["--help".to_string()], None);
        assert_eq!(help.status.code(), Some(0), "{bin} --help");
        let out = tmp.path().join(format!("{bin}-bad"));
        let bad: Vec<String> = match bin {
            "snr-sweep" => vec!["--depths".into(), "0".into()],
            "train" => vec!["--arch".into(), "lenet".into()],
            "memory" => vec!["--seed".into(), "x".into()],
            "bench" => vec!["--steps".into(), "x".into()],
            "figures" => vec!["--only".into(), "fig99".into()],
            _ => unreachable!(),
        };
        let mut args = bad.clone();
        args.extend(["--out".to_string(), out.to_str().unwrap().to_string()]);
        let o = run_bin(bin, &args, None);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{bin} {bad:?}: {err}");
        assert!(!err.contains("panicked"), "{bin}: {err}");
        assert!(!out.exists(), "{bin} {bad:?} created {}", out.display());
    }
}

#[test]
fn a_run_that_fails_after_starting_exits_1() {
    // Slope 1e-3 in f16 with reconstructed activations: the leaky-ReLU inverses overflow f16
    // on the way down and training diverges at its first step (a failure of the run, not of
    // the input: every value is valid).
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let args = [
        "--width",
        "4",
        "--epochs",
        "1",
        "--data",
        "synthetic:train=64,test=32,size=8",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--depth",
        "6",
        "--slope",
        "0.001",
        "--dtype",
        "f16",
        "--mode",
        "reconstructed",
    ]
    .map(String::from);

    let o = run_bin("train", &args, None);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("train: error: non-finite loss"), "{err}");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git");
    assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn read_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// The candle-core version in Cargo.lock, read here independently of build.rs.
fn locked_candle_version() -> String {
    let lock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    let i = lock.find("name = \"candle-core\"").unwrap();
    let rest = &lock[i..];
    let v = rest.lines().nth(1).unwrap();
    v.trim()
        .trim_start_matches("version = ")
        .trim_matches('"')
        .to_string()
}

#[test]
fn run_from_inside_another_repository_records_revstabs_revision_not_that_repositorys() {
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other-repo");
    std::fs::create_dir_all(&other).unwrap();
    git(&other, &["init", "-q"]);
    std::fs::write(other.join("a.txt"), b"a").unwrap();
    git(&other, &["add", "a.txt"]);
    git(&other, &["commit", "-q", "-m", "other"]);
    let other_rev = git(&other, &["rev-parse", "--short", "HEAD"]);
    let ours = git(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["rev-parse", "--short", "HEAD"],
    );
    assert_ne!(ours, other_rev);
    for bin in ["snr-sweep", "train"] {
        let o = run_bin(bin, &small_run(bin, "res"), Some(&other));
        assert!(o.status.success(), "{bin}: {}", stderr(&o));
        let v = read_json(&other.join("res").join("run.json"));
        let rev = v["git_revision"].as_str().unwrap();
        assert!(
            rev == ours || rev == format!("{ours}-dirty"),
            "{bin}: recorded {rev}, built from {ours}, ran inside {other_rev}"
        );
        let p = &v["provenance"];
        assert_eq!(p["git_revision"], v["git_revision"]);
        assert_eq!(p["git_commit"].as_str().unwrap(), ours);
        assert!(["true", "false"].contains(&p["git_dirty"].as_str().unwrap()));
        let cmd: Vec<&str> = p["command_line"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(cmd[0].ends_with(bin), "{cmd:?}");
        assert!(cmd.windows(2).any(|w| w == ["--out", "res"]), "{cmd:?}");
        let t = p["started_utc"].as_str().unwrap();
        // RFC 3339 UTC to the second: 2026-12-03T15:26:14Z
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
        assert!(humantime::parse_rfc3339(t).is_ok(), "{t}");
        assert!(p["rustc_version"].as_str().unwrap().starts_with("rustc "));
        assert_eq!(
            p["candle_version"].as_str().unwrap(),
            locked_candle_version()
        );
        assert!(!p["host_cpu"].as_str().unwrap().is_empty());
        std::fs::remove_dir_all(other.join("res")).unwrap();
    }
}

#[test]
fn resume_of_a_finished_sweep_keeps_the_original_run_json_timings() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let args = small_run("snr-sweep", out.to_str().unwrap());
    let o = run_bin("snr-sweep", &args, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = read_json(&out.join("run.json"));
    assert!(first["computed"].as_u64().unwrap() > 0);
    // A second apart, so a rewritten start time would show.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut resume = args.clone();
    resume.push("--resume".into());
    let o = run_bin("snr-sweep", &resume, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let after = read_json(&out.join("run.json"));
    for key in [
        "wall_seconds",
        "point_seconds",
        "computed",
        "skipped",
        "points",
    ] {
        assert_eq!(after[key], first[key], "{key} changed on resume");
    }
    assert_eq!(after["provenance"], first["provenance"]);
    let resumes = after["resumes"].as_array().expect("resumes recorded");
    assert_eq!(resumes.len(), 1);
    let r = &resumes[0];
    assert_eq!(r["computed"], 0);
    assert_eq!(r["skipped"], first["points"]);
    assert_ne!(
        r["provenance"]["started_utc"],
        first["provenance"]["started_utc"]
    );
    assert!(r["provenance"]["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "--resume"));
}
