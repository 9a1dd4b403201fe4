//! Build-time provenance: the git revision of the source tree this binary was built from (with a
//! dirty flag), the compiler and the candle version, fixed into the binary as environment
//! variables read with `env!` in `src/provenance.rs`. A run records these wherever it is started
//! from (not the revision of the current directory's repository).
//!
//! - `REVSTAB_GIT_REVISION`: `git rev-parse --short HEAD` of the crate's directory, or `unknown`
//!   when the source tree is not a git checkout (an unpacked tarball) or git is missing. Works in
//!   a git worktree, where `.git` is a file pointing at the real git directory.
//! - `REVSTAB_GIT_DIRTY`: `true` when tracked files outside `figures/` have uncommitted changes
//!   (the committed figures are outputs: regenerating them does not make later runs dirty),
//!   `false` when clean, `unknown` without git.
//! - `REVSTAB_RUSTC_VERSION`: `$RUSTC --version`.
//! - `REVSTAB_CANDLE_VERSION`: the version of `candle-core` in `Cargo.lock`.
//!
//! The script reruns when HEAD, the index, a ref or a file of the library changes, so the recorded
//! revision follows commits and edits.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        // `git status` must not refresh the index: that would change its mtime and rerun this
        // script on every build.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The git directory of `dir` when `dir` is the top of a git checkout (not when it merely sits
/// inside another repository: an unpacked source tree inside someone's repository is `unknown`).
fn own_git_dir(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    let same = match (Path::new(&top).canonicalize(), dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same {
        return None;
    }
    let abs = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            dir.join(p)
        }
    };
    let git_dir = abs(git(dir, &["rev-parse", "--git-dir"])?);
    let common = abs(git(dir, &["rev-parse", "--git-common-dir"])?);
    Some((git_dir, common))
}

fn candle_version(manifest_dir: &Path) -> String {
    let lock = std::fs::read_to_string(manifest_dir.join("Cargo.lock")).unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"candle-core\"" {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                return v.trim_matches('"').to_string();
            }
        }
    }
    "unknown".into()
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // Source files that change the library (tests, benches and examples do not: rerunning on
    // them would recompile the library for every test edit; `git add` of them still reruns).
    for p in ["build.rs", "Cargo.toml", "Cargo.lock", "src"] {
        println!("cargo:rerun-if-changed={p}");
    }
    let (revision, dirty) = match own_git_dir(&manifest_dir) {
        Some((git_dir, common)) => {
            // Only paths that exist: cargo reruns the script on every build for a missing one.
            // (`packed-refs` appears when refs are packed, which also changes `refs/heads`.)
            for p in [
                git_dir.join("HEAD"),
                git_dir.join("index"),
                common.join("refs").join("heads"),
                common.join("packed-refs"),
            ] {
                if p.exists() {
                    println!("cargo:rerun-if-changed={}", p.display());
                }
            }
            let rev = git(&manifest_dir, &["rev-parse", "--short", "HEAD"])
                .unwrap_or_else(|| "unknown".into());
            let dirty = git(
                &manifest_dir,
                &[
                    "status",
                    "--porcelain",
                    "--untracked-files=no",
                    "--",
                    ":(top)",
                    ":(top,exclude)figures",
                ],
            )
            .map(|s| if s.is_empty() { "false" } else { "true" })
            .unwrap_or("unknown");
            (rev, dirty.to_string())
        }
        None => ("unknown".to_string(), "unknown".to_string()),
    };
    println!("cargo:rustc-env=REVSTAB_GIT_REVISION={revision}");
    println!("cargo:rustc-env=REVSTAB_GIT_DIRTY={dirty}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=REVSTAB_RUSTC_VERSION={rustc_version}");
    println!(
        "cargo:rustc-env=REVSTAB_CANDLE_VERSION={}",
        candle_version(&manifest_dir)
    );
}
