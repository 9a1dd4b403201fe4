//! The documentation, checked on the files: the top-level README stays a short entry point (at
//! most 250 lines, with the set-up commands CI runs), every relative link of the README and of
//! `docs/**/*.md` reaches a file of the repository (and a heading of it where the link names
//! one), every binary of `src/bin/` has its page `docs/tools/<name>.md`, and the index
//! `docs/README.md` lists every page under `docs/`.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// README.md and every markdown file under docs/.
fn documentation() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    markdown_files(&root().join("docs"), &mut files);
    files.sort();
    files
}

/// The lines of a markdown text outside fenced code blocks, with their line numbers (from 1).
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            out.push((i + 1, line));
        }
    }
    out
}

/// A line with its inline code spans (`...`) removed.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// The targets of the inline links and images (`[text](target)`, `![alt](target)`) of a
/// markdown text, with their line numbers; `Err` for a `](` whose target does not close on its
/// line.
fn link_targets(text: &str) -> Vec<(usize, Result<String, String>)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text) {
        let line = without_code_spans(line);
        let mut rest = line.as_str();
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            match after.find(')') {
                Some(end) => {
                    let target = after[..end].split_whitespace().next().unwrap_or("");
                    let target = target.trim_start_matches('<').trim_end_matches('>');
                    out.push((n, Ok(target.to_string())));
                    rest = &after[end + 1..];
                }
                None => {
                    out.push((n, Err(after.to_string())));
                    break;
                }
            }
        }
    }
    out
}

/// The anchor GitHub gives a heading: lower case, every character but letters, digits, spaces,
/// `-` and `_` dropped, spaces made `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a markdown file's headings (repeated headings get `-1`, `-2`, ...).
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let mut anchor = base.clone();
        let mut k = 1;
        while seen.contains(&anchor) {
            anchor = format!("{base}-{k}");
            k += 1;
        }
        seen.insert(anchor);
    }
    seen
}

/// `target` (a relative path, possibly `..`) resolved against `dir`, without touching the file
/// system; `None` when it climbs above the file system's root.
fn resolve(dir: &Path, target: &str) -> Option<PathBuf> {
    let mut path = dir.to_path_buf();
    for component in Path::new(target).components() {
        match component {
            Component::ParentDir => {
                if !path.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            Component::Normal(part) => path.push(part),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(path)
}

fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

/// The files (not anchors) that `file`'s relative links reach.
fn linked_files(file: &Path) -> HashSet<PathBuf> {
    let dir = file.parent().unwrap();
    link_targets(&read(file))
        .into_iter()
        .filter_map(|(_, t)| t.ok())
        .filter(|t| !is_external(t))
        .filter_map(|t| {
            let path = t.split('#').next().unwrap().to_string();
            (!path.is_empty()).then(|| resolve(dir, &path)).flatten()
        })
        .collect()
}

#[test]
fn readme_is_at_most_250_lines() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(lines > 20, "README.md has only {lines} lines");
    assert!(
        lines <= 250,
        "README.md has {lines} lines (at most 250): move detail into docs/"
    );
}

/// The two set-up commands (CI runs the second) and the one extra step for real data.
#[test]
fn readme_keeps_the_set_up_commands() {
    let readme = read(&root().join("README.md"));
    let code: Vec<&str> = readme
        .lines()
        .scan(false, |in_fence, line| {
            let fence = line.trim_start().starts_with("```");
            let inside = *in_fence && !fence;
            if fence {
                *in_fence = !*in_fence;
            }
            Some((inside, line))
        })
        .filter(|(inside, _)| *inside)
        .map(|(_, line)| line.trim())
        .collect();
    for command in ["cargo run --release --bin snr-sweep", "cargo test"] {
        assert!(
            code.iter()
                .any(|l| l.split('#').next().unwrap().trim() == command),
            "README.md has no code line `{command}`"
        );
    }
    let ci = read(&root().join(".ci/run"));
    assert!(
        ci.lines().any(|l| l.trim() == "cargo test"),
        ".ci/run no longer runs `cargo test`"
    );
    assert!(readme.contains("apt-get install dataset-fashion-mnist"));
    assert!(readme.contains("/usr/share/datasets/fashion-mnist/"));
}

#[test]
fn every_relative_link_reaches_a_file_of_the_repository() {
    let root = root();
    let files = documentation();
    assert!(files.len() > 10, "found only {files:?}");
    let mut checked = 0;
    let mut bad = Vec::new();
    for file in &files {
        let dir = file.parent().unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for (line, target) in link_targets(&read(file)) {
            let target = match target {
                Ok(t) => t,
                Err(rest) => {
                    bad.push(format!(
                        "{name}:{line}: link not closed on its line: ]({rest}"
                    ));
                    continue;
                }
            };
            if is_external(&target) {
                continue;
            }
            checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                Some(file.clone())
            } else {
                resolve(dir, path)
            };
            let Some(resolved) = resolved.filter(|p| p.starts_with(&root)) else {
                bad.push(format!("{name}:{line}: {target} leaves the repository"));
                continue;
            };
            if !resolved.exists() {
                bad.push(format!("{name}:{line}: {target}: no such file"));
                continue;
            }
            if let Some(anchor) = anchor {
                if resolved.extension().is_some_and(|e| e == "md")
                    && !anchors(&read(&resolved)).contains(anchor)
                {
                    bad.push(format!("{name}:{line}: {target}: no heading #{anchor}"));
                }
            }
        }
    }
    assert!(checked > 50, "checked only {checked} links");
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

#[test]
fn every_binary_has_its_tool_page() {
    let root = root();
    let mut bins = Vec::new();
    for entry in std::fs::read_dir(root.join("src/bin")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && path.join("main.rs").exists() {
            bins.push(path.file_name().unwrap().to_string_lossy().into_owned());
        } else if path.extension().is_some_and(|e| e == "rs") {
            bins.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    bins.sort();
    assert!(bins.len() >= 6, "found only {bins:?}");
    let readme_links = linked_files(&root.join("README.md"));
    let index_links = linked_files(&root.join("docs/README.md"));
    let mut bad = Vec::new();
    for bin in &bins {
        let page = root.join("docs/tools").join(format!("{bin}.md"));
        if !page.exists() {
            bad.push(format!("{bin}: no docs/tools/{bin}.md"));
            continue;
        }
        let text = read(&page);
        if !text.starts_with(&format!("# {bin}\n")) {
            bad.push(format!("docs/tools/{bin}.md: does not open with `# {bin}`"));
        }
        if !text.contains(&format!("--bin {bin}")) {
            bad.push(format!("docs/tools/{bin}.md: no `--bin {bin}` command"));
        }
        if !readme_links.contains(&page) {
            bad.push(format!("README.md: no link to docs/tools/{bin}.md"));
        }
        if !index_links.contains(&page) {
            bad.push(format!("docs/README.md: no link to docs/tools/{bin}.md"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_docs_index_lists_every_page() {
    let root = root();
    let index = root.join("docs/README.md");
    let links = linked_files(&index);
    let mut pages = Vec::new();
    markdown_files(&root.join("docs"), &mut pages);
    assert!(pages.len() > 10, "found only {pages:?}");
    let missing: Vec<String> = pages
        .iter()
        .filter(|p| **p != index && !links.contains(*p))
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/README.md does not link: {missing:?}"
    );
}

/// The helpers above find what they should, on a text written here.
#[test]
fn link_and_heading_parsing() {
    let text = "# Title\n\n## `snr-sweep` (`--out`, default `results/x`)\n\n## Title\n\
                see [a](b.md#c) and ![img](../f.png \"t\") and `[not](a link)`\n\
                ```sh\n[inside](fence.md)\n# not a heading\n```\n[open](x.md\n";
    let targets = link_targets(text);
    let ok: Vec<String> = targets.iter().filter_map(|(_, t)| t.clone().ok()).collect();
    assert_eq!(ok, ["b.md#c", "../f.png"]);
    assert_eq!(targets.iter().filter(|(_, t)| t.is_err()).count(), 1);
    let a = anchors(text);
    for expected in ["title", "snr-sweep---out-default-resultsx", "title-1"] {
        assert!(a.contains(expected), "{expected} not in {a:?}");
    }
    assert!(!a.contains("not-a-heading"));
    assert_eq!(
        resolve(Path::new("/r/docs/tools"), "../../figures/a.png"),
        Some(PathBuf::from("/r/figures/a.png"))
    );
}
