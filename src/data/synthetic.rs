//! The built-in synthetic image-classification set.
//!
//! Each image is a coloured random texture. The class is a pair `(orientation o, bit b)`:
//! `label = 2 o + b`, with `K = ceil(classes / 2)` orientations evenly spread over 180 degrees
//! (36 degrees apart for the default 10 classes). The bit is an XOR of two texture attributes:
//! the texture's spatial frequency `f` (period 7 px or 4 px) is drawn at random, and its
//! colour axis is `k = f XOR b` (one of two unit colour directions with the same luminance
//! part and orthogonal chroma parts, red-green or blue-yellow). So frequency alone and colour
//! axis alone say nothing about `b`; only their conjunction does.
//!
//! The class texture is a sum of three plane waves near the class orientation and frequency,
//! each with a uniformly random phase, under a Gaussian envelope at a random position and
//! scale (the texture fades to 15% outside it). Uniform random phases make every pixel's
//! class-conditional mean the same for all classes, so a linear classifier on raw pixels (or a
//! nearest-class-mean one, or one on the mean colour) is at chance in expectation; the
//! information is in second-order structure (oriented, colour-dependent band energy), which
//! convolutions followed by nonlinearities and pooling extract. Nuisances, all independent of
//! the class: a grey (luminance-only) distractor texture of random orientation and a period
//! between the two class periods, random contrast, background colour, a luminance gradient and
//! additive Gaussian pixel noise.
//!
//! Generation is sequential on one ChaCha8 stream per split (`data/synthetic/train`,
//! `data/synthetic/test` of the seed), hence bit-for-bit reproducible.

use super::{ChannelStats, DataSplit, Dataset};
use crate::error::{Error, Result};
use crate::util::rng_for;
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// Texture periods in pixels for frequency attribute `f = 0` and `f = 1`.
const PERIODS: [f64; 2] = [7.0, 4.0];
/// Plane waves per texture.
const WAVES: usize = 3;
/// Std (radians) of each wave's orientation around the class orientation.
const ORIENTATION_JITTER: f64 = 0.12;
/// Std of the log of each wave's frequency around the nominal one.
const FREQUENCY_JITTER: f64 = 0.1;
/// Rms amplitude of the class-independent luminance distractor texture (the class texture has 1).
const DISTRACTOR: f64 = 0.8;
/// Envelope floor: the class texture's amplitude far from the blob centre.
const ENVELOPE_FLOOR: f64 = 0.15;
/// Weight of the luminance direction in the class texture's colour axes (the rest is chroma).
const LUMA: f64 = 0.8;

/// Configuration of [`synthetic`]. The defaults give 10 classes of 3x32x32 images, 5000
/// train and 1000 test samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyntheticConfig {
    /// Seed of everything random (train and test use different streams of it).
    pub seed: u64,
    /// Number of training images (at least 2).
    pub train: usize,
    /// Number of test images.
    pub test: usize,
    /// Number of classes, 2..=16 (default 10: 5 orientations x 2 values of the XOR bit).
    pub classes: usize,
    /// Image height and width in pixels, 8..=256 (default 32).
    pub size: usize,
    /// Std of the additive Gaussian pixel noise, relative to the texture's rms amplitude
    /// (default 0.8). Finite, `>= 0`.
    pub noise: f64,
    /// Texture gain drawn from `U(1 - j, 1 + j)` per image (default 0.4), `0 <= j < 1`.
    pub contrast_jitter: f64,
    /// Std of the per-image background colour offset of each channel, and of the luminance
    /// gradient, relative to the texture's rms amplitude (default 0.5). Finite, `>= 0`.
    pub colour_jitter: f64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            seed: 0,
            train: 5000,
            test: 1000,
            classes: 10,
            size: 32,
            noise: 0.8,
            contrast_jitter: 0.4,
            colour_jitter: 0.5,
        }
    }
}

impl SyntheticConfig {
    /// Check the ranges documented on each field ([`Error::Config`] otherwise).
    pub fn validate(&self) -> Result<()> {
        let bad =
            |c: &str, e: &str, g: String| Err(Error::config(format!("synthetic data: {c}"), e, g));
        if !(2..=16).contains(&self.classes) {
            return bad("classes", "a value in 2..=16", self.classes.to_string());
        }
        if !(8..=256).contains(&self.size) {
            return bad("size", "8..=256 pixels", self.size.to_string());
        }
        if self.train < 2 {
            let e = "at least 2 training images (for the normalisation)";
            return bad("train", e, self.train.to_string());
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return bad("noise", "a finite value >= 0", self.noise.to_string());
        }
        if !(self.contrast_jitter.is_finite() && (0.0..1.0).contains(&self.contrast_jitter)) {
            let got = self.contrast_jitter.to_string();
            return bad("contrast_jitter", "a value in [0, 1)", got);
        }
        if !(self.colour_jitter.is_finite() && self.colour_jitter >= 0.0) {
            let got = self.colour_jitter.to_string();
            return bad("colour_jitter", "a finite value >= 0", got);
        }
        Ok(())
    }
}

/// Generate the synthetic set of `cfg` (see the module docs of [`crate::data`] and the
/// comments on [`SyntheticConfig`]): bit-for-bit reproducible from `cfg.seed`, train and test
/// from the same distribution with independent random streams, labels exactly balanced up to
/// `n mod classes`, normalised per channel with the train split's statistics.
pub fn synthetic(cfg: &SyntheticConfig) -> Result<DataSplit> {
    cfg.validate()?;
    let (mut train_x, train_y) = generate(cfg, cfg.train, "data/synthetic/train");
    let (mut test_x, test_y) = generate(cfg, cfg.test, "data/synthetic/test");
    let plane = cfg.size * cfg.size;
    let stats = ChannelStats::of_slice(&train_x, cfg.train, 3, plane);
    stats.apply_slice(&mut train_x, plane);
    stats.apply_slice(&mut test_x, plane);
    let make = |x: Vec<f32>, y: Vec<u32>| -> Result<Dataset> {
        let n = y.len();
        Dataset::new(
            Tensor::from_vec(x, (n, 3, cfg.size, cfg.size), &Device::Cpu)?,
            Tensor::from_vec(y, n, &Device::Cpu)?,
            cfg.classes,
        )
    };
    Ok(DataSplit {
        train: make(train_x, train_y)?,
        test: make(test_x, test_y)?,
    })
}

/// `n` raw (unnormalised) images, NCHW, and their labels, from stream `stream` of the seed.
fn generate(cfg: &SyntheticConfig, n: usize, stream: &str) -> (Vec<f32>, Vec<u32>) {
    let mut rng = rng_for(cfg.seed, stream);
    let mut labels: Vec<u32> = (0..n).map(|i| (i % cfg.classes) as u32).collect();
    labels.shuffle(&mut rng);
    let s = cfg.size;
    let mut images = vec![0f32; n * 3 * s * s];
    let mut scratch = Scratch::new(s);
    for (img, &label) in images.chunks_exact_mut(3 * s * s).zip(&labels) {
        render(cfg, label as usize, &mut rng, &mut scratch, img);
    }
    (images, labels)
}

/// Per-image buffers reused across images.
struct Scratch {
    texture: Vec<f64>,
    distractor: Vec<f64>,
    ex: Vec<f64>,
    ey: Vec<f64>,
}

impl Scratch {
    fn new(s: usize) -> Self {
        Scratch {
            texture: vec![0.0; s * s],
            distractor: vec![0.0; s * s],
            ex: vec![0.0; s],
            ey: vec![0.0; s],
        }
    }
}

/// Unit colour axes of the class texture: the same luminance part, orthogonal chroma parts
/// (red-green and blue-yellow).
fn colour_axes() -> [[f64; 3]; 2] {
    let lum = [1.0 / 3f64.sqrt(); 3];
    let rg = [1.0 / 2f64.sqrt(), -1.0 / 2f64.sqrt(), 0.0];
    let by = [1.0 / 6f64.sqrt(), 1.0 / 6f64.sqrt(), -2.0 / 6f64.sqrt()];
    let mix =
        |o: [f64; 3]| std::array::from_fn(|c| LUMA * lum[c] + (1.0 - LUMA * LUMA).sqrt() * o[c]);
    [mix(rg), mix(by)]
}

/// Overwrite `t` (`s x s`) with a texture of rms amplitude `rms` (in expectation): a sum of
/// [`WAVES`] plane waves of random amplitude and uniformly random phase, with orientations
/// `theta + N(0, ORIENTATION_JITTER)` and periods `period * exp(N(0, FREQUENCY_JITTER))`.
fn waves(t: &mut [f64], s: usize, rms: f64, theta: f64, period: f64, rng: &mut ChaCha8Rng) {
    t.iter_mut().for_each(|v| *v = 0.0);
    let amps: [f64; WAVES] = std::array::from_fn(|_| rng.gen_range(0.5..1.0));
    let norm = rms * (2.0 / amps.iter().map(|a| a * a).sum::<f64>()).sqrt();
    for amp in amps {
        let theta = theta + ORIENTATION_JITTER * rng.sample::<f64, _>(StandardNormal);
        let freq = (-FREQUENCY_JITTER * rng.sample::<f64, _>(StandardNormal)).exp() / period;
        let phase = rng.gen_range(0.0..2.0 * PI);
        let (wx, wy) = (2.0 * PI * freq * theta.cos(), 2.0 * PI * freq * theta.sin());
        let a = amp * norm;
        // Rotate a phasor instead of calling cos per pixel: z(i, j) = a e^{i(phase + wy i + wx j)}.
        let (sx, sy) = ((wx.cos(), wx.sin()), (wy.cos(), wy.sin()));
        let mut row = (a * phase.cos(), a * phase.sin());
        for line in t.chunks_exact_mut(s) {
            let mut z = row;
            for v in line {
                *v += z.0;
                z = (z.0 * sx.0 - z.1 * sx.1, z.0 * sx.1 + z.1 * sx.0);
            }
            row = (row.0 * sy.0 - row.1 * sy.1, row.0 * sy.1 + row.1 * sy.0);
        }
    }
}

/// Draw one image of class `label` into `out` (`3 * size * size`, CHW).
fn render(
    cfg: &SyntheticConfig,
    label: usize,
    rng: &mut ChaCha8Rng,
    sc: &mut Scratch,
    out: &mut [f32],
) {
    let s = cfg.size;
    let orientations = cfg.classes.div_ceil(2);
    let (o, b) = (label / 2, label % 2);
    let f = rng.gen_range(0..2usize);
    let k = f ^ b;
    let theta = PI * (o as f64 + 0.25) / orientations as f64;
    waves(&mut sc.texture, s, 1.0, theta, PERIODS[f], rng);
    // Class-independent luminance texture: any orientation, a period between the two classes'.
    let theta_d = rng.gen_range(0.0..PI);
    let period_d = rng.gen_range(PERIODS[1]..PERIODS[0]);
    waves(&mut sc.distractor, s, DISTRACTOR, theta_d, period_d, rng);

    // Envelope of the class texture: a Gaussian blob at a random position and scale.
    let sf = s as f64;
    let (cy, cx) = (rng.gen_range(0.0..sf), rng.gen_range(0.0..sf));
    let sigma = sf * rng.gen_range(0.3..0.6);
    let inv = -0.5 / (sigma * sigma);
    for (i, (ey, ex)) in sc.ey.iter_mut().zip(sc.ex.iter_mut()).enumerate() {
        let d = i as f64 + 0.5;
        *ey = ((d - cy) * (d - cy) * inv).exp();
        *ex = ((d - cx) * (d - cx) * inv).exp();
    }

    // Nuisances: contrast, background colour, luminance gradient.
    let gain = 1.0 + cfg.contrast_jitter * rng.gen_range(-1.0..1.0);
    let bg: [f64; 3] =
        std::array::from_fn(|_| cfg.colour_jitter * rng.sample::<f64, _>(StandardNormal));
    let gy = cfg.colour_jitter * rng.sample::<f64, _>(StandardNormal);
    let gx = cfg.colour_jitter * rng.sample::<f64, _>(StandardNormal);
    let axis = colour_axes()[k];
    let luma = 1.0 / 3f64.sqrt();

    // Channel-independent parts, once per pixel: the enveloped class texture (times the gain)
    // and the luminance gradient plus distractor.
    for i in 0..s {
        let grad_y = gy * ((i as f64 + 0.5) / sf - 0.5);
        for j in 0..s {
            let p = i * s + j;
            let env = ENVELOPE_FLOOR + (1.0 - ENVELOPE_FLOOR) * sc.ey[i] * sc.ex[j];
            sc.texture[p] *= gain * env;
            let grad = grad_y + gx * ((j as f64 + 0.5) / sf - 0.5);
            sc.distractor[p] = grad + gain * luma * sc.distractor[p];
        }
    }
    for (c, plane) in out.chunks_exact_mut(s * s).enumerate() {
        let (a, base) = (axis[c], bg[c]);
        for ((v, t), d) in plane.iter_mut().zip(&sc.texture).zip(&sc.distractor) {
            let noise: f64 = rng.sample(StandardNormal);
            *v = (base + a * t + d + cfg.noise * noise) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_axes_are_unit_with_equal_luminance() {
        let axes = colour_axes();
        for a in axes {
            assert!((a.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-12);
            assert!((a.iter().sum::<f64>() / 3f64.sqrt() - LUMA).abs() < 1e-12);
        }
        let dot: f64 = axes[0].iter().zip(&axes[1]).map(|(a, b)| a * b).sum();
        assert!(
            (dot - LUMA * LUMA).abs() < 1e-12,
            "chroma parts are orthogonal"
        );
    }

    #[test]
    fn waves_have_the_requested_rms_and_zero_mean() {
        let s = 32;
        let mut rng = rng_for(1, "test");
        let mut t = vec![0.0; s * s];
        let (mut sq, mut sum, reps) = (0.0, 0.0, 200);
        for _ in 0..reps {
            waves(&mut t, s, 2.0, 0.3, PERIODS[1], &mut rng);
            sq += t.iter().map(|v| v * v).sum::<f64>();
            sum += t[5 * s + 7];
        }
        let rms = (sq / (reps * s * s) as f64).sqrt();
        assert!((rms - 2.0).abs() < 0.2, "rms {rms}");
        assert!(
            (sum / reps as f64).abs() < 0.4,
            "pixel mean {}",
            sum / reps as f64
        );
    }
}
