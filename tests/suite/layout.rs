//! The layout rules, checked on the sources: data flow one way (the lower layers
//! `train`, `nets`, `layers`, `measure`, `results` never import `experiments`, `plot` or the
//! binaries; `experiments` never imports `plot`), and more strictly every module imports only
//! modules of a lower rank (`RANKS`, no cycles); no source file over 800 lines, and no
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
fn no_source_file_is_over_800_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 800).then(|| format!("{}: {n} lines", f.display()))
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

/// The modules of the crate in layers, lowest first: a module imports only itself and modules
/// of a lower rank. Modules of one rank are peers that import nothing from each other (so no
/// two modules can import each other). Every top-level module of `src/lib.rs` must be here: a
/// new module is placed when it is added.
const RANKS: &[(&str, u32)] = &[
    // Foundations: the error type, and what imports nothing at all.
    ("error", 0),
    ("hash", 0),
    ("alloc", 0),
    // Settings checked against the error type.
    ("precision", 1),
    ("lock", 1),
    ("limits", 1),
    // Where and how tensors are computed.
    ("backend", 2),
    ("device", 3),
    ("provenance", 4),
    ("util", 5),
    // Result files and data sets.
    ("results", 6),
    ("data", 6),
    // The networks: layers (with what their VJPs exchange), the one backward, the networks.
    ("layers", 7),
    ("backprop", 8),
    ("nets", 9),
    ("measure", 10),
    ("train", 11),
    // Front ends, experiments, figures (the binaries under src/bin sit above everything).
    ("cli", 12),
    ("dry_run", 12),
    ("experiments", 13),
    ("plot", 14),
];

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The code of a source file, its lines kept (so offsets give line numbers): `//` comments
/// blanked; everything from a test module on (`#[cfg(test)]` before a `mod`; clippy keeps test
/// modules last) dropped; any other `#[cfg(test)]` item blanked to its closing brace.
fn code_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut skip: Option<(i64, bool)> = None; // (brace depth, whether a brace opened)
    for (i, line) in lines.iter().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        if code.trim_start().starts_with("#[cfg(test)]") {
            let next = lines[i + 1..]
                .iter()
                .map(|l| l.trim())
                .find(|l| !l.is_empty() && !l.starts_with("#[") && !l.starts_with("//"))
                .unwrap_or("");
            let item = next
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            if item.starts_with("mod ") {
                break;
            }
            skip = Some((0, false));
        }
        if let Some((depth, opened)) = skip.as_mut() {
            for c in code.chars() {
                match c {
                    '{' => {
                        *depth += 1;
                        *opened = true;
                    }
                    '}' => *depth -= 1,
                    _ => {}
                }
            }
            if (*opened && *depth <= 0) || (!*opened && code.contains(';')) {
                skip = None;
            }
            out.push('\n');
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The top-level modules named by the path that starts at byte `at` of `code` (just after
/// `crate::`, or after `super::`s that climb to the crate root): one name, or each first name of
/// a `{...}` group.
fn path_roots(code: &str, at: usize) -> Vec<(String, usize)> {
    let rest = &code[at..];
    let ident = |s: &str| -> String { s.chars().take_while(|&c| is_ident(c)).collect() };
    if !rest.starts_with('{') {
        let name = ident(rest);
        return if name.is_empty() {
            Vec::new()
        } else {
            vec![(name, at)]
        };
    }
    let mut roots = Vec::new();
    let mut depth = 0;
    let mut expect = true; // a name starts here (after `{` or `,` of the outer group)
    for (i, c) in rest.char_indices() {
        match c {
            '{' => {
                depth += 1;
                expect = depth == 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expect = true,
            c if c.is_whitespace() => {}
            _ if expect => {
                let name = ident(&rest[i..]);
                if !name.is_empty() && name != "self" {
                    roots.push((name, at + i));
                }
                expect = false;
            }
            _ => {}
        }
    }
    roots
}

/// Every top-level module `code` imports, with its byte offset: the roots of `crate::` paths,
/// and of `super::` chains that climb from `module` (the file's module path, e.g.
/// `["layers", "batchnorm"]`) to the crate root. Inline modules are not followed (a `super::`
/// inside one is read as if written at the file's level).
fn imported_roots(code: &str, module: &[String]) -> Vec<(String, usize)> {
    let bytes = code.as_bytes();
    let before_is_ident = |i: usize| i > 0 && is_ident(bytes[i - 1] as char);
    let mut roots = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        if !before_is_ident(i) {
            roots.extend(path_roots(code, i + "crate::".len()));
        }
    }
    for (i, _) in code.match_indices("super::") {
        if before_is_ident(i) || code[..i].ends_with("super::") {
            continue; // not the start of a chain
        }
        let mut end = i;
        let mut climbs = 0;
        while code[end..].starts_with("super::") {
            end += "super::".len();
            climbs += 1;
        }
        if climbs == module.len() {
            roots.extend(path_roots(code, end));
        }
    }
    roots
}

#[test]
fn import_scanner_reads_paths_groups_and_super_chains() {
    let module = ["layers".to_string(), "conv".to_string()];
    let names = |code: &str| -> Vec<String> {
        imported_roots(&code_of(code), &module)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    assert_eq!(names("use crate::plot::x; // crate::nets\n"), ["plot"]);
    assert_eq!(
        names("use crate::{\n    nets::{a, b},\n    util,\n};\n"),
        ["nets", "util"]
    );
    assert_eq!(
        names("use super::Layer;\nuse super::super::train::X;\n"),
        ["train"]
    );
    assert_eq!(names("let h = mycrate::plot::f();\n"), Vec::<String>::new());
    assert_eq!(
        names("#[cfg(test)]\nfn helper() {\n    crate::plot::f();\n}\nuse crate::nets::N;\n"),
        ["nets"]
    );
    assert_eq!(
        names("use crate::util::u;\n#[cfg(test)]\nmod tests {\n    use crate::plot::p;\n}\n"),
        ["util"]
    );
}

/// The modules form layers (see [`RANKS`]): no file under `src/` (the binaries aside) imports
/// a module of its own rank or above, and every module of `src/lib.rs` has a rank.
#[test]
fn no_upward_imports() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let modules: Vec<String> = code_of(&lib)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            Some(
                l.strip_prefix("mod ")?
                    .strip_suffix(';')?
                    .trim()
                    .to_string(),
            )
        })
        .collect();
    assert!(modules.len() > 15, "modules of lib.rs: {modules:?}");
    let rank = |m: &str| RANKS.iter().find(|(n, _)| *n == m).map(|&(_, r)| r);
    let unranked: Vec<&String> = modules.iter().filter(|m| rank(m).is_none()).collect();
    assert!(
        unranked.is_empty(),
        "modules of src/lib.rs without a rank in RANKS (place them): {unranked:?}"
    );
    let stale: Vec<&str> = RANKS
        .iter()
        .map(|&(n, _)| n)
        .filter(|n| !modules.iter().any(|m| m == n))
        .collect();
    assert!(
        stale.is_empty(),
        "RANKS names modules lib.rs lacks: {stale:?}"
    );

    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut bad = Vec::new();
    let mut imports = 0;
    for f in &files {
        let rel = f.strip_prefix(src()).unwrap();
        let mut module: Vec<String> = rel
            .components()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .collect();
        if module.last().is_some_and(|m| m == "mod") {
            module.pop();
        }
        if module[0] == "bin" || module == ["lib"] || module == ["main"] {
            continue;
        }
        let own = &module[0];
        let Some(own_rank) = rank(own) else {
            bad.push(format!("src/{}: module `{own}` has no rank", rel.display()));
            continue;
        };
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        for (target, at) in imported_roots(&code, &module) {
            if &target == own || !modules.contains(&target) {
                continue; // within the module, or an item lib.rs re-exports
            }
            imports += 1;
            let target_rank = rank(&target).unwrap();
            if target_rank >= own_rank {
                let line = code[..at].matches('\n').count();
                let text = code.lines().nth(line).unwrap_or("").trim();
                bad.push(format!(
                    "src/{}:{}: {own} (rank {own_rank}) imports {target} (rank {target_rank}): {text}",
                    rel.display(),
                    line + 1
                ));
            }
        }
    }
    assert!(
        imports > 200,
        "found only {imports} imports between modules"
    );
    assert!(
        bad.is_empty(),
        "imports of a module of the same or a higher rank (see RANKS):\n{}",
        bad.join("\n")
    );
}

/// Architectures are data: outside their table (`src/nets/arch.rs`) no code compares an
/// architecture with a named one (`== Arch::X`, `matches!(a, Arch::X)`, a `match` arm
/// `Arch::X =>`): what differs between them is a field of the row, which a new architecture
/// must fill in, where a comparison would silently leave it out.
#[test]
fn no_architecture_comparisons_outside_the_table() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let table = src().join("nets").join("arch.rs");
    let mut bad = Vec::new();
    let mut scanned = 0;
    for f in files.iter().filter(|f| **f != table) {
        scanned += 1;
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        for (i, line) in code.lines().enumerate() {
            let Some(at) = line.find("Arch::") else {
                continue;
            };
            let named = line[at + 6..].starts_with(|c: char| c.is_ascii_uppercase());
            // A match arm has the architecture before its `=>`.
            let arm = line.find("=>").is_some_and(|arrow| at < arrow);
            let compared = ["==", "!=", "matches!"].iter().any(|op| line.contains(op))
                || arm
                || line.trim_start().starts_with("Arch::") && line.contains(" | ");
            if named && compared {
                bad.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(scanned > 50, "scanned only {scanned} files");
    assert!(
        bad.is_empty(),
        "architecture comparisons outside the table:\n{}",
        bad.join("\n")
    );
    // The scan sees one when there is one.
    assert!(code_of("if arch == Arch::Hybrid {}\n").contains("Arch::Hybrid"));
}
