//! The layout rules, checked on the sources: data flow one way (the lower layers
//! `train`, `nets`, `layers`, `measure`, `results` never import `experiments`, `plot` or the
//! binaries; `experiments` never imports `plot`), no source file over 1,200 lines, and no
//! reference to a tracker outside the project.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn lower_layers_do_not_import_experiments_plot_or_binaries() {
    let mut files = Vec::new();
    for dir in ["train", "nets", "layers", "measure", "results"] {
        rust_files(&src().join(dir), &mut files);
    }
    assert!(files.len() > 10, "found only {files:?}");
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if [
                "crate::experiments",
                "crate::plot",
                "crate::bin",
                "super::super::experiments",
            ]
            .iter()
            .any(|m| code.contains(m))
            {
                bad.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "imports from a higher layer:\n{}",
        bad.join("\n")
    );
}

/// Data flow config -> experiment -> results -> figures: the experiments do not draw.
#[test]
fn experiments_do_not_import_plot() {
    let mut files = Vec::new();
    rust_files(&src().join("experiments"), &mut files);
    let bad: Vec<String> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .any(|l| l.split("//").next().unwrap_or("").contains("crate::plot"))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(bad.is_empty(), "experiments importing plot: {bad:?}");
}

#[test]
fn no_source_file_is_over_1200_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 1200).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "{}", long.join("\n"));
}

fn text_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            text_files(&path, out);
        } else if std::fs::read_to_string(&path).is_ok() {
            out.push(path);
        }
    }
}

/// The project speaks for itself: no text file of the sources, tests, configs, figures or docs
/// refers to a tracker's ticket numbers (names say what a thing is).
#[test]
fn no_tracker_references_in_the_project() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let word = ["is", "sue"].concat();
    let mut files = Vec::new();
    for dir in ["src", "tests", "experiments", "figures", "docs"] {
        text_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.to_ascii_lowercase().contains(&word) {
                bad.push(format!("{}:{}: {line}", f.display(), i + 1));
            }
        }
    }
    assert!(bad.is_empty(), "tracker references:\n{}", bad.join("\n"));
}
