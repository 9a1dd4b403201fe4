//! The lock of an output directory: every tool that writes results takes an OS advisory lock on
//! its `--out` directory ([`lock_out`]) before it writes anything, and holds it until it exits,
//! so two runs into one directory cannot corrupt each other: the second stops at once with
//! [`Error::Locked`] (exit code 2) and writes nothing.
//!
//! The lock is `flock(2)` on the directory itself (through `std::fs::File::try_lock`), so no
//! lock file is left behind; the OS releases it when the process ends, however it ends (kill -9
//! included). Advisory: it stops other revstab runs, not other programs.

use crate::error::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// A held lock on an output directory; released when dropped (or when the process ends).
///
/// A directory the lock created is removed again when the lock is dropped with nothing in it
/// but empty folders (a run that stopped on an error after the lock was taken, such as a data
/// error or a divergence before the first result, leaves no empty `--out` behind).
#[derive(Debug)]
pub struct OutLock {
    _file: File,
    dir: PathBuf,
    created: bool,
}

impl Drop for OutLock {
    fn drop(&mut self) {
        if self.created {
            remove_if_empty(&self.dir);
        }
    }
}

/// Remove `dir` when it holds nothing but empty folders (best effort: a file anywhere keeps it).
fn remove_if_empty(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut empty = true;
    for e in entries.flatten() {
        let p = e.path();
        if !(e.file_type().is_ok_and(|t| t.is_dir()) && remove_if_empty(&p)) {
            empty = false;
        }
    }
    empty && std::fs::remove_dir(dir).is_ok()
}

impl OutLock {
    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Open `dir` for locking: the directory itself where the OS allows it (Unix), else a
/// `.revstab-lock` file inside it.
fn lock_handle(dir: &Path) -> Result<File> {
    #[cfg(unix)]
    {
        File::open(dir).map_err(|e| Error::io(dir, e))
    }
    #[cfg(not(unix))]
    {
        let path = dir.join(".revstab-lock");
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))
    }
}

/// Which tool wrote the results in `dir`, as `tool` or `tool experiment` (`train accuracy`,
/// `train angles`, `train single`), read from its `run.json` (or, before a run has written
/// one, its `points/manifest.json` or a training checkpoint); `None` for a directory without
/// any of them (empty, or figures).
pub fn owner_of(dir: &Path) -> Option<String> {
    let read = |p: PathBuf| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
    };
    if let Some(v) = read(dir.join("run.json")) {
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let tool = text("tool");
        let experiment = text("experiment");
        return match (tool.as_deref(), experiment.as_deref()) {
            (Some("train"), Some(e)) => Some(format!("train {e}")),
            (Some(t), _) => Some(t.to_string()),
            (None, Some("memory")) => Some("memory".into()),
            (None, Some(e)) if e.starts_with("bench") => Some("bench".into()),
            (None, Some(e)) => Some(e.to_string()),
            (None, None) => Some("an unknown tool".into()),
        };
    }
    // A single training run writes its checkpoint long before its `run.json`.
    if dir.join("checkpoint.json").is_file() {
        return Some("train single".into());
    }
    let manifest = read(dir.join("points").join("manifest.json"))?;
    // The training experiments' manifest is their config (it names its experiment); the
    // sweep's is `{"config": <the sweep's config>}` (architectures, depths and slopes).
    match manifest.get("experiment").and_then(|e| e.as_str()) {
        Some(e) => Some(format!("train {e}")),
        None if manifest
            .get("config")
            .and_then(|c| c.get("archs"))
            .is_some() =>
        {
            Some("snr-sweep".into())
        }
        None => Some("an unknown tool".into()),
    }
}

/// Create `dir` if needed and take its lock without waiting: [`Error::Locked`] when another
/// process holds it, [`Error::ForeignOut`] when it holds another tool's results (`tool` names
/// the caller as [`owner_of`] would: `snr-sweep`, `train accuracy`, `memory`...). Both are bad
/// input (exit 2), found before anything is written.
pub fn lock_out(dir: &Path, tool: &str) -> Result<OutLock> {
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let file = lock_handle(dir)?;
    let lock = match file.try_lock() {
        Ok(()) => OutLock {
            _file: file,
            dir: dir.to_path_buf(),
            created,
        },
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::Locked {
                path: dir.display().to_string(),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => {
            if created {
                remove_if_empty(dir);
            }
            return Err(Error::io(dir, e));
        }
    };
    if let Some(owner) = owner_of(dir) {
        // The same tool, or for `train` the same experiment.
        if owner != tool {
            return Err(Error::ForeignOut {
                path: dir.display().to_string(),
                owner,
                tool: tool.to_string(),
            });
        }
    }
    Ok(lock)
}
