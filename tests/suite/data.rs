//! Integration tests of `revstab::data`: the synthetic set, batching and augmentation, the
//! CIFAR-10 binary loader and the data spec parser.

use candle_core::{Device, Tensor};
use revstab::data::*;
use revstab::Error;
use std::path::Path;

fn small_cfg(seed: u64) -> SyntheticConfig {
    SyntheticConfig {
        seed,
        train: 400,
        test: 200,
        size: 16,
        ..SyntheticConfig::default()
    }
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn labels(t: &Tensor) -> Vec<u32> {
    t.to_vec1::<u32>().unwrap()
}

// ---------------------------------------------------------------- synthetic set

#[test]
fn synthetic_is_reproducible_and_seed_dependent() {
    let a = synthetic(&small_cfg(7)).unwrap();
    let b = synthetic(&small_cfg(7)).unwrap();
    let c = synthetic(&small_cfg(8)).unwrap();
    assert_eq!(flat(&a.train.images), flat(&b.train.images));
    assert_eq!(flat(&a.test.images), flat(&b.test.images));
    assert_eq!(labels(&a.train.labels), labels(&b.train.labels));
    assert_ne!(flat(&a.train.images), flat(&c.train.images));
    assert_ne!(flat(&a.test.images), flat(&c.test.images));
    // Train and test come from different streams.
    let tr = a.train.subset(10);
    let te = a.test.subset(10);
    assert_ne!(flat(&tr.images), flat(&te.images));
}

#[test]
fn synthetic_shapes_balance_and_normalisation() {
    let cfg = SyntheticConfig {
        seed: 3,
        train: 1000,
        test: 250,
        ..SyntheticConfig::default()
    };
    let split = synthetic(&cfg).unwrap();
    assert_eq!(split.train.images.dims(), &[1000, 3, 32, 32]);
    assert_eq!(split.test.images.dims(), &[250, 3, 32, 32]);
    assert_eq!(split.train.labels.dims(), &[1000]);
    assert_eq!(split.train.classes, 10);
    assert_eq!(split.classes(), 10);
    assert_eq!(split.train.len(), 1000);
    assert!(!split.train.is_empty());
    assert_eq!(split.train.class_counts().unwrap(), vec![100; 10]);
    for &n in &split.test.class_counts().unwrap() {
        assert!(
            n == 25,
            "test counts {:?}",
            split.test.class_counts().unwrap()
        );
    }
    // Normalised with the train split's statistics: mean 0, std 1 per channel on train.
    let stats = ChannelStats::of(&split.train.images).unwrap();
    for c in 0..3 {
        assert!(stats.mean[c].abs() < 1e-4, "{stats:?}");
        assert!((stats.std[c] - 1.0).abs() < 1e-3, "{stats:?}");
    }
    let test_stats = ChannelStats::of(&split.test.images).unwrap();
    for c in 0..3 {
        assert!(
            test_stats.mean[c].abs() < 0.2 && (test_stats.std[c] - 1.0).abs() < 0.2,
            "{test_stats:?}"
        );
    }
    // Configurable size and class count.
    let s = synthetic(&SyntheticConfig {
        classes: 4,
        size: 8,
        train: 8,
        test: 4,
        ..SyntheticConfig::default()
    })
    .unwrap();
    assert_eq!(s.train.images.dims(), &[8, 3, 8, 8]);
    assert_eq!(s.train.class_counts().unwrap(), vec![2; 4]);
}

/// Nearest-centroid accuracy on the test set of features `f` (one row per image).
fn nearest_centroid(
    train: &[Vec<f64>],
    ytr: &[u32],
    test: &[Vec<f64>],
    yte: &[u32],
    k: usize,
) -> f64 {
    let d = train[0].len();
    let mut cent = vec![vec![0f64; d]; k];
    let mut count = vec![0f64; k];
    for (f, &y) in train.iter().zip(ytr) {
        count[y as usize] += 1.0;
        for (c, v) in cent[y as usize].iter_mut().zip(f) {
            *c += v;
        }
    }
    for (c, n) in cent.iter_mut().zip(&count) {
        c.iter_mut().for_each(|v| *v /= n.max(1.0));
    }
    let correct = test
        .iter()
        .zip(yte)
        .filter(|(f, &y)| {
            let dist = |c: &Vec<f64>| {
                c.iter()
                    .zip(f.iter())
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
            };
            let best = (0..k)
                .min_by(|&a, &b| dist(&cent[a]).total_cmp(&dist(&cent[b])))
                .unwrap();
            best == y as usize
        })
        .count();
    correct as f64 / test.len() as f64
}

fn rows(images: &Tensor) -> Vec<Vec<f64>> {
    let n = images.dim(0).unwrap();
    let v = flat(images);
    v.chunks_exact(v.len() / n)
        .map(|r| r.iter().map(|&x| x as f64).collect())
        .collect()
}

#[test]
fn synthetic_is_not_trivially_separable() {
    let cfg = SyntheticConfig {
        seed: 11,
        train: 2000,
        test: 1000,
        size: 16,
        ..SyntheticConfig::default()
    };
    let split = synthetic(&cfg).unwrap();
    let (ytr, yte) = (labels(&split.train.labels), labels(&split.test.labels));
    // Per-image mean colour: class-independent by construction.
    let mean_colour = |images: &Tensor| -> Vec<Vec<f64>> {
        rows(images)
            .into_iter()
            .map(|r| {
                r.chunks_exact(r.len() / 3)
                    .map(|c| c.iter().sum::<f64>() / c.len() as f64)
                    .collect()
            })
            .collect()
    };
    let acc_colour = nearest_centroid(
        &mean_colour(&split.train.images),
        &ytr,
        &mean_colour(&split.test.images),
        &yte,
        10,
    );
    // Raw pixels: every class has the same mean image (random phases), so class means are
    // noise.
    let acc_pixels = nearest_centroid(
        &rows(&split.train.images),
        &ytr,
        &rows(&split.test.images),
        &yte,
        10,
    );
    eprintln!(
        "nearest-centroid test accuracy: mean colour {acc_colour:.3}, raw pixels {acc_pixels:.3}"
    );
    assert!(
        acc_colour < 0.16,
        "mean colour separates the classes: {acc_colour}"
    );
    assert!(
        acc_pixels < 0.2,
        "raw-pixel class means separate the classes: {acc_pixels}"
    );
}

/// Log power of each image in 10 orientation x 2 frequency bins, for 5 colour combinations of
/// the channels (R, G, B, R - G, R + G - 2B): second-order features, computed with a DFT by
/// matrix product. Images are `(N, 3, 16, 16)`.
fn band_energies(images: &Tensor) -> Vec<Vec<f64>> {
    let (n, _, s, _) = images.dims4().unwrap();
    let w = |c: usize| images.narrow(1, c, 1).unwrap().flatten_from(1).unwrap();
    let (r, g, b) = (w(0), w(1), w(2));
    let rg = (&r - &g).unwrap();
    let by = ((&r + &g).unwrap() - (&b * 2.0).unwrap()).unwrap();
    let x = Tensor::cat(&[&r, &g, &b, &rg, &by], 0).unwrap(); // (5N, s*s)
    let (mut cos, mut sin) = (vec![0f32; s * s * s * s], vec![0f32; s * s * s * s]);
    let mut bin = vec![usize::MAX; s * s];
    for u in 0..s {
        for v in 0..s {
            let (fu, fv) = (
                (u as f64 + s as f64 / 2.0) % s as f64 - s as f64 / 2.0,
                (v as f64 + s as f64 / 2.0) % s as f64 - s as f64 / 2.0,
            );
            let radius = (fu * fu + fv * fv).sqrt();
            let band = if (1.5..3.1).contains(&radius) {
                0
            } else if (3.1..5.5).contains(&radius) {
                1
            } else {
                2
            };
            if band < 2 {
                let angle = fu.atan2(fv).rem_euclid(std::f64::consts::PI);
                bin[u * s + v] =
                    band * 10 + ((angle / std::f64::consts::PI * 10.0) as usize).min(9);
            }
            for i in 0..s {
                for j in 0..s {
                    let ph = 2.0 * std::f64::consts::PI * (u * i + v * j) as f64 / s as f64;
                    cos[(i * s + j) * s * s + u * s + v] = ph.cos() as f32;
                    sin[(i * s + j) * s * s + u * s + v] = ph.sin() as f32;
                }
            }
        }
    }
    let dev = &Device::Cpu;
    let re = x
        .matmul(&Tensor::from_vec(cos, (s * s, s * s), dev).unwrap())
        .unwrap();
    let im = x
        .matmul(&Tensor::from_vec(sin, (s * s, s * s), dev).unwrap())
        .unwrap();
    let power = flat(&(re.sqr().unwrap() + im.sqr().unwrap()).unwrap());
    (0..n)
        .map(|k| {
            let mut f = vec![1e-6f64; 5 * 20];
            for combo in 0..5 {
                let row = &power[(combo * n + k) * s * s..(combo * n + k + 1) * s * s];
                for (p, &bn) in row.iter().zip(&bin) {
                    if bn != usize::MAX {
                        f[combo * 20 + bn] += *p as f64;
                    }
                }
            }
            f.iter().map(|v| v.ln()).collect()
        })
        .collect()
}

#[test]
fn synthetic_is_learnable_from_second_order_features() {
    // Positive control: the class is in oriented, colour-dependent band energy, which a fixed
    // quadratic feature map plus nearest centroid already reads well above chance.
    let cfg = SyntheticConfig {
        seed: 12,
        train: 1000,
        test: 500,
        size: 16,
        ..SyntheticConfig::default()
    };
    let split = synthetic(&cfg).unwrap();
    let (ytr, yte) = (labels(&split.train.labels), labels(&split.test.labels));
    let acc = nearest_centroid(
        &band_energies(&split.train.images),
        &ytr,
        &band_energies(&split.test.images),
        &yte,
        10,
    );
    eprintln!("nearest-centroid test accuracy on band energies: {acc:.3}");
    assert!(
        acc > 0.3,
        "second-order features do not separate the classes: {acc}"
    );
}

#[test]
fn synthetic_rejects_bad_configs() {
    for cfg in [
        SyntheticConfig {
            noise: f64::NAN,
            ..small_cfg(0)
        },
        SyntheticConfig {
            noise: -1.0,
            ..small_cfg(0)
        },
        SyntheticConfig {
            classes: 1,
            ..small_cfg(0)
        },
        SyntheticConfig {
            size: 2,
            ..small_cfg(0)
        },
        SyntheticConfig {
            train: 0,
            ..small_cfg(0)
        },
        SyntheticConfig {
            contrast_jitter: 1.5,
            ..small_cfg(0)
        },
    ] {
        assert!(
            matches!(synthetic(&cfg), Err(Error::Config { .. })),
            "{cfg:?}"
        );
    }
}

// ---------------------------------------------------------------- Dataset, batches, augment

/// `n` images of `3 x h x w`, every pixel of image `i` equal to `i`, labels `i % classes`.
fn indexed(n: usize, h: usize, w: usize, classes: usize) -> Dataset {
    let x: Vec<f32> = (0..n)
        .flat_map(|i| std::iter::repeat_n(i as f32, 3 * h * w))
        .collect();
    let y: Vec<u32> = (0..n).map(|i| (i % classes) as u32).collect();
    Dataset::new(
        Tensor::from_vec(x, (n, 3, h, w), &Device::Cpu).unwrap(),
        Tensor::from_vec(y, n, &Device::Cpu).unwrap(),
        classes,
    )
    .unwrap()
}

/// The image indices of an epoch (first pixel of each image).
fn epoch_order(ds: &Dataset, bs: usize, seed: Option<u64>) -> Vec<usize> {
    let mut order = Vec::new();
    for (x, y) in ds.batches(bs, seed, None).unwrap() {
        assert_eq!(x.dims(), &[bs, 3, 2, 2]);
        assert_eq!(y.dims(), &[bs]);
        let plane = 3 * 2 * 2;
        let xs = flat(&x);
        for (k, &label) in labels(&y).iter().enumerate() {
            let i = xs[k * plane] as usize;
            assert_eq!(
                label as usize,
                i % ds.classes,
                "label travels with its image"
            );
            order.push(i);
        }
    }
    order
}

#[test]
fn batches_cover_the_data_once_and_shuffle_is_seeded() {
    let ds = indexed(23, 2, 2, 5);
    // Unshuffled: the stored order, last partial batch dropped.
    assert_eq!(epoch_order(&ds, 5, None), (0..20).collect::<Vec<_>>());
    // Shuffled: 4 full batches of distinct images, reproducible from the seed.
    let a = epoch_order(&ds, 5, Some(1));
    assert_eq!(a.len(), 20);
    let mut sorted = a.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 20, "an image appears twice in one epoch");
    assert_eq!(a, epoch_order(&ds, 5, Some(1)));
    assert_ne!(a, epoch_order(&ds, 5, Some(2)));
    // Batch size equal to the set: one batch with everything.
    let mut all = epoch_order(&ds, 23, Some(3));
    all.sort();
    assert_eq!(all, (0..23).collect::<Vec<_>>());
    // The lazy iterator gives the same batches.
    let it = ds.batch_iter(5, Some(1), None).unwrap();
    assert_eq!(it.len(), 4);
    let lazy: Vec<usize> = it
        .flat_map(|b| {
            labels(&b.unwrap().1)
                .into_iter()
                .map(|l| l as usize)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lazy, a.iter().map(|i| i % 5).collect::<Vec<_>>());
    assert!(matches!(
        ds.batches(0, None, None),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        ds.batches(24, None, None),
        Err(Error::Config { .. })
    ));
}

#[test]
fn subset_takes_the_first_samples() {
    let ds = indexed(10, 2, 2, 3);
    let s = ds.subset(4);
    assert_eq!(s.len(), 4);
    assert_eq!(labels(&s.labels), vec![0, 1, 2, 0]);
    assert_eq!(flat(&s.images)[3 * 4 * 3], 3.0);
    assert_eq!(ds.subset(100).len(), 10);
    assert!(ds.subset(0).is_empty());
}

#[test]
fn dataset_rejects_nan_and_bad_labels() {
    let mut x = vec![0f32; 2 * 3 * 4 * 4];
    x[17] = f32::NAN;
    let images = Tensor::from_vec(x, (2, 3, 4, 4), &Device::Cpu).unwrap();
    let y = Tensor::from_vec(vec![0u32, 1], 2, &Device::Cpu).unwrap();
    assert!(matches!(
        Dataset::new(images, y.clone(), 2),
        Err(Error::NonFinite { count: 1, .. })
    ));
    let ok = Tensor::zeros((2, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        Dataset::new(ok.clone(), y.clone(), 1),
        Err(Error::Data { .. })
    ));
    assert!(matches!(
        Dataset::new(ok.clone(), y.narrow(0, 0, 1).unwrap(), 2),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(Dataset::new(ok, y, 2).is_ok());
}

/// `img` (c, h, w) cropped at offset `(dy, dx)` of its `p`-padded version, then flipped.
fn crop_flip(
    img: &[f32],
    (c, h, w): (usize, usize, usize),
    p: usize,
    (dy, dx, flip): (usize, usize, bool),
) -> Vec<f32> {
    let mut out = vec![0f32; img.len()];
    for ch in 0..c {
        for i in 0..h {
            for j in 0..w {
                let jj = if flip { w - 1 - j } else { j };
                let (si, sj) = (i + dy, jj + dx);
                if si >= p && si - p < h && sj >= p && sj - p < w {
                    out[(ch * h + i) * w + j] = img[(ch * h + si - p) * w + sj - p];
                }
            }
        }
    }
    out
}

#[test]
fn augmentation_keeps_shapes_is_seeded_and_is_a_crop_and_flip() {
    let (n, h, w) = (12, 6, 6);
    let x: Vec<f32> = (0..n * 3 * h * w).map(|v| 1.0 + v as f32).collect();
    let y: Vec<u32> = vec![0; n];
    let ds = Dataset::new(
        Tensor::from_vec(x.clone(), (n, 3, h, w), &Device::Cpu).unwrap(),
        Tensor::from_vec(y, n, &Device::Cpu).unwrap(),
        1,
    )
    .unwrap();
    let aug = Augment {
        crop_padding: 2,
        flip: true,
    };
    assert_eq!(
        Augment::default(),
        Augment {
            crop_padding: 4,
            flip: true
        }
    );
    let a = ds.batches(n, None, Some(aug)).unwrap();
    let b = ds.batches(n, None, Some(aug)).unwrap();
    let c = ds.batches(n, Some(5), Some(aug)).unwrap();
    assert_eq!(a[0].0.dims(), &[n, 3, h, w]);
    assert_eq!(flat(&a[0].0), flat(&b[0].0));
    assert_ne!(flat(&a[0].0), flat(&c[0].0));
    // Each augmented image is exactly one crop + optional flip of its source.
    let out = flat(&a[0].0);
    let plane = 3 * h * w;
    let mut flips = 0;
    let mut shifted = 0;
    for k in 0..n {
        let src = &x[k * plane..(k + 1) * plane];
        let got = &out[k * plane..(k + 1) * plane];
        let found = (0..=4)
            .flat_map(|dy| (0..=4).flat_map(move |dx| [false, true].map(|f| (dy, dx, f))))
            .find(|&(dy, dx, f)| crop_flip(src, (3, h, w), 2, (dy, dx, f)) == got);
        let (dy, dx, f) =
            found.unwrap_or_else(|| panic!("image {k} is not a crop/flip of its source"));
        flips += f as usize;
        shifted += (dy != 2 || dx != 2) as usize;
    }
    assert!(flips > 0 && flips < n, "flips {flips} of {n}");
    assert!(shifted > 0);
    // No padding and no flip: identity.
    let id = ds
        .batches(
            n,
            Some(9),
            Some(Augment {
                crop_padding: 0,
                flip: false,
            }),
        )
        .unwrap();
    let plain = ds.batches(n, Some(9), None).unwrap();
    assert_eq!(flat(&id[0].0), flat(&plain[0].0));
}

// ---------------------------------------------------------------- CIFAR-10

const REC: usize = 3073;

/// The test pattern: pixel byte `(c, i, j)` of record `seed`.
fn pixel(seed: usize, c: usize, i: usize, j: usize) -> u8 {
    ((seed * 7 + c * 31 + i * 3 + j) % 256) as u8
}

/// A record with `label` and pixel bytes [`pixel`]`(seed, ..)`.
fn record(label: u8, seed: usize) -> Vec<u8> {
    let mut r = vec![label];
    for c in 0..3 {
        for i in 0..32 {
            for j in 0..32 {
                r.push(pixel(seed, c, i, j));
            }
        }
    }
    r
}

fn write_records(path: &Path, recs: &[(u8, usize)]) {
    let bytes: Vec<u8> = recs.iter().flat_map(|&(l, s)| record(l, s)).collect();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn cifar_loader_reads_the_binary_format() {
    let dir = tempfile::tempdir().unwrap();
    write_records(
        &dir.path().join("data_batch_1.bin"),
        &[(3, 0), (9, 1), (0, 2)],
    );
    write_records(
        &dir.path().join("data_batch_3.bin"),
        &[(5, 3), (1, 4), (7, 5)],
    );
    write_records(&dir.path().join("test_batch.bin"), &[(2, 6), (4, 7)]);
    let split = load_cifar10(dir.path()).unwrap();
    assert_eq!(split.train.images.dims(), &[6, 3, 32, 32]);
    assert_eq!(split.test.images.dims(), &[2, 3, 32, 32]);
    assert_eq!(labels(&split.train.labels), vec![3, 9, 0, 5, 1, 7]);
    assert_eq!(labels(&split.test.labels), vec![2, 4]);
    assert_eq!(split.train.classes, 10);

    // Expected normalisation: per-channel mean/std of the raw train pixels in [0, 1].
    let raw: Vec<Vec<u8>> = (0..6).map(|s| record(0, s)[1..].to_vec()).collect();
    let mut mean = [0f64; 3];
    let mut sq = [0f64; 3];
    for r in &raw {
        for (k, &p) in r.iter().enumerate() {
            let v = p as f64 / 255.0;
            mean[k / 1024] += v;
            sq[k / 1024] += v * v;
        }
    }
    let count = 6.0 * 1024.0;
    let std: Vec<f64> = (0..3)
        .map(|c| (sq[c] / count - (mean[c] / count).powi(2)).sqrt())
        .collect();
    let mean: Vec<f64> = mean.iter().map(|m| m / count).collect();
    let stats = ChannelStats { mean, std };
    let back = flat(&stats.denormalize(&split.train.images).unwrap());
    let test_back = flat(&stats.denormalize(&split.test.images).unwrap());
    for (img, s) in [(0usize, 0usize), (4, 4)] {
        for (c, i, j) in [(0, 0, 0), (1, 5, 7), (2, 31, 31), (0, 17, 3)] {
            let want = pixel(s, c, i, j) as f64 / 255.0;
            let got = back[img * 3072 + c * 1024 + i * 32 + j] as f64;
            assert!(
                (got - want).abs() < 1e-5,
                "train image {img} c{c} ({i},{j}): {got} vs {want}"
            );
        }
    }
    let want = pixel(7, 2, 3, 4) as f64 / 255.0;
    assert!((test_back[3072 + 2 * 1024 + 3 * 32 + 4] as f64 - want).abs() < 1e-5);
}

#[test]
fn cifar_loader_finds_the_official_subdirectory() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&sub).unwrap();
    write_records(&sub.join("data_batch_2.bin"), &[(1, 0)]);
    write_records(&sub.join("test_batch.bin"), &[(2, 1)]);
    let split = load_cifar10(dir.path()).unwrap();
    assert_eq!(split.train.len(), 1);
    assert_eq!(split.test.len(), 1);
}

#[test]
fn cifar_loader_rejects_truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    let mut bytes: Vec<u8> = [(1, 0), (2, 1)]
        .iter()
        .flat_map(|&(l, s)| record(l, s))
        .collect();
    bytes.extend(&record(3, 2)[..100]);
    std::fs::write(&path, bytes).unwrap();
    write_records(&dir.path().join("test_batch.bin"), &[(2, 6)]);
    let err = load_cifar10(dir.path()).unwrap_err();
    match &err {
        Error::CorruptData { path, offset, .. } => {
            assert!(path.ends_with("data_batch_1.bin"), "{path}");
            assert_eq!(*offset, 2 * REC as u64);
        }
        other => panic!("expected CorruptData, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("data_batch_1.bin") && msg.contains("6146"),
        "{msg}"
    );
}

#[test]
fn cifar_loader_rejects_bad_labels() {
    let dir = tempfile::tempdir().unwrap();
    write_records(&dir.path().join("data_batch_1.bin"), &[(1, 0)]);
    write_records(&dir.path().join("test_batch.bin"), &[(2, 0), (10, 1)]);
    match load_cifar10(dir.path()).unwrap_err() {
        Error::CorruptData {
            path,
            offset,
            reason,
        } => {
            assert!(path.ends_with("test_batch.bin"), "{path}");
            assert_eq!(offset, REC as u64);
            assert!(reason.contains("10"), "{reason}");
        }
        other => panic!("expected CorruptData, got {other:?}"),
    }
}

#[test]
fn cifar_loader_names_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    // No training batch at all.
    write_records(&dir.path().join("test_batch.bin"), &[(2, 0)]);
    let msg = load_cifar10(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("data_batch_1.bin"), "{msg}");
    // Training batch but no test batch.
    std::fs::remove_file(dir.path().join("test_batch.bin")).unwrap();
    write_records(&dir.path().join("data_batch_4.bin"), &[(2, 0)]);
    let msg = load_cifar10(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("test_batch.bin"), "{msg}");
    // Missing directory.
    let missing = dir.path().join("nope");
    let msg = load_cifar10(&missing).unwrap_err().to_string();
    assert!(msg.contains("nope"), "{msg}");
    // Empty file.
    std::fs::write(dir.path().join("test_batch.bin"), b"").unwrap();
    assert!(matches!(
        load_cifar10(dir.path()),
        Err(Error::CorruptData { offset: 0, .. })
    ));
}

// ---------------------------------------------------------------- data specs

#[test]
fn data_specs_parse() {
    match parse_data_spec("synthetic", 42).unwrap() {
        DataSource::Synthetic(cfg) => {
            assert_eq!(
                cfg,
                SyntheticConfig {
                    seed: 42,
                    ..SyntheticConfig::default()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    match parse_data_spec("synthetic:train=64, test=32,size=16,noise=0.25", 1).unwrap() {
        DataSource::Synthetic(cfg) => {
            assert_eq!(
                (cfg.seed, cfg.train, cfg.test, cfg.size, cfg.noise),
                (1, 64, 32, 16, 0.25)
            );
            assert_eq!(cfg.classes, 10);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse_data_spec("cifar10:/data/cifar", 0).unwrap(),
        DataSource::Cifar10("/data/cifar".into())
    );
    assert!(matches!(
        parse_data_spec("imagenet", 0),
        Err(Error::Unknown { .. })
    ));
    assert!(matches!(
        parse_data_spec("synthetic:depth=3", 0),
        Err(Error::Unknown { .. })
    ));
    assert!(matches!(
        parse_data_spec("synthetic:train=x", 0),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        parse_data_spec("synthetic:size=3", 0),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        parse_data_spec("cifar10:", 0),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        parse_data_spec("cifar10", 0),
        Err(Error::Config { .. })
    ));
}

#[test]
fn data_source_loads() {
    let src = parse_data_spec("synthetic:train=20,test=10,size=8", 5).unwrap();
    let split = src.load().unwrap();
    assert_eq!(split.train.images.dims(), &[20, 3, 8, 8]);
    assert_eq!(split.test.len(), 10);
    assert!(src.describe().starts_with("synthetic(seed=5"));
    let direct = synthetic(&SyntheticConfig {
        seed: 5,
        train: 20,
        test: 10,
        size: 8,
        ..SyntheticConfig::default()
    });
    assert_eq!(
        flat(&split.train.images),
        flat(&direct.unwrap().train.images)
    );
    let missing = DataSource::Cifar10("/definitely/not/here".into())
        .load()
        .unwrap_err();
    assert!(missing.to_string().contains("/definitely/not/here"));
}
