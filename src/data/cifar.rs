//! CIFAR-10 in its binary format (`cifar-10-batches-bin`).

use super::{ChannelStats, DataSplit, Dataset};
use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use std::path::{Path, PathBuf};

/// Bytes per CIFAR-10 record: 1 label byte, then 1024 red, 1024 green, 1024 blue pixel bytes
/// (each plane row-major 32x32).
pub const CIFAR10_RECORD_BYTES: usize = 1 + 3 * 32 * 32;

/// Number of CIFAR-10 classes.
pub const CIFAR10_CLASSES: usize = 10;

const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
const TEST_FILE: &str = "test_batch.bin";

/// Load CIFAR-10 from `dir` in the binary format: the training set from whichever of
/// `data_batch_1.bin` ... `data_batch_5.bin` exist (at least one is required), in that order,
/// and the test set from `test_batch.bin`. If `dir` holds none of these but has a
/// `cifar-10-batches-bin` subdirectory (the layout of the official archive), that is used.
///
/// Pixels are scaled to `[0, 1]` and normalised per channel with the training set's mean and
/// std. Errors: [`Error::Io`] naming a missing directory or file; [`Error::CorruptData`]
/// naming the file and the byte offset of a truncated record (length not a multiple of 3073),
/// of a label byte > 9, or for an empty file.
pub fn load_cifar10(dir: &Path) -> Result<DataSplit> {
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "CIFAR-10 directory not found"),
        ));
    }
    let dir = resolve_dir(dir);
    let train_paths: Vec<PathBuf> = TRAIN_FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect();
    if train_paths.is_empty() {
        return Err(Error::io(
            dir.join(TRAIN_FILES[0]),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no CIFAR-10 training batch in {}: expected at least one of data_batch_1.bin ... data_batch_5.bin",
                    dir.display()
                ),
            ),
        ));
    }
    let test_path = dir.join(TEST_FILE);
    if !test_path.is_file() {
        return Err(Error::io(
            &test_path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "CIFAR-10 test batch not found",
            ),
        ));
    }

    let (mut train_x, train_y) = read_files(&train_paths)?;
    let (mut test_x, test_y) = read_files(&[test_path])?;
    let plane = 32 * 32;
    let stats = ChannelStats::of_slice(&train_x, train_y.len(), 3, plane);
    stats.apply_slice(&mut train_x, plane);
    stats.apply_slice(&mut test_x, plane);
    let make = |x: Vec<f32>, y: Vec<u32>| -> Result<Dataset> {
        let n = y.len();
        Dataset::new(
            Tensor::from_vec(x, (n, 3, 32, 32), &Device::Cpu)?,
            Tensor::from_vec(y, n, &Device::Cpu)?,
            CIFAR10_CLASSES,
        )
    };
    Ok(DataSplit {
        train: make(train_x, train_y)?,
        test: make(test_x, test_y)?,
    })
}

/// The CIFAR-10 files [`load_cifar10`] reads in `dir`: the training batches present, then the
/// test batch (if present).
pub fn cifar10_files(dir: &Path) -> Vec<PathBuf> {
    let dir = resolve_dir(dir);
    TRAIN_FILES
        .iter()
        .chain([&TEST_FILE])
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect()
}

/// `dir`, or its `cifar-10-batches-bin` subdirectory when `dir` holds no batch file but that
/// subdirectory exists.
fn resolve_dir(dir: &Path) -> PathBuf {
    let has_batches = TRAIN_FILES
        .iter()
        .chain(std::iter::once(&TEST_FILE))
        .any(|f| dir.join(f).is_file());
    let sub = dir.join("cifar-10-batches-bin");
    if !has_batches && sub.is_dir() {
        sub
    } else {
        dir.to_path_buf()
    }
}

/// Pixels in `[0, 1]` (NCHW) and labels of all records of `paths`, in order.
fn read_files(paths: &[PathBuf]) -> Result<(Vec<f32>, Vec<u32>)> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let corrupt = |offset: usize, reason: String| Error::CorruptData {
            path: path.display().to_string(),
            offset: offset as u64,
            reason,
        };
        if bytes.is_empty() {
            return Err(corrupt(
                0,
                "empty file: expected records of 3073 bytes".into(),
            ));
        }
        let whole = bytes.len() / CIFAR10_RECORD_BYTES;
        let tail = bytes.len() % CIFAR10_RECORD_BYTES;
        if tail != 0 {
            return Err(corrupt(
                whole * CIFAR10_RECORD_BYTES,
                format!(
                    "truncated record {whole}: the file is {} bytes, not a multiple of the {CIFAR10_RECORD_BYTES}-byte \
                     record ({whole} whole records and {tail} trailing bytes)",
                    bytes.len()
                ),
            ));
        }
        pixels.reserve(whole * (CIFAR10_RECORD_BYTES - 1));
        labels.reserve(whole);
        for (r, rec) in bytes.chunks_exact(CIFAR10_RECORD_BYTES).enumerate() {
            let label = rec[0];
            if label as usize >= CIFAR10_CLASSES {
                return Err(corrupt(
                    r * CIFAR10_RECORD_BYTES,
                    format!("label byte {label} of record {r} is out of range 0..=9"),
                ));
            }
            labels.push(label as u32);
            pixels.extend(rec[1..].iter().map(|&p| p as f32 / 255.0));
        }
    }
    Ok((pixels, labels))
}
