//! MNIST and Fashion-MNIST in the IDX format, plain or gzipped.
//!
//! A directory holds four files, each either plain or gzipped (`NAME` or `NAME.gz`; when both
//! exist the plain one is read):
//!
//! | file | content |
//! |---|---|
//! | `train-images-idx3-ubyte` | training images |
//! | `train-labels-idx1-ubyte` | training labels |
//! | `t10k-images-idx3-ubyte` | test images |
//! | `t10k-labels-idx1-ubyte` | test labels |
//!
//! The names with a dot before `idx` (`train-images.idx3-ubyte`, as some archives unpack) are
//! accepted too. An images file is a 16-byte header of big-endian u32s (magic 2051, count,
//! rows, columns) and then `count * rows * columns` pixel bytes, row-major; a labels file is an
//! 8-byte header (magic 2049, count) and then one byte per label, `0..=9`.
//!
//! Loading ([`load_idx`], configured by [`IdxConfig`]): take the first `train` / `test` images
//! of each split (deterministic), scale the grayscale bytes to `[0, 1]`, fit them to the
//! network's input size ([`ImageFit`]: optional 2x2 average pooling, then zero padding, i.e.
//! black, which is the background of both data sets), normalise with the mean and std of the
//! fitted *training* subset (padding included, as for every other source: the network's input
//! has mean 0 and std 1 on the training set), and give the images 1 channel, or 3 equal
//! channels with `channels = 3`. The trainer sizes its stem from the data, so 1 channel is the
//! default.
//!
//! Errors never panic: a missing directory or file is [`Error::Io`] naming it (for
//! Fashion-MNIST with the `apt-get install dataset-fashion-mnist` hint); a corrupt file is
//! [`Error::CorruptData`] naming the file and the byte offset: a truncated or corrupt gzip
//! stream, a short header, a wrong magic number, zero images, rows or columns, a file shorter
//! or longer than its header says, a label `>= 10`, image and label counts that differ, or test
//! images of another size than the training images. In a gzipped file every offset but a gzip
//! stream's counts bytes of the decompressed data, and the message says so.

use super::{ChannelStats, DataSplit, Dataset};
use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Magic number of an IDX file of unsigned-byte images (type 0x08, 3 dimensions).
pub const IDX_IMAGES_MAGIC: u32 = 0x0803;
/// Magic number of an IDX file of unsigned-byte labels (type 0x08, 1 dimension).
pub const IDX_LABELS_MAGIC: u32 = 0x0801;
/// Number of MNIST and Fashion-MNIST classes.
pub const IDX_CLASSES: usize = 10;
/// Where the Debian package `dataset-fashion-mnist` puts Fashion-MNIST.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The command that installs Fashion-MNIST on Debian and Ubuntu.
pub const FASHION_MNIST_INSTALL: &str = "apt-get install dataset-fashion-mnist";
/// The four IDX file names (without `.gz`): train images, train labels, test images, test
/// labels.
pub const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;

/// Which data set an IDX directory holds (for messages, the default directory and the
/// install hint; the format is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdxSet {
    /// Handwritten digits (LeCun et al.); no default directory.
    Mnist,
    /// Zalando's clothing images; default directory [`FASHION_MNIST_DIR`].
    FashionMnist,
}

impl IdxSet {
    /// The spec name: `mnist` or `fashion-mnist`.
    pub fn name(self) -> &'static str {
        match self {
            IdxSet::Mnist => "mnist",
            IdxSet::FashionMnist => "fashion-mnist",
        }
    }

    /// The human name: `MNIST` or `Fashion-MNIST`.
    pub fn title(self) -> &'static str {
        match self {
            IdxSet::Mnist => "MNIST",
            IdxSet::FashionMnist => "Fashion-MNIST",
        }
    }

    /// The directory used when a spec names none: [`FASHION_MNIST_DIR`] for Fashion-MNIST,
    /// none for MNIST.
    pub fn default_dir(self) -> Option<PathBuf> {
        match self {
            IdxSet::Mnist => None,
            IdxSet::FashionMnist => Some(PathBuf::from(FASHION_MNIST_DIR)),
        }
    }

    /// What to do when the files are missing.
    fn hint(self) -> String {
        match self {
            IdxSet::Mnist => format!(
                "put the four MNIST IDX files ({}, each plain or .gz) in a directory and give it as `mnist:DIR`",
                IDX_FILES.join(", ")
            ),
            IdxSet::FashionMnist => format!(
                "install it with `{FASHION_MNIST_INSTALL}` (the Debian package puts the files in {FASHION_MNIST_DIR}), \
                 or give a directory holding the four IDX files as `fashion-mnist:DIR`"
            ),
        }
    }
}

/// How the images are brought to the network's input size: an optional 2x2 average pooling
/// (28x28 -> 14x14), then an optional zero padding (black, the background) centred to
/// `pad_to x pad_to` (when the margin is odd, the extra pixel goes to the bottom and right).
///
/// Spec names ([`ImageFit::parse`], [`ImageFit::name`]): `none` (native 28x28), `padN` (e.g.
/// `pad32`: 28 -> 32), `pool2` (14x14), `pool2-padN` (e.g. `pool2-pad16`: 28 -> 14 -> 16).
/// The default is `pad32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFit {
    /// 2x2 average pooling with stride 2 first (needs even rows and columns).
    pub pool2: bool,
    /// Zero-pad to this height and width (at least the pooled size).
    pub pad_to: Option<usize>,
}

impl Default for ImageFit {
    /// `pad32`.
    fn default() -> Self {
        ImageFit {
            pool2: false,
            pad_to: Some(32),
        }
    }
}

impl ImageFit {
    /// Parse `none`, `padN`, `pool2` or `pool2-padN` (`N >= 1`). Errors: [`Error::Unknown`].
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        let unknown = || Error::Unknown {
            kind: "image fit",
            got: s.clone(),
            expected: "none, padN (e.g. pad32), pool2, pool2-padN (e.g. pool2-pad16)".into(),
        };
        let pad = |rest: &str| -> Result<Option<usize>> {
            match rest.strip_prefix("pad").map(str::parse::<usize>) {
                Some(Ok(n)) if n >= 1 => Ok(Some(n)),
                _ => Err(unknown()),
            }
        };
        match s.as_str() {
            "none" | "native" => Ok(ImageFit {
                pool2: false,
                pad_to: None,
            }),
            "pool2" => Ok(ImageFit {
                pool2: true,
                pad_to: None,
            }),
            _ => match s.strip_prefix("pool2-") {
                Some(rest) => Ok(ImageFit {
                    pool2: true,
                    pad_to: pad(rest)?,
                }),
                None => Ok(ImageFit {
                    pool2: false,
                    pad_to: pad(&s)?,
                }),
            },
        }
    }

    /// The spec name: `none`, `padN`, `pool2` or `pool2-padN`.
    pub fn name(&self) -> String {
        match (self.pool2, self.pad_to) {
            (false, None) => "none".into(),
            (true, None) => "pool2".into(),
            (false, Some(n)) => format!("pad{n}"),
            (true, Some(n)) => format!("pool2-pad{n}"),
        }
    }

    /// `(rows, cols)` of a fitted `rows x cols` image. Errors: [`Error::Config`] when pooling
    /// meets an odd size or the padded size is smaller than the (pooled) image.
    pub fn output_dims(&self, rows: usize, cols: usize) -> Result<(usize, usize)> {
        let (r, c) = if self.pool2 {
            if rows % 2 != 0 || cols % 2 != 0 || rows == 0 || cols == 0 {
                return Err(Error::config(
                    format!("fit={}", self.name()),
                    "even image sizes (2x2 pooling)",
                    format!("{rows}x{cols}"),
                ));
            }
            (rows / 2, cols / 2)
        } else {
            (rows, cols)
        };
        match self.pad_to {
            None => Ok((r, c)),
            Some(n) if n >= r && n >= c => Ok((n, n)),
            Some(n) => Err(Error::config(
                format!("fit={}", self.name()),
                format!("images at most {n}x{n} (padding only grows an image)"),
                format!(
                    "{r}x{c} images{}: cannot pad them to {n}x{n}",
                    if self.pool2 { " (after pooling)" } else { "" }
                ),
            )),
        }
    }

    /// Fit one `rows x cols` plane of `[0, 1]` pixels into `out` (`output_dims` in size, which
    /// must be zero-filled: padding is left as it is).
    fn apply(
        &self,
        src: &[f32],
        rows: usize,
        cols: usize,
        out: &mut [f32],
        orows: usize,
        ocols: usize,
    ) {
        let (src_rows, src_cols) = if self.pool2 {
            (rows / 2, cols / 2)
        } else {
            (rows, cols)
        };
        let top = (orows - src_rows) / 2;
        let left = (ocols - src_cols) / 2;
        for i in 0..src_rows {
            let dst = &mut out[(top + i) * ocols + left..][..src_cols];
            if self.pool2 {
                let (r0, r1) = (
                    &src[2 * i * cols..][..cols],
                    &src[(2 * i + 1) * cols..][..cols],
                );
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = (r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1]) * 0.25;
                }
            } else {
                dst.copy_from_slice(&src[i * cols..][..cols]);
            }
        }
    }
}

/// Configuration of [`load_idx`] (parsed from `mnist:...` and `fashion-mnist:...` specs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdxConfig {
    /// Which data set (messages, install hint).
    pub set: IdxSet,
    /// Directory holding the four IDX files.
    pub dir: PathBuf,
    /// Use the first `train` training images (`None`: all). Must not exceed the file's count.
    pub train: Option<usize>,
    /// Use the first `test` test images (`None`: all). Must not exceed the file's count.
    pub test: Option<usize>,
    /// How images reach the network's input size (default `pad32`).
    pub fit: ImageFit,
    /// 1 (grayscale, default) or 3 (the gray plane repeated, for a 3-channel network).
    pub channels: usize,
}

impl IdxConfig {
    /// All of `set` in `dir`, `fit = pad32`, 1 channel.
    pub fn new(set: IdxSet, dir: impl Into<PathBuf>) -> Self {
        IdxConfig {
            set,
            dir: dir.into(),
            train: None,
            test: None,
            fit: ImageFit::default(),
            channels: 1,
        }
    }

    /// Fashion-MNIST from the Debian package's directory [`FASHION_MNIST_DIR`].
    pub fn fashion_mnist() -> Self {
        Self::new(IdxSet::FashionMnist, FASHION_MNIST_DIR)
    }

    /// Check the values that do not need the files. Errors: [`Error::Config`] for 0 images in
    /// a split, `channels` other than 1 or 3, an empty directory or `pad0`.
    pub fn validate(&self) -> Result<()> {
        let name = self.set.name();
        if self.dir.as_os_str().is_empty() {
            return Err(Error::config(
                format!("{name}: directory"),
                "a path",
                "an empty one",
            ));
        }
        for (key, n) in [("train", self.train), ("test", self.test)] {
            if n == Some(0) {
                let e = "at least 1 image (or leave it out for all)";
                return Err(Error::config(format!("{name}: {key}"), e, 0));
            }
        }
        if self.channels != 1 && self.channels != 3 {
            let e = "1 (grayscale) or 3 (gray repeated)";
            return Err(Error::config(format!("{name}: channels"), e, self.channels));
        }
        if self.fit.pad_to == Some(0) {
            return Err(Error::config(
                format!("{name}: fit"),
                "padN with N >= 1",
                "pad0",
            ));
        }
        Ok(())
    }

    /// A short description, e.g. `fashion-mnist(/usr/share/datasets/fashion-mnist, train=10000,
    /// test=all, fit=pad32, channels=1)`.
    pub fn describe(&self) -> String {
        let n = |v: Option<usize>| v.map_or("all".to_string(), |v| v.to_string());
        format!(
            "{}({}, train={}, test={}, fit={}, channels={})",
            self.set.name(),
            self.dir.display(),
            n(self.train),
            n(self.test),
            self.fit.name(),
            self.channels
        )
    }
}

/// The images of an IDX file: `count` images of `rows x cols` bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows of each image.
    pub rows: usize,
    /// Columns of each image.
    pub cols: usize,
    /// `count * rows * cols` pixel bytes.
    pub pixels: Vec<u8>,
}

/// Read an IDX images file (magic 2051), plain or gzipped (detected from the `.gz` name or
/// the gzip magic bytes). Errors: [`Error::Io`], [`Error::CorruptData`] (see the module
/// docs).
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    let file = IdxBytes::read(path)?;
    let b = &file.bytes;
    if b.len() >= 4 {
        file.check_magic(IDX_IMAGES_MAGIC, "images")?;
    }
    if b.len() < IMAGES_HEADER {
        return Err(file.corrupt(
            b.len(),
            format!(
                "truncated header: {} bytes, an IDX images file starts with a 16-byte header \
                 (magic 2051, count, rows, columns)",
                b.len()
            ),
        ));
    }
    let (count, rows, cols) = (be32(b, 4), be32(b, 8), be32(b, 12));
    if rows == 0 || cols == 0 {
        return Err(file.corrupt(
            8,
            format!("the header says the images are {rows}x{cols}: expected at least 1x1"),
        ));
    }
    if count == 0 {
        return Err(file.corrupt(4, "the header declares 0 images".into()));
    }
    let plane = rows * cols;
    let body = (b.len() - IMAGES_HEADER) as u128;
    let expected = count as u128 * plane as u128;
    if body < expected {
        let whole = body / plane as u128;
        return Err(file.corrupt(
            IMAGES_HEADER + whole as usize * plane,
            format!(
                "truncated: the header declares {count} images of {rows}x{cols} ({} bytes in all), \
                 the file has {}; image {whole} is incomplete",
                IMAGES_HEADER as u128 + expected,
                b.len()
            ),
        ));
    }
    if body > expected {
        return Err(file.corrupt(
            IMAGES_HEADER + expected as usize,
            format!(
                "{} trailing bytes after the {count} images of {rows}x{cols} the header declares",
                body - expected
            ),
        ));
    }
    let mut pixels = file.bytes;
    pixels.drain(..IMAGES_HEADER);
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

/// Read an IDX labels file (magic 2049), plain or gzipped, checking every label is `< 10`.
/// Errors: [`Error::Io`], [`Error::CorruptData`] (see the module docs).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let file = IdxBytes::read(path)?;
    let b = &file.bytes;
    if b.len() >= 4 {
        file.check_magic(IDX_LABELS_MAGIC, "labels")?;
    }
    if b.len() < LABELS_HEADER {
        return Err(file.corrupt(
            b.len(),
            format!(
                "truncated header: {} bytes, an IDX labels file starts with an 8-byte header \
                 (magic 2049, count)",
                b.len()
            ),
        ));
    }
    let count = be32(b, 4);
    let body = b.len() - LABELS_HEADER;
    if body < count {
        return Err(file.corrupt(
            b.len(),
            format!(
                "truncated: the header declares {count} labels ({} bytes in all), the file has {}; \
                 label {body} is missing",
                LABELS_HEADER + count,
                b.len()
            ),
        ));
    }
    if body > count {
        return Err(file.corrupt(
            LABELS_HEADER + count,
            format!(
                "{} trailing bytes after the {count} labels the header declares",
                body - count
            ),
        ));
    }
    if let Some(i) = b[LABELS_HEADER..]
        .iter()
        .position(|&l| l as usize >= IDX_CLASSES)
    {
        let l = b[LABELS_HEADER + i];
        return Err(file.corrupt(
            LABELS_HEADER + i,
            format!("label {l} of item {i} is out of range 0..=9"),
        ));
    }
    let mut labels = file.bytes;
    labels.drain(..LABELS_HEADER);
    Ok(labels)
}

/// Load MNIST or Fashion-MNIST from IDX files as described in the module docs: `(N, C, H, W)`
/// images with `C = cfg.channels` and `H x W` from `cfg.fit`, normalised with the fitted
/// training subset's statistics, and u32 labels `0..10`.
///
/// Errors: [`Error::Config`] for a bad configuration, a subset larger than its file or a fit
/// that does not suit the images; [`Error::Io`] for a missing directory or file (for
/// Fashion-MNIST it says `apt-get install dataset-fashion-mnist`); [`Error::CorruptData`] for
/// a corrupt file, with the file and byte offset.
pub fn load_idx(cfg: &IdxConfig) -> Result<DataSplit> {
    cfg.validate()?;
    let set = cfg.set;
    let dir = &cfg.dir;
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} directory not found: {}", set.title(), set.hint()),
            ),
        ));
    }
    let paths = IDX_FILES
        .iter()
        .map(|name| find_file(dir, name, set))
        .collect::<Result<Vec<_>>>()?;
    let train = read_split(&paths[0], &paths[1], cfg.train, "train")?;
    let test = read_split(&paths[2], &paths[3], cfg.test, "test")?;
    if (test.rows, test.cols) != (train.rows, train.cols) {
        return Err(Error::CorruptData {
            path: paths[2].display().to_string(),
            offset: 8,
            reason: format!(
                "the test images are {}x{} but the training images ({}) are {}x{}",
                test.rows,
                test.cols,
                paths[0].display(),
                train.rows,
                train.cols
            ),
        });
    }
    let (orows, ocols) = cfg.fit.output_dims(train.rows, train.cols)?;
    let oplane = orows * ocols;
    let mut train_x = fit_images(&train, &cfg.fit, orows, ocols);
    let mut test_x = fit_images(&test, &cfg.fit, orows, ocols);
    let stats = ChannelStats::of_slice(&train_x, train.labels.len(), 1, oplane);
    stats.apply_slice(&mut train_x, oplane);
    stats.apply_slice(&mut test_x, oplane);
    let make = |x: Vec<f32>, y: Vec<u32>| -> Result<Dataset> {
        let n = y.len();
        let x = if cfg.channels == 1 {
            x
        } else {
            let mut out = vec![0f32; x.len() * cfg.channels];
            for (img, dst) in x
                .chunks_exact(oplane)
                .zip(out.chunks_exact_mut(cfg.channels * oplane))
            {
                for plane in dst.chunks_exact_mut(oplane) {
                    plane.copy_from_slice(img);
                }
            }
            out
        };
        // Built directly rather than with `Dataset::new`: the labels are checked `< 10` and the
        // pixels finite by construction, and skipping its scan saves a copy of the whole set.
        Ok(Dataset {
            images: Tensor::from_vec(x, (n, cfg.channels, orows, ocols), &Device::Cpu)?,
            labels: Tensor::from_vec(y, n, &Device::Cpu)?,
            classes: IDX_CLASSES,
        })
    };
    Ok(DataSplit {
        train: make(train_x, train.labels)?,
        test: make(test_x, test.labels)?,
    })
}

/// The first `n` images and labels of one split.
struct Split {
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
    labels: Vec<u32>,
}

fn read_split(images: &Path, labels: &Path, take: Option<usize>, key: &str) -> Result<Split> {
    let img = read_idx_images(images)?;
    let lab = read_idx_labels(labels)?;
    if lab.len() != img.count {
        return Err(Error::CorruptData {
            path: labels.display().to_string(),
            offset: 4,
            reason: format!(
                "the header declares {} labels but {} holds {} images",
                lab.len(),
                images.display(),
                img.count
            ),
        });
    }
    let n = match take {
        None => img.count,
        Some(n) if n <= img.count => n,
        Some(n) => {
            return Err(Error::config(
                key,
                format!("at most the {} images of {}", img.count, images.display()),
                format!("{n} images asked for, but it holds only {}", img.count),
            ))
        }
    };
    let mut pixels = img.pixels;
    pixels.truncate(n * img.rows * img.cols);
    Ok(Split {
        rows: img.rows,
        cols: img.cols,
        pixels,
        labels: lab[..n].iter().map(|&l| l as u32).collect(),
    })
}

/// Pixels of `split` scaled to `[0, 1]` and fitted, `(N, orows, ocols)` row-major.
fn fit_images(split: &Split, fit: &ImageFit, orows: usize, ocols: usize) -> Vec<f32> {
    let plane = split.rows * split.cols;
    let oplane = orows * ocols;
    let mut out = vec![0f32; split.labels.len() * oplane];
    let mut scaled = vec![0f32; plane];
    for (img, dst) in split
        .pixels
        .chunks_exact(plane)
        .zip(out.chunks_exact_mut(oplane))
    {
        for (s, &p) in scaled.iter_mut().zip(img) {
            *s = p as f32 / 255.0;
        }
        fit.apply(&scaled, split.rows, split.cols, dst, orows, ocols);
    }
    out
}

/// The four files [`load_idx`] reads for `cfg`, in [`IDX_FILES`] order (those found: a missing
/// one is left out; loading names it).
pub fn idx_files(cfg: &IdxConfig) -> Vec<PathBuf> {
    IDX_FILES
        .iter()
        .filter_map(|name| find_file(&cfg.dir, name, cfg.set).ok())
        .collect()
}

/// `dir/NAME`, `dir/NAME.gz`, or the same with `.idx` for `-idx`, whichever exists first.
fn find_file(dir: &Path, name: &str, set: IdxSet) -> Result<PathBuf> {
    let dotted = name.replacen("-idx", ".idx", 1);
    let candidates = [
        name.to_string(),
        format!("{name}.gz"),
        dotted.clone(),
        format!("{dotted}.gz"),
    ];
    candidates
        .iter()
        .map(|c| dir.join(c))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::io(
                dir.join(name),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "{} IDX file not found (looked for {name} and {name}.gz in {}): {}",
                        set.title(),
                        dir.display(),
                        set.hint()
                    ),
                ),
            )
        })
}

/// Big-endian u32 at `at` (the caller checked the length), as usize.
fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// The (decompressed) content of a file, with what is needed to report errors in it.
struct IdxBytes {
    path: PathBuf,
    gz: bool,
    bytes: Vec<u8>,
}

impl IdxBytes {
    /// Read `path`, decompressing it when its name ends in `.gz` or it starts with the gzip
    /// magic bytes `1f 8b` (an IDX file starts with two zero bytes).
    fn read(path: &Path) -> Result<Self> {
        let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let by_name = path.extension().is_some_and(|e| e == "gz");
        if !(by_name || raw.starts_with(&[0x1f, 0x8b])) {
            return Ok(IdxBytes {
                path: path.to_path_buf(),
                gz: false,
                bytes: raw,
            });
        }
        let corrupt = |offset: usize, reason: String| Error::CorruptData {
            path: path.display().to_string(),
            offset: offset as u64,
            reason,
        };
        if raw.is_empty() {
            return Err(corrupt(0, "empty gzip file".into()));
        }
        let mut decoder = flate2::bufread::MultiGzDecoder::new(&raw[..]);
        let mut bytes = Vec::with_capacity(raw.len().saturating_mul(2));
        if let Err(e) = decoder.read_to_end(&mut bytes) {
            let consumed = raw.len() - decoder.get_ref().len();
            return Err(corrupt(
                consumed,
                format!(
                    "corrupt or truncated gzip stream (the offset is in the compressed file, \
                     {} bytes decompressed before the error): {e}",
                    bytes.len()
                ),
            ));
        }
        Ok(IdxBytes {
            path: path.to_path_buf(),
            gz: true,
            bytes,
        })
    }

    /// [`Error::CorruptData`] at `offset` of the (decompressed) content.
    fn corrupt(&self, offset: usize, reason: String) -> Error {
        let reason = if self.gz {
            format!("{reason} (offset in the decompressed data)")
        } else {
            reason
        };
        Error::CorruptData {
            path: self.path.display().to_string(),
            offset: offset as u64,
            reason,
        }
    }

    /// Check the first 4 bytes are `magic`.
    fn check_magic(&self, magic: u32, what: &str) -> Result<()> {
        let got = be32(&self.bytes, 0) as u32;
        if got == magic {
            return Ok(());
        }
        let hint = match got {
            IDX_IMAGES_MAGIC => " (this is an IDX images file)",
            IDX_LABELS_MAGIC => " (this is an IDX labels file)",
            _ => "",
        };
        Err(self.corrupt(
            0,
            format!(
                "magic number {got} (0x{got:08x}) is not {magic} (0x{magic:08x}, IDX unsigned-byte {what}){hint}"
            ),
        ))
    }
}
