//! Integration tests of the MNIST / Fashion-MNIST IDX loader (`revstab::data::load_idx` and the
//! `mnist:` / `fashion-mnist:` data specs). Every test writes its own small IDX files (5 train
//! and 3 test images of 28x28, plain or gzipped) into a temporary directory: nothing depends on
//! the Debian package `dataset-fashion-mnist` being installed.

use flate2::write::GzEncoder;
use flate2::Compression;
use revstab::data::*;
use revstab::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

const R: usize = 28;
const TRAIN_LABELS: [u8; 5] = [3, 9, 0, 5, 1];
const TEST_LABELS: [u8; 3] = [2, 7, 4];

/// Pixel `(i, j)` of image `n` (test images use `n = 100 + k`): distinct, all 256 values seen.
fn px(n: usize, i: usize, j: usize) -> u8 {
    ((n * 37 + i * 11 + j * 5 + i * j) % 256) as u8
}

fn images_file(ids: &[usize], rows: usize, cols: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [2051u32, ids.len() as u32, rows as u32, cols as u32] {
        b.extend(v.to_be_bytes());
    }
    for &n in ids {
        b.extend((0..rows * cols).map(|k| px(n, k / cols, k % cols)));
    }
    b
}

fn labels_file(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(2049u32.to_be_bytes());
    b.extend((labels.len() as u32).to_be_bytes());
    b.extend(labels);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

const TRAIN_IDS: [usize; 5] = [0, 1, 2, 3, 4];
const TEST_IDS: [usize; 3] = [100, 101, 102];

/// The four files' contents, in `IDX_FILES` order.
fn contents() -> [Vec<u8>; 4] {
    [
        images_file(&TRAIN_IDS, R, R),
        labels_file(&TRAIN_LABELS),
        images_file(&TEST_IDS, R, R),
        labels_file(&TEST_LABELS),
    ]
}

/// Write `files` (in `IDX_FILES` order) into `dir`, gzipped (with `.gz`) or plain.
fn write_files(dir: &Path, files: &[Vec<u8>; 4], gz: bool) {
    for (name, bytes) in IDX_FILES.iter().zip(files) {
        if gz {
            std::fs::write(dir.join(format!("{name}.gz")), gzip(bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

fn set_dir(gz: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &contents(), gz);
    dir
}

fn load(spec: &str) -> revstab::Result<DataSplit> {
    parse_data_spec(spec, 0)?.load()
}

fn flat(t: &candle_core::Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn labels(t: &candle_core::Tensor) -> Vec<u32> {
    t.to_vec1::<u32>().unwrap()
}

/// Expected fitted pixels in `[0, 1]` (one plane per image), written out with plain index
/// arithmetic: `pool` averages 2x2 blocks, then the image sits at `(top, left)` of an
/// `out x out` black canvas.
fn fitted(ids: &[usize], pool: bool, out: usize) -> Vec<Vec<f64>> {
    let src = if pool { R / 2 } else { R };
    let top = (out - src) / 2;
    ids.iter()
        .map(|&n| {
            let mut plane = vec![0f64; out * out];
            for i in 0..src {
                for j in 0..src {
                    let v = if pool {
                        (px(n, 2 * i, 2 * j) as f64
                            + px(n, 2 * i, 2 * j + 1) as f64
                            + px(n, 2 * i + 1, 2 * j) as f64
                            + px(n, 2 * i + 1, 2 * j + 1) as f64)
                            / 4.0
                    } else {
                        px(n, i, j) as f64
                    };
                    plane[(top + i) * out + top + j] = v / 255.0;
                }
            }
            plane
        })
        .collect()
}

/// Mean and population std of all pixels of `train`.
fn stats(train: &[Vec<f64>]) -> (f64, f64) {
    let all: Vec<f64> = train.iter().flatten().copied().collect();
    let m = all.iter().sum::<f64>() / all.len() as f64;
    let v = all.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / all.len() as f64;
    (m, v.sqrt())
}

/// Check `got` (N, C, H, W) against `want` planes normalised with `(m, s)`, every channel.
fn assert_images(got: &candle_core::Tensor, want: &[Vec<f64>], m: f64, s: f64) {
    let (n, c, h, w) = got.dims4().unwrap();
    assert_eq!(n, want.len());
    let g = flat(got);
    for k in 0..n {
        for ch in 0..c {
            for p in 0..h * w {
                let e = (want[k][p] - m) / s;
                let v = g[(k * c + ch) * h * w + p] as f64;
                assert!(
                    (v - e).abs() < 1e-4,
                    "image {k} channel {ch} pixel {p}: got {v}, want {e}"
                );
            }
        }
    }
}

fn corrupt(err: Error) -> (String, u64, String) {
    match err {
        Error::CorruptData {
            path,
            offset,
            reason,
        } => (path, offset, reason),
        other => panic!("expected CorruptData, got {other:?}"),
    }
}

fn spec(dir: &Path, keys: &str) -> String {
    format!("mnist:{}{keys}", dir.display())
}

// ---------------------------------------------------------------- loading and fitting

#[test]
fn plain_and_gzipped_files_load_the_same() {
    let plain = set_dir(false);
    let gz = set_dir(true);
    let a = load(&spec(plain.path(), ",fit=none")).unwrap();
    let b = load(&spec(gz.path(), ",fit=none")).unwrap();
    assert_eq!(a.train.images.dims(), &[5, 1, 28, 28]);
    assert_eq!(a.test.images.dims(), &[3, 1, 28, 28]);
    assert_eq!(a.classes(), 10);
    assert_eq!(labels(&a.train.labels), vec![3, 9, 0, 5, 1]);
    assert_eq!(labels(&a.test.labels), vec![2, 7, 4]);
    assert_eq!(flat(&a.train.images), flat(&b.train.images));
    assert_eq!(flat(&a.test.images), flat(&b.test.images));
    assert_eq!(labels(&a.train.labels), labels(&b.train.labels));
    assert_eq!(labels(&a.test.labels), labels(&b.test.labels));

    // Native size: [0, 1] pixels normalised with the train split's mean and std.
    let train = fitted(&TRAIN_IDS, false, 28);
    let (m, s) = stats(&train);
    assert_images(&a.train.images, &train, m, s);
    assert_images(&a.test.images, &fitted(&TEST_IDS, false, 28), m, s);
    // One literal pixel: image 1 (train), (i, j) = (2, 3): 37 + 22 + 15 + 6 = 80.
    let v = flat(&a.train.images)[28 * 28 + 2 * 28 + 3] as f64;
    assert!((v - (80.0 / 255.0 - m) / s).abs() < 1e-5);
    let st = ChannelStats::of(&a.train.images).unwrap();
    assert!(
        st.mean[0].abs() < 1e-5 && (st.std[0] - 1.0).abs() < 1e-4,
        "{st:?}"
    );
}

#[test]
fn plain_file_is_preferred_and_dotted_names_are_found() {
    // Both plain and .gz: the plain one is read (here the .gz ones are garbage).
    let dir = set_dir(false);
    for name in IDX_FILES {
        std::fs::write(dir.path().join(format!("{name}.gz")), b"not gzip").unwrap();
    }
    assert_eq!(load(&spec(dir.path(), "")).unwrap().train.len(), 5);
    // `train-images.idx3-ubyte` style names (some archives unpack to these).
    let dotted = tempfile::tempdir().unwrap();
    for (name, bytes) in IDX_FILES.iter().zip(contents()) {
        let name = name.replacen("-idx", ".idx", 1);
        std::fs::write(dotted.path().join(name), bytes).unwrap();
    }
    assert_eq!(load(&spec(dotted.path(), "")).unwrap().test.len(), 3);
}

#[test]
fn pad32_centres_the_image_on_black() {
    let dir = set_dir(true);
    // Default fit is pad32.
    let d = load(&spec(dir.path(), "")).unwrap();
    assert_eq!(d.train.images.dims(), &[5, 1, 32, 32]);
    assert_eq!(d.test.images.dims(), &[3, 1, 32, 32]);
    let train = fitted(&TRAIN_IDS, false, 32);
    let (m, s) = stats(&train);
    assert_images(&d.train.images, &train, m, s);
    assert_images(&d.test.images, &fitted(&TEST_IDS, false, 32), m, s);
    let g = flat(&d.train.images);
    // Border pixels are black (0 before normalising) ...
    for p in [0, 1, 31, 32 + 1, 31 * 32 + 31, 30 * 32 + 2] {
        assert!((g[p] as f64 - (0.0 - m) / s).abs() < 1e-5, "pixel {p}");
    }
    // ... and pixel (i, j) of the 28x28 image sits at (2 + i, 2 + j): image 0, (0, 0) is 0
    // and (27, 27) is (27 * 11 + 27 * 5 + 729) % 256 = 137.
    assert!((g[2 * 32 + 2] as f64 - (0.0 - m) / s).abs() < 1e-5);
    assert!((g[29 * 32 + 29] as f64 - (137.0 / 255.0 - m) / s).abs() < 1e-5);
    assert_eq!(
        load(&spec(dir.path(), ",fit=pad32"))
            .unwrap()
            .train
            .images
            .dims(),
        &[5, 1, 32, 32]
    );
}

#[test]
fn pool2_pad16_averages_then_pads() {
    let dir = set_dir(false);
    let d = load(&spec(dir.path(), ",fit=pool2-pad16")).unwrap();
    assert_eq!(d.train.images.dims(), &[5, 1, 16, 16]);
    assert_eq!(d.test.images.dims(), &[3, 1, 16, 16]);
    let train = fitted(&TRAIN_IDS, true, 16);
    let (m, s) = stats(&train);
    assert_images(&d.train.images, &train, m, s);
    assert_images(&d.test.images, &fitted(&TEST_IDS, true, 16), m, s);
    // Image 2, pooled (0, 0) at (1, 1): pixels 74, 79, 85, 91 -> 82.25.
    assert_eq!(
        [px(2, 0, 0), px(2, 0, 1), px(2, 1, 0), px(2, 1, 1)],
        [74, 79, 85, 91]
    );
    let v = flat(&d.train.images)[2 * 256 + 16 + 1] as f64;
    assert!((v - (82.25 / 255.0 - m) / s).abs() < 1e-5);
    // Plain pooling: 14x14.
    let p = load(&spec(dir.path(), ",fit=pool2")).unwrap();
    assert_eq!(p.train.images.dims(), &[5, 1, 14, 14]);
    let train = fitted(&TRAIN_IDS, true, 14);
    let (m, s) = stats(&train);
    assert_images(&p.train.images, &train, m, s);
}

#[test]
fn three_channels_repeat_the_gray_plane() {
    let dir = set_dir(false);
    let d = load(&spec(dir.path(), ",fit=pad32,channels=3")).unwrap();
    assert_eq!(d.train.images.dims(), &[5, 3, 32, 32]);
    assert_eq!(d.test.images.dims(), &[3, 3, 32, 32]);
    let train = fitted(&TRAIN_IDS, false, 32);
    let (m, s) = stats(&train);
    assert_images(&d.train.images, &train, m, s);
    assert_images(&d.test.images, &fitted(&TEST_IDS, false, 32), m, s);
}

#[test]
fn subsets_take_the_first_images_and_are_checked_against_the_file() {
    let dir = set_dir(true);
    let d = load(&spec(dir.path(), ",train=3,test=2,fit=none")).unwrap();
    assert_eq!(d.train.images.dims(), &[3, 1, 28, 28]);
    assert_eq!(d.test.images.dims(), &[2, 1, 28, 28]);
    assert_eq!(labels(&d.train.labels), vec![3, 9, 0]);
    assert_eq!(labels(&d.test.labels), vec![2, 7]);
    // Normalised with the statistics of the subset that is used.
    let train = fitted(&TRAIN_IDS[..3], false, 28);
    let (m, s) = stats(&train);
    assert_images(&d.train.images, &train, m, s);
    assert_images(&d.test.images, &fitted(&TEST_IDS[..2], false, 28), m, s);
    // The whole file, by number or `all`.
    let all = load(&spec(dir.path(), ",train=5,test=all")).unwrap();
    assert_eq!((all.train.len(), all.test.len()), (5, 3));
    // More than the file holds.
    for keys in [",train=6", ",test=4"] {
        match load(&spec(dir.path(), keys)).unwrap_err() {
            e @ Error::Config { .. } => assert!(e.to_string().contains("holds only"), "{e}"),
            e => panic!("{keys}: {e:?}"),
        }
    }
}

// ---------------------------------------------------------------- the spec

#[test]
fn spec_forms() {
    let idx = |s: &str| match parse_data_spec(s, 0).unwrap() {
        DataSource::Idx(c) => c,
        other => panic!("{s}: {other:?}"),
    };
    let c = idx("fashion-mnist");
    assert_eq!(c, IdxConfig::fashion_mnist());
    assert_eq!(c.set, IdxSet::FashionMnist);
    assert_eq!(c.dir, PathBuf::from(FASHION_MNIST_DIR));
    assert_eq!((c.train, c.test, c.channels), (None, None, 1));
    assert_eq!(c.fit, ImageFit::parse("pad32").unwrap());

    let c = idx("fashion-mnist:train=10000,fit=pool2-pad16");
    assert_eq!(c.dir, PathBuf::from(FASHION_MNIST_DIR));
    assert_eq!(c.train, Some(10000));
    assert_eq!(
        c.fit,
        ImageFit {
            pool2: true,
            pad_to: Some(16)
        }
    );

    // Keys may also follow the name after a comma (no directory): the package's files.
    assert_eq!(
        idx("fashion-mnist,train=10000,fit=pool2-pad16"),
        idx("fashion-mnist:train=10000,fit=pool2-pad16")
    );
    assert_eq!(
        parse_data_spec("synthetic,size=8", 0).unwrap(),
        parse_data_spec("synthetic:size=8", 0).unwrap()
    );

    let c = idx("fashion-mnist:data/fm, train=10000 ,test=2000,fit=pad32,channels=3");
    assert_eq!(c.dir, PathBuf::from("data/fm"));
    assert_eq!((c.train, c.test, c.channels), (Some(10000), Some(2000), 3));
    assert_eq!(
        parse_data_spec("fashion-mnist:data/fm,train=10000,test=2000", 0)
            .unwrap()
            .describe(),
        "fashion-mnist(data/fm, train=10000, test=2000, fit=pad32, channels=1)"
    );

    let c = idx("mnist:/d/mnist");
    assert_eq!(
        (c.set, c.dir.as_path()),
        (IdxSet::Mnist, Path::new("/d/mnist"))
    );
    assert_eq!(idx("MNIST:dir=/a=b,fit=none").dir, PathBuf::from("/a=b"));
    assert_eq!(idx("mnist:dir=/x").fit.name(), "pad32");
    for f in ["none", "pad32", "pad31", "pool2", "pool2-pad16"] {
        assert_eq!(ImageFit::parse(f).unwrap().name(), f);
    }

    // Errors.
    for bad in [
        "mnist",
        "mnist:",
        "mnist:train=5",
        "mnist:/a,/b",
        "mnist:/a,dir=/b",
        "mnist:/a,train=0",
        "mnist:/a,train=-1",
        "mnist:/a,test=many",
        "mnist:/a,channels=2",
    ] {
        assert!(
            matches!(parse_data_spec(bad, 0), Err(Error::Config { .. })),
            "{bad}: {:?}",
            parse_data_spec(bad, 0)
        );
    }
    for bad in [
        "mnist:/a,size=16",
        "mnist:/a,fit=crop",
        "mnist:/a,fit=pool3-pad16",
        "mnist:/a,fit=pad0",
        "fashion-mnist:fit=pad",
    ] {
        assert!(
            matches!(parse_data_spec(bad, 0), Err(Error::Unknown { .. })),
            "{bad}: {:?}",
            parse_data_spec(bad, 0)
        );
    }
}

#[test]
fn fits_that_do_not_suit_the_images_are_config_errors() {
    let dir = set_dir(false);
    for keys in [",fit=pad27", ",fit=pool2-pad13"] {
        match load(&spec(dir.path(), keys)).unwrap_err() {
            e @ Error::Config { .. } => assert!(e.to_string().contains("cannot pad"), "{e}"),
            e => panic!("{keys}: {e:?}"),
        }
    }
    // Odd-sized images cannot be pooled.
    let odd = tempfile::tempdir().unwrap();
    let mut files = contents();
    files[0] = images_file(&TRAIN_IDS, 27, 27);
    files[2] = images_file(&TEST_IDS, 27, 27);
    write_files(odd.path(), &files, false);
    assert!(matches!(
        load(&spec(odd.path(), ",fit=pool2-pad16")),
        Err(Error::Config { .. })
    ));
    // ... but load at their own size or padded.
    let d = load(&spec(odd.path(), ",fit=pad32")).unwrap();
    assert_eq!(d.train.images.dims(), &[5, 1, 32, 32]);
}

// ---------------------------------------------------------------- errors

#[test]
fn missing_fashion_mnist_says_how_to_install_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("fashion-mnist");
    let err = load(&format!("fashion-mnist:{},train=10", missing.display())).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(
        msg.contains("apt-get install dataset-fashion-mnist"),
        "{msg}"
    );
    // The default directory: the same hint when the package is not installed.
    if !Path::new(FASHION_MNIST_DIR).exists() {
        let msg = load("fashion-mnist").unwrap_err().to_string();
        assert!(msg.contains(FASHION_MNIST_DIR), "{msg}");
        assert!(msg.contains(FASHION_MNIST_INSTALL), "{msg}");
    }
    // A directory without the files: the hint again, naming the file.
    let err = load(&format!("fashion-mnist:{}", tmp.path().display())).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(msg.contains("train-images-idx3-ubyte"), "{msg}");
    assert!(msg.contains(FASHION_MNIST_INSTALL), "{msg}");
}

#[test]
fn missing_file_is_named() {
    let dir = set_dir(true);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let err = load(&spec(dir.path(), "")).unwrap_err();
    match &err {
        Error::Io { path, .. } => assert!(path.ends_with("t10k-labels-idx1-ubyte"), "{path}"),
        e => panic!("{e:?}"),
    }
    assert!(
        err.to_string().contains("t10k-labels-idx1-ubyte.gz"),
        "{err}"
    );
    // A missing MNIST directory is an Io error naming it.
    let tmp = tempfile::tempdir().unwrap();
    let gone = tmp.path().join("nope");
    let err = load(&spec(&gone, "")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains("MNIST directory not found"),
        "{err}"
    );
}

/// Load with file `which` (index into `IDX_FILES`) replaced by `bytes`, plain or gzipped.
fn load_with(which: usize, bytes: Vec<u8>, gz: bool) -> (PathBuf, Error) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = contents();
    files[which] = bytes;
    write_files(dir.path(), &files, gz);
    let name = if gz {
        format!("{}.gz", IDX_FILES[which])
    } else {
        IDX_FILES[which].to_string()
    };
    let err = load(&spec(dir.path(), "")).unwrap_err();
    (dir.path().join(name), err)
}

#[test]
fn truncated_images_file_names_the_incomplete_image() {
    for gz in [false, true] {
        let mut b = images_file(&TRAIN_IDS, R, R);
        b.truncate(16 + 2 * 784 + 100);
        let (path, err) = load_with(0, b, gz);
        let msg = err.to_string();
        let (p, off, reason) = corrupt(err);
        assert_eq!(p, path.display().to_string());
        assert_eq!(off, 16 + 2 * 784, "{reason}");
        assert!(
            reason.contains("truncated") && reason.contains("image 2"),
            "{reason}"
        );
        assert_eq!(reason.contains("decompressed"), gz, "{reason}");
        assert!(msg.contains("corrupt data at byte offset 1584"), "{msg}");
    }
    // A short header.
    let (_, err) = load_with(2, images_file(&TEST_IDS, R, R)[..10].to_vec(), false);
    let (p, off, reason) = corrupt(err);
    assert!(p.ends_with("t10k-images-idx3-ubyte"), "{p}");
    assert_eq!(off, 10);
    assert!(reason.contains("header"), "{reason}");
    // Trailing bytes.
    let mut b = labels_file(&TEST_LABELS);
    b.push(1);
    let (_, err) = load_with(3, b, false);
    let (p, off, _) = corrupt(err);
    assert!(p.ends_with("t10k-labels-idx1-ubyte"), "{p}");
    assert_eq!(off, 8 + 3);
    // A truncated labels file.
    let (_, err) = load_with(1, labels_file(&TRAIN_LABELS)[..11].to_vec(), true);
    let (p, off, _) = corrupt(err);
    assert!(p.ends_with("train-labels-idx1-ubyte.gz"), "{p}");
    assert_eq!(off, 11);
}

#[test]
fn bad_magic_is_reported_at_offset_zero() {
    // Labels where images should be.
    let (path, err) = load_with(0, labels_file(&TRAIN_LABELS), false);
    let (p, off, reason) = corrupt(err);
    assert_eq!(p, path.display().to_string());
    assert_eq!(off, 0);
    assert!(
        reason.contains("2051") && reason.contains("labels file"),
        "{reason}"
    );
    // Garbage magic in a labels file.
    let mut b = labels_file(&TEST_LABELS);
    b[2] = 0x12;
    let (path, err) = load_with(3, b, true);
    let (p, off, reason) = corrupt(err);
    assert_eq!(p, path.display().to_string());
    assert_eq!(off, 0);
    assert!(reason.contains("2049"), "{reason}");
}

#[test]
fn zero_sized_images_and_mismatched_test_dims_are_corrupt() {
    let (_, err) = load_with(0, images_file(&[], 0, 28), false);
    let (_, off, reason) = corrupt(err);
    assert_eq!(off, 8);
    assert!(reason.contains("0x28"), "{reason}");
    let (path, err) = load_with(2, images_file(&TEST_IDS, 28, 27), false);
    let (p, off, reason) = corrupt(err);
    assert_eq!(p, path.display().to_string());
    assert_eq!(off, 8);
    assert!(
        reason.contains("28x27") && reason.contains("28x28"),
        "{reason}"
    );
}

#[test]
fn image_and_label_counts_must_match() {
    let (path, err) = load_with(1, labels_file(&TRAIN_LABELS[..4]), false);
    let (p, off, reason) = corrupt(err);
    assert_eq!(p, path.display().to_string());
    assert_eq!(off, 4);
    assert!(
        reason.contains("4 labels") && reason.contains("5 images"),
        "{reason}"
    );
}

#[test]
fn label_out_of_range_is_reported_at_its_byte() {
    let (path, err) = load_with(3, labels_file(&[2, 7, 10]), true);
    let (p, off, reason) = corrupt(err);
    assert_eq!(p, path.display().to_string());
    assert_eq!(off, 8 + 2);
    assert!(reason.contains("label 10 of item 2"), "{reason}");
}

#[test]
fn corrupt_gzip_stream_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &contents(), true);
    let path = dir.path().join("train-images-idx3-ubyte.gz");
    let good = std::fs::read(&path).unwrap();
    // Damaged deflate data (or a failing CRC check, whichever the damage hits first).
    let mut bad = good.clone();
    for b in &mut bad[20..60] {
        *b ^= 0x5a;
    }
    // Cut in half; and only the gzip header.
    let cases = [bad, good[..good.len() / 2].to_vec(), good[..12].to_vec()];
    for bytes in cases {
        let n = bytes.len() as u64;
        std::fs::write(&path, bytes).unwrap();
        let (p, off, reason) = corrupt(load(&spec(dir.path(), "")).unwrap_err());
        assert_eq!(p, path.display().to_string());
        assert!(off <= n, "{off} > {n}");
        assert!(reason.contains("gzip"), "{reason}");
    }
    // A file called .gz that is not gzip at all.
    std::fs::write(&path, b"hello, not a gzip file").unwrap();
    let (_, _, reason) = corrupt(load(&spec(dir.path(), "")).unwrap_err());
    assert!(reason.contains("gzip"), "{reason}");
    // An empty one.
    std::fs::write(&path, b"").unwrap();
    let (_, off, _) = corrupt(load(&spec(dir.path(), "")).unwrap_err());
    assert_eq!(off, 0);
}

#[test]
fn readers_decode_the_headers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("imgs.gz");
    std::fs::write(&p, gzip(&images_file(&[7, 8], 4, 3))).unwrap();
    let img = read_idx_images(&p).unwrap();
    assert_eq!((img.count, img.rows, img.cols), (2, 4, 3));
    assert_eq!(img.pixels.len(), 24);
    assert_eq!(img.pixels[3 + 12], px(8, 1, 0));
    // Gzip is recognised by its magic bytes too, whatever the name.
    let q = dir.path().join("labels");
    std::fs::write(&q, gzip(&labels_file(&[0, 9, 4]))).unwrap();
    assert_eq!(read_idx_labels(&q).unwrap(), vec![0, 9, 4]);
    assert_eq!(IDX_IMAGES_MAGIC, 2051);
    assert_eq!(IDX_LABELS_MAGIC, 2049);
}
