//! Data: the built-in synthetic image set, the CIFAR-10 binary loader, the MNIST /
//! Fashion-MNIST IDX loader, and batching with the paper's minimal augmentation (random crop of
//! the zero-padded image, random horizontal flip).
//!
//! Every data set is a [`Dataset`]: `(N, C, H, W)` f32 images on the CPU (`C = 3` for the
//! synthetic set and CIFAR-10, 1 by default for the grayscale IDX sets), normalised per
//! channel with the mean and standard deviation of the *training* split ([`ChannelStats`]),
//! and `(N,)` u32 labels. A [`DataSplit`] holds the train and test sets. Pick a source from a
//! string with [`parse_data_spec`] (`synthetic`, `synthetic:train=2000,size=16`,
//! `cifar10:DIR`, `fashion-mnist`, `fashion-mnist:DIR,train=10000,fit=pool2-pad16`,
//! `mnist:DIR`) and load it with [`DataSource::load`].
//!
//! Everything random (synthetic images, shuffling, augmentation) is drawn from seeded
//! [`crate::util::rng_for`] streams, so the same seed gives bit-for-bit the same tensors.

mod cifar;
mod idx;
mod synthetic;

pub use cifar::{load_cifar10, CIFAR10_CLASSES, CIFAR10_RECORD_BYTES};
pub use idx::{
    load_idx, read_idx_images, read_idx_labels, IdxConfig, IdxImages, IdxSet, ImageFit,
    FASHION_MNIST_DIR, FASHION_MNIST_INSTALL, IDX_CLASSES, IDX_FILES, IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
};
pub use synthetic::{synthetic, SyntheticConfig};

use crate::error::{Error, Result};
use crate::util::rng_for;
use candle_core::{DType, Device, Tensor};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A labelled image-classification set held in memory on the CPU.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// `(N, 3, H, W)` f32 images on the CPU, normalised per channel (train-split statistics).
    pub images: Tensor,
    /// `(N,)` u32 class indices, each `< classes`.
    pub labels: Tensor,
    /// Number of classes; labels are `0..classes`.
    pub classes: usize,
}

impl Dataset {
    /// A data set from `(N, C, H, W)` images (converted to f32 on the CPU) and `(N,)` labels
    /// (converted to u32). Errors: [`Error::ShapeMismatch`] for bad shapes,
    /// [`Error::Config`] for `classes == 0`, [`Error::Data`] for a label `>= classes`,
    /// [`Error::NonFinite`] for
    /// NaN or infinite pixels.
    pub fn new(images: Tensor, labels: Tensor, classes: usize) -> Result<Self> {
        let images = images.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
        let labels = labels.to_device(&Device::Cpu)?.to_dtype(DType::U32)?;
        let dims = images.dims().to_vec();
        if dims.len() != 4 {
            return Err(Error::ShapeMismatch {
                context: "Dataset images".into(),
                expected: "(N, C, H, W)".into(),
                got: dims,
            });
        }
        if labels.dims() != [dims[0]] {
            return Err(Error::ShapeMismatch {
                context: "Dataset labels".into(),
                expected: format!("({},)", dims[0]),
                got: labels.dims().to_vec(),
            });
        }
        if classes == 0 {
            return Err(Error::config("data set classes", "at least one class", 0));
        }
        if let Some(bad) = labels
            .to_vec1::<u32>()?
            .into_iter()
            .find(|&l| l as usize >= classes)
        {
            return Err(Error::data(
                "data set labels",
                format!("labels in 0..{classes} ({classes} classes)"),
                format!("label {bad}, out of range"),
            ));
        }
        let count = images
            .flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .filter(|v| !v.is_finite())
            .count();
        if count > 0 {
            return Err(Error::NonFinite {
                context: "Dataset images".into(),
                count,
            });
        }
        Ok(Dataset {
            images,
            labels,
            classes,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.dims1().unwrap_or(0)
    }

    /// True when the set holds no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(C, H, W)` of one image.
    pub fn image_dims(&self) -> (usize, usize, usize) {
        let d = self.images.dims();
        (d[1], d[2], d[3])
    }

    /// The first `min(n, len)` samples (shares storage with `self` where candle can).
    pub fn subset(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            images: self.images.narrow(0, 0, n).expect("narrow within bounds"),
            labels: self.labels.narrow(0, 0, n).expect("narrow within bounds"),
            classes: self.classes,
        }
    }

    /// Number of samples of each class (`classes` entries).
    pub fn class_counts(&self) -> Result<Vec<usize>> {
        let mut counts = vec![0usize; self.classes];
        for l in self.labels.to_vec1::<u32>()? {
            counts[l as usize] += 1;
        }
        Ok(counts)
    }

    /// All full batches of one epoch, as `(images (B, C, H, W) f32, labels (B,) u32)`.
    ///
    /// The last partial batch is dropped. With `shuffle_seed = Some(s)` the order is a
    /// permutation drawn from `s` (pass a different seed each epoch); with `None` it is the
    /// stored order. With `augment`, each image gets a random crop of its zero-padded version
    /// and (if enabled) a random horizontal flip, drawn from `shuffle_seed` (or 0 when
    /// `None`) on a stream independent of the shuffle. Errors: [`Error::Config`] when
    /// `batch_size` is 0 or larger than the data set. See [`Dataset::batch_iter`] for a lazy
    /// version that does not copy the whole epoch at once.
    pub fn batches(
        &self,
        batch_size: usize,
        shuffle_seed: Option<u64>,
        augment: Option<Augment>,
    ) -> Result<Vec<(Tensor, Tensor)>> {
        self.batch_iter(batch_size, shuffle_seed, augment)?
            .collect()
    }

    /// Lazy version of [`Dataset::batches`]: the same batches, in the same order, built one at
    /// a time.
    pub fn batch_iter(
        &self,
        batch_size: usize,
        shuffle_seed: Option<u64>,
        augment: Option<Augment>,
    ) -> Result<BatchIter> {
        if batch_size == 0 {
            return Err(Error::config("batch size", "at least 1", 0));
        }
        if batch_size > self.len() {
            let e = format!(
                "at most the data set's {} samples (a full batch)",
                self.len()
            );
            return Err(Error::config("batch size", e, batch_size));
        }
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        if let Some(seed) = shuffle_seed {
            order.shuffle(&mut rng_for(seed, "data/shuffle"));
        }
        let augment = augment.map(|a| (a, rng_for(shuffle_seed.unwrap_or(0), "data/augment")));
        Ok(BatchIter {
            data: self.clone(),
            order,
            batch_size,
            next: 0,
            augment,
        })
    }
}

/// The paper's minimal augmentation: a random `H x W` crop of the image zero-padded by
/// `crop_padding` pixels on each side (zero is the channel mean after normalisation), then a
/// random horizontal flip with probability 1/2 when `flip` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Augment {
    /// Zero padding on each side before the random crop (CIFAR convention: 4). 0 disables it.
    pub crop_padding: usize,
    /// Random horizontal flip.
    pub flip: bool,
}

impl Default for Augment {
    /// `crop_padding = 4`, `flip = true`.
    fn default() -> Self {
        Augment {
            crop_padding: 4,
            flip: true,
        }
    }
}

impl Augment {
    /// The augmented copy of a batch of images `(B, C, H, W)`, drawing from `rng`: for each
    /// image, the crop offsets `(dy, dx)` in `0..=2 * crop_padding` and then the flip.
    pub fn apply(&self, images: &Tensor, rng: &mut impl Rng) -> Result<Tensor> {
        let (b, c, h, w) = images.dims4()?;
        let src = images
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mut out = vec![0f32; src.len()];
        let p = self.crop_padding as isize;
        let plane = h * w;
        for n in 0..b {
            let dy = rng.gen_range(0..=2 * p) - p;
            let dx = rng.gen_range(0..=2 * p) - p;
            let flip = self.flip && rng.gen::<bool>();
            for ch in 0..c {
                let base = (n * c + ch) * plane;
                for i in 0..h {
                    let si = i as isize + dy;
                    if si < 0 || si >= h as isize {
                        continue;
                    }
                    for j in 0..w {
                        let jj = if flip { w - 1 - j } else { j };
                        let sj = jj as isize + dx;
                        if sj < 0 || sj >= w as isize {
                            continue;
                        }
                        out[base + i * w + j] = src[base + si as usize * w + sj as usize];
                    }
                }
            }
        }
        Ok(Tensor::from_vec(out, (b, c, h, w), images.device())?)
    }
}

/// Iterator over the full batches of one epoch (see [`Dataset::batches`]).
#[derive(Debug)]
pub struct BatchIter {
    data: Dataset,
    order: Vec<u32>,
    batch_size: usize,
    next: usize,
    augment: Option<(Augment, ChaCha8Rng)>,
}

impl BatchIter {
    fn batch(&mut self, start: usize) -> Result<(Tensor, Tensor)> {
        let idx = &self.order[start..start + self.batch_size];
        let idx = Tensor::from_slice(idx, idx.len(), &Device::Cpu)?;
        let mut x = self.data.images.index_select(&idx, 0)?;
        let y = self.data.labels.index_select(&idx, 0)?;
        if let Some((aug, rng)) = self.augment.as_mut() {
            x = aug.apply(&x, rng)?;
        }
        Ok((x, y))
    }
}

impl Iterator for BatchIter {
    type Item = Result<(Tensor, Tensor)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next + self.batch_size > self.order.len() {
            return None;
        }
        let start = self.next;
        self.next += self.batch_size;
        Some(self.batch(start))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.order.len() - self.next) / self.batch_size;
        (left, Some(left))
    }
}

impl ExactSizeIterator for BatchIter {}

/// A train and a test set with the same classes and image shape; both are normalised with
/// the train split's per-channel statistics.
#[derive(Debug, Clone)]
pub struct DataSplit {
    /// Training set.
    pub train: Dataset,
    /// Test set.
    pub test: Dataset,
}

impl DataSplit {
    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.train.classes
    }

    /// The first `train` training and first `test` test samples.
    pub fn subset(&self, train: usize, test: usize) -> DataSplit {
        DataSplit {
            train: self.train.subset(train),
            test: self.test.subset(test),
        }
    }
}

/// Per-channel mean and (population) standard deviation of a set of images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    /// Mean of each channel.
    pub mean: Vec<f64>,
    /// Standard deviation of each channel (never below `1e-8`, so normalising is safe).
    pub std: Vec<f64>,
}

impl ChannelStats {
    /// Statistics of `(N, C, H, W)` images, computed in f64.
    pub fn of(images: &Tensor) -> Result<Self> {
        let (n, c, h, w) = images.dims4()?;
        let data = images
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(Self::of_slice(&data, n, c, h * w))
    }

    /// Statistics of `n` images of `c` channels of `plane` pixels stored NCHW in `data`.
    pub(crate) fn of_slice(data: &[f32], n: usize, c: usize, plane: usize) -> Self {
        let mut sum = vec![0f64; c];
        let mut sq = vec![0f64; c];
        for img in data.chunks_exact(c * plane).take(n) {
            for (ch, px) in img.chunks_exact(plane).enumerate() {
                let (mut s, mut q) = (0f64, 0f64);
                for &v in px {
                    s += v as f64;
                    q += (v as f64) * (v as f64);
                }
                sum[ch] += s;
                sq[ch] += q;
            }
        }
        let count = (n * plane).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| (q / count - m * m).max(0.0).sqrt().max(1e-8))
            .collect();
        ChannelStats { mean, std }
    }

    /// Normalise NCHW `data` in place: `(x - mean_c) / std_c`.
    pub(crate) fn apply_slice(&self, data: &mut [f32], plane: usize) {
        let c = self.mean.len();
        for img in data.chunks_exact_mut(c * plane) {
            for (ch, px) in img.chunks_exact_mut(plane).enumerate() {
                let (m, s) = (self.mean[ch], self.std[ch]);
                for v in px {
                    *v = ((*v as f64 - m) / s) as f32;
                }
            }
        }
    }

    /// `(x - mean_c) / std_c` for `(N, C, H, W)` images.
    pub fn normalize(&self, images: &Tensor) -> Result<Tensor> {
        let (m, s) = self.broadcast(images)?;
        Ok(images.broadcast_sub(&m)?.broadcast_div(&s)?)
    }

    /// Inverse of [`ChannelStats::normalize`]: `x * std_c + mean_c`.
    pub fn denormalize(&self, images: &Tensor) -> Result<Tensor> {
        let (m, s) = self.broadcast(images)?;
        Ok(images.broadcast_mul(&s)?.broadcast_add(&m)?)
    }

    fn broadcast(&self, images: &Tensor) -> Result<(Tensor, Tensor)> {
        let c = self.mean.len();
        let shape = (1, c, 1, 1);
        let m = Tensor::from_vec(self.mean.clone(), shape, images.device())?
            .to_dtype(images.dtype())?;
        let s =
            Tensor::from_vec(self.std.clone(), shape, images.device())?.to_dtype(images.dtype())?;
        Ok((m, s))
    }
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataSource {
    /// The built-in synthetic set ([`synthetic`]).
    Synthetic(SyntheticConfig),
    /// CIFAR-10 in its binary format, in this directory ([`load_cifar10`]).
    Cifar10(PathBuf),
    /// MNIST or Fashion-MNIST in the IDX format, plain or gzipped ([`load_idx`]).
    Idx(IdxConfig),
}

impl DataSource {
    /// Generate or read the data.
    pub fn load(&self) -> Result<DataSplit> {
        match self {
            DataSource::Synthetic(cfg) => synthetic(cfg),
            DataSource::Cifar10(dir) => load_cifar10(dir),
            DataSource::Idx(cfg) => load_idx(cfg),
        }
    }

    /// The files the data is read from (none for the synthetic set), for the provenance of
    /// result files.
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            DataSource::Synthetic(_) => Vec::new(),
            DataSource::Cifar10(dir) => cifar::cifar10_files(dir),
            DataSource::Idx(cfg) => idx::idx_files(cfg),
        }
    }

    /// Channels of the images, known before loading: 3 (synthetic, CIFAR-10) or the IDX
    /// config's `channels`.
    pub fn channels(&self) -> usize {
        match self {
            DataSource::Synthetic(_) | DataSource::Cifar10(_) => 3,
            DataSource::Idx(cfg) => cfg.channels,
        }
    }

    /// A short description for logs and result files, e.g. `synthetic(seed=0, train=5000,
    /// test=1000, classes=10, size=32, noise=0.5)`, `cifar10(data/cifar)` or
    /// `fashion-mnist(/usr/share/datasets/fashion-mnist, train=10000, test=all, fit=pad32,
    /// channels=1)`.
    pub fn describe(&self) -> String {
        match self {
            DataSource::Synthetic(c) => format!(
                "synthetic(seed={}, train={}, test={}, classes={}, size={}, noise={})",
                c.seed, c.train, c.test, c.classes, c.size, c.noise
            ),
            DataSource::Cifar10(dir) => format!("cifar10({})", dir.display()),
            DataSource::Idx(cfg) => cfg.describe(),
        }
    }
}

const SPEC_FORMS: &str =
    "`synthetic`, `synthetic:KEY=VALUE,...` (keys: train, test, classes, size, noise, \
     contrast_jitter, colour_jitter, seed), `cifar10:DIR`, `fashion-mnist`, \
     `fashion-mnist:[DIR][,KEY=VALUE...]` or `mnist:DIR[,KEY=VALUE...]` (keys: train, test, \
     fit, channels, dir)";

const IDX_KEYS: &str = "train, test, fit, channels, dir";

/// Parse a data spec:
///
/// - `synthetic` (defaults of [`SyntheticConfig`] with `seed`), or
///   `synthetic:train=2000,test=500,size=16,noise=0.5` (any of the keys `train`, `test`,
///   `classes`, `size`, `noise`, `contrast_jitter`, `colour_jitter`, `seed`; the others keep
///   their defaults);
/// - `cifar10:DIR`;
/// - `fashion-mnist` (all of [`FASHION_MNIST_DIR`], the Debian package
///   `dataset-fashion-mnist`), `fashion-mnist:DIR`, `fashion-mnist:train=10000,fit=pad32` or
///   `fashion-mnist:DIR,train=10000,test=2000,fit=pool2-pad16`; `mnist:DIR[,KEY=VALUE...]`
///   likewise, but MNIST has no default directory. After the colon come comma-separated
///   items: the first may be the directory (an item without `=`), the rest are `KEY=VALUE`
///   with the keys `train=N|all` and `test=N|all` (the first N images of the file; default
///   all), `fit=none|padN|pool2|pool2-padN` ([`ImageFit`]; default `pad32`), `channels=1|3`
///   (default 1) and `dir=DIR` (for a directory whose name holds `=`; a name with `,` cannot
///   be given). See [`IdxConfig`].
///
/// Errors: [`Error::Unknown`] for another source or key, [`Error::Config`] for a bad value or
/// a missing directory.
pub fn parse_data_spec(spec: &str, seed: u64) -> Result<DataSource> {
    let spec = spec.trim();
    // The source name ends at the first `:` (`fashion-mnist:DIR,...`) or, for the sources that
    // take keys, at the first `,` (`fashion-mnist,train=10000`, `synthetic,size=16`).
    let (kind, rest) = match spec.find([':', ',']) {
        Some(i) if spec.as_bytes()[i] == b':' => (spec[..i].trim(), Some(&spec[i + 1..])),
        Some(i) if !spec[..i].trim().eq_ignore_ascii_case("cifar10") => {
            (spec[..i].trim(), Some(&spec[i..]))
        }
        _ => (spec, None),
    };
    match kind.to_ascii_lowercase().as_str() {
        "synthetic" => {
            let mut cfg = SyntheticConfig {
                seed,
                ..SyntheticConfig::default()
            };
            for item in rest
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let (key, value) = item.split_once('=').ok_or_else(|| {
                    Error::config(
                        format!("data spec `{spec}`"),
                        "KEY=VALUE",
                        format!("`{item}`"),
                    )
                })?;
                let (key, value) = (key.trim(), value.trim());
                let bad = |what: &str| {
                    Error::config(
                        format!("data spec `{spec}`: {key}"),
                        what,
                        format!("`{value}`"),
                    )
                };
                let int = || {
                    value
                        .parse::<usize>()
                        .map_err(|_| bad("a non-negative integer"))
                };
                let float = || value.parse::<f64>().map_err(|_| bad("a number"));
                match key {
                    "train" => cfg.train = int()?,
                    "test" => cfg.test = int()?,
                    "classes" => cfg.classes = int()?,
                    "size" => cfg.size = int()?,
                    "noise" => cfg.noise = float()?,
                    "contrast_jitter" => cfg.contrast_jitter = float()?,
                    "colour_jitter" | "color_jitter" => cfg.colour_jitter = float()?,
                    "seed" => cfg.seed = value.parse::<u64>().map_err(|_| bad("a non-negative integer"))?,
                    _ => {
                        return Err(Error::Unknown {
                            kind: "synthetic data option",
                            got: key.to_string(),
                            expected: "train, test, classes, size, noise, contrast_jitter, colour_jitter, seed".into(),
                        })
                    }
                }
            }
            cfg.validate()?;
            Ok(DataSource::Synthetic(cfg))
        }
        "fashion-mnist" | "fashion_mnist" | "fashionmnist" => {
            parse_idx_spec(spec, IdxSet::FashionMnist, rest)
        }
        "mnist" => parse_idx_spec(spec, IdxSet::Mnist, rest),
        "cifar10" | "cifar-10" => {
            let dir = rest.map(str::trim).unwrap_or("");
            if dir.is_empty() {
                return Err(Error::config(
                    format!("data spec `{spec}`"),
                    "a directory for cifar10, e.g. `cifar10:data/cifar-10-batches-bin`",
                    "none",
                ));
            }
            Ok(DataSource::Cifar10(PathBuf::from(dir)))
        }
        _ => Err(Error::Unknown {
            kind: "data source",
            got: spec.to_string(),
            expected: SPEC_FORMS.into(),
        }),
    }
}

/// The part of [`parse_data_spec`] after `mnist:` or `fashion-mnist:`.
fn parse_idx_spec(spec: &str, set: IdxSet, rest: Option<&str>) -> Result<DataSource> {
    let mut cfg = IdxConfig::new(set, PathBuf::new());
    let mut dir: Option<PathBuf> = None;
    let items = rest.unwrap_or("").split(',').map(str::trim).enumerate();
    for (i, item) in items.filter(|(_, s)| !s.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            if i == 0 {
                dir = Some(PathBuf::from(item));
                continue;
            }
            return Err(Error::config(
                format!("data spec `{spec}`"),
                format!(
                    "KEY=VALUE (the directory, if any, comes first: `{}:DIR,KEY=VALUE,...`)",
                    set.name()
                ),
                format!("`{item}`"),
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        let bad = |what: &str| {
            Error::config(
                format!("data spec `{spec}`: {key}"),
                what,
                format!("`{value}`"),
            )
        };
        let count = || -> Result<Option<usize>> {
            if value.eq_ignore_ascii_case("all") {
                return Ok(None);
            }
            match value.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(bad("a positive integer or `all`")),
            }
        };
        match key {
            "train" => cfg.train = count()?,
            "test" => cfg.test = count()?,
            "fit" => cfg.fit = ImageFit::parse(value)?,
            "channels" => {
                cfg.channels = match value {
                    "1" => 1,
                    "3" => 3,
                    _ => return Err(bad("1 or 3")),
                }
            }
            "dir" => {
                if dir.is_some() {
                    let c = format!("data spec `{spec}`: directory");
                    return Err(Error::config(c, "at most one", "two"));
                }
                if value.is_empty() {
                    return Err(bad("a directory"));
                }
                dir = Some(PathBuf::from(value));
            }
            _ => {
                return Err(Error::Unknown {
                    kind: "IDX data option",
                    got: key.to_string(),
                    expected: IDX_KEYS.into(),
                })
            }
        }
    }
    cfg.dir = dir.or_else(|| set.default_dir()).ok_or_else(|| {
        Error::config(
            format!("data spec `{spec}`"),
            format!(
                "a directory for {}, e.g. `{}:data/mnist` (holding {})",
                set.name(),
                set.name(),
                IDX_FILES.join(", ")
            ),
            "none",
        )
    })?;
    cfg.validate()?;
    Ok(DataSource::Idx(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_stats_normalise_and_invert() {
        let data: Vec<f32> = (0..2 * 3 * 4).map(|v| (v * v % 7) as f32).collect();
        let x = Tensor::from_vec(data.clone(), (2, 3, 2, 2), &Device::Cpu).unwrap();
        let stats = ChannelStats::of(&x).unwrap();
        let z = stats.normalize(&x).unwrap();
        let zs = ChannelStats::of(&z).unwrap();
        for c in 0..3 {
            assert!(
                zs.mean[c].abs() < 1e-6 && (zs.std[c] - 1.0).abs() < 1e-5,
                "{zs:?}"
            );
        }
        let mut inplace = data.clone();
        stats.apply_slice(&mut inplace, 4);
        let zv = z.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(inplace.iter().zip(&zv).all(|(a, b)| (a - b).abs() < 1e-5));
        let back = stats
            .denormalize(&z)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(back.iter().zip(&data).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn constant_channels_do_not_divide_by_zero() {
        let x = Tensor::ones((3, 3, 2, 2), DType::F32, &Device::Cpu).unwrap();
        let z = ChannelStats::of(&x).unwrap().normalize(&x).unwrap();
        assert!(z
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .all(|v| *v == 0.0));
    }
}
