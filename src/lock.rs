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
#[derive(Debug)]
pub struct OutLock {
    _file: File,
    dir: PathBuf,
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

/// Create `dir` if needed and take its lock without waiting: [`Error::Locked`] when another
/// process holds it.
pub fn lock_out(dir: &Path) -> Result<OutLock> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let file = lock_handle(dir)?;
    match file.try_lock() {
        Ok(()) => Ok(OutLock {
            _file: file,
            dir: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            path: dir.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(dir, e)),
    }
}
