//! The additions and channel concatenations of an additive coupling, out of place
//! ([`add_images`], [`cat_add_channels`], [`cat_channels`]) and in place ([`add_assign`]): one
//! IEEE addition or subtraction per element, the values of candle's ops.

use super::{par_fill, supported, unsupported, with_images, Real};
use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

/// `o_j = u_j + v_j`, or `u_j - v_j` when `sub` (one IEEE operation each).
fn add_run<T: Real>(o: &mut [T], u: &[T], v: &[T], sub: bool) {
    if sub {
        for ((o, u), v) in o.iter_mut().zip(u).zip(v) {
            *o = *u - *v;
        }
    } else {
        for ((o, u), v) in o.iter_mut().zip(u).zip(v) {
            *o = *u + *v;
        }
    }
}

/// `a + b`, or `a - b` when `subtract` (one IEEE addition or subtraction, as candle's), for two
/// 4-D tensors of the same shape whose images are contiguous (e.g. channel halves of a
/// coupling), as a contiguous tensor; parallel over the images.
pub fn add_images(a: &Tensor, b: &Tensor, subtract: bool) -> Result<Tensor> {
    if !supported(a) || a.dtype() != b.dtype() || a.dims() != b.dims() || a.rank() != 4 {
        return Err(unsupported("add_images", a));
    }
    let (n, c, h, w) = a.dims4()?;
    fn go<T: Real>(
        a: &Tensor,
        b: &Tensor,
        dims: (usize, usize, usize, usize),
        sub: bool,
    ) -> Result<Tensor> {
        let (n, c, h, w) = dims;
        let img = c * h * w;
        let out = with_images::<T, _>(a, |xa, sa| {
            with_images::<T, _>(b, |xb, sb| {
                Ok(par_fill(n * img, img, |i, o: &mut [T]| {
                    add_run(o, &xa[i * sa..][..img], &xb[i * sb..][..img], sub)
                }))
            })
        })?;
        Ok(Tensor::from_vec(out, (n, c, h, w), &Device::Cpu)?)
    }
    match a.dtype() {
        DType::F32 => go::<f32>(a, b, (n, c, h, w), subtract),
        _ => go::<f64>(a, b, (n, c, h, w), subtract),
    }
}

/// `cat([a, b + c], 1)` (`b - c` when `subtract`: one IEEE addition or subtraction, as
/// [`add_images`]) in one pass, for 4-D tensors with the same batch and spatial size whose
/// images are contiguous (`b` and `c` of the same shape); parallel over the images. Saves
/// writing `b + c` and copying it again.
pub fn cat_add_channels(a: &Tensor, b: &Tensor, c: &Tensor, subtract: bool) -> Result<Tensor> {
    if !supported(a)
        || a.dtype() != b.dtype()
        || b.dtype() != c.dtype()
        || a.rank() != 4
        || b.dims() != c.dims()
    {
        return Err(unsupported("cat_add_channels", a));
    }
    let (n, ca, h, w) = a.dims4()?;
    let (nb, cb, hb, wb) = b.dims4()?;
    if (n, h, w) != (nb, hb, wb) {
        return Err(Error::ShapeMismatch {
            context: "cat_add_channels".into(),
            expected: format!("({n}, c, {h}, {w})"),
            got: b.dims().to_vec(),
        });
    }
    fn go<T: Real>(
        t: [&Tensor; 3],
        n: usize,
        ca: usize,
        cb: usize,
        hw: usize,
        sub: bool,
    ) -> Result<Tensor> {
        let (ia, ib) = (ca * hw, cb * hw);
        let out = with_images::<T, _>(t[0], |xa, sa| {
            with_images::<T, _>(t[1], |xb, sb| {
                with_images::<T, _>(t[2], |xc, sc| {
                    Ok(par_fill(n * (ia + ib), ia + ib, |i, o: &mut [T]| {
                        o[..ia].copy_from_slice(&xa[i * sa..][..ia]);
                        add_run(&mut o[ia..], &xb[i * sb..][..ib], &xc[i * sc..][..ib], sub)
                    }))
                })
            })
        })?;
        Ok(Tensor::from_vec(out, (n, ca + cb, hw), &Device::Cpu)?)
    }
    let t = match a.dtype() {
        DType::F32 => go::<f32>([a, b, c], n, ca, cb, h * w, subtract)?,
        _ => go::<f64>([a, b, c], n, ca, cb, h * w, subtract)?,
    };
    Ok(t.reshape((n, ca + cb, h, w))?)
}

/// `cat([a, b], 1)` of two 4-D tensors with the same batch and spatial size whose images are
/// contiguous; parallel over the images.
pub fn cat_channels(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !supported(a) || a.dtype() != b.dtype() || a.rank() != 4 || b.rank() != 4 {
        return Err(unsupported("cat_channels", a));
    }
    let (n, ca, h, w) = a.dims4()?;
    let (nb, cb, hb, wb) = b.dims4()?;
    if (n, h, w) != (nb, hb, wb) {
        return Err(Error::ShapeMismatch {
            context: "cat_channels".into(),
            expected: format!("({n}, c, {h}, {w})"),
            got: b.dims().to_vec(),
        });
    }
    fn go<T: Real>(
        a: &Tensor,
        b: &Tensor,
        n: usize,
        ca: usize,
        cb: usize,
        hw: usize,
    ) -> Result<Tensor> {
        let (ia, ib) = (ca * hw, cb * hw);
        let out = with_images::<T, _>(a, |xa, sa| {
            with_images::<T, _>(b, |xb, sb| {
                Ok(par_fill(n * (ia + ib), ia + ib, |i, o: &mut [T]| {
                    o[..ia].copy_from_slice(&xa[i * sa..][..ia]);
                    o[ia..].copy_from_slice(&xb[i * sb..][..ib]);
                }))
            })
        })?;
        Ok(Tensor::from_vec(out, (n, ca + cb, hw), &Device::Cpu)?)
    }
    let t = match a.dtype() {
        DType::F32 => go::<f32>(a, b, n, ca, cb, h * w)?,
        _ => go::<f64>(a, b, n, ca, cb, h * w)?,
    };
    Ok(t.reshape((n, ca + cb, h, w))?)
}

/// In-place `dst += src` (or `dst -= src` when `subtract`): one IEEE addition or subtraction
/// per element, the same values as [`add_images`]. Both are 4-D with the same shape and
/// contiguous images (e.g. channel halves of a coupling's buffers); `dst` is written through
/// its layout only (the rest of its storage is untouched). The caller must hold `dst`'s
/// storage alone: every tensor sharing it sees the update (the backward driver uses it on
/// buffers it owns, [`crate::backprop`]).
pub fn add_assign(dst: &Tensor, src: &Tensor, subtract: bool) -> Result<()> {
    if !supported(dst) || dst.dtype() != src.dtype() || dst.dims() != src.dims() || dst.rank() != 4
    {
        return Err(unsupported("add_assign", dst));
    }
    let src = if image_contiguous(src) {
        src.clone()
    } else {
        src.contiguous()?
    };
    if !image_contiguous(dst) {
        return Err(unsupported(
            "add_assign (destination images not contiguous)",
            dst,
        ));
    }
    dst.inplace_op2(&src, &AddAssign { subtract })?;
    Ok(())
}

fn image_contiguous(t: &Tensor) -> bool {
    match t.dims4() {
        Ok((b, c, h, w)) => {
            let st = t.layout().stride();
            b > 0 && st[3] == 1 && st[2] == w && st[1] == h * w && c > 0
        }
        Err(_) => false,
    }
}

struct AddAssign {
    subtract: bool,
}

impl AddAssign {
    fn run<T: Real>(
        &self,
        d: &mut [T],
        dl: &candle_core::Layout,
        s: &[T],
        sl: &candle_core::Layout,
    ) {
        let dims = dl.dims();
        let img = dims[1] * dims[2] * dims[3];
        let (sd, ss) = (dl.stride()[0], sl.stride()[0]);
        let (d0, s0) = (dl.start_offset(), sl.start_offset());
        let n = dims[0];
        let d = &mut d[d0..d0 + (n - 1) * sd + img];
        let s = &s[s0..s0 + (n - 1) * ss + img];
        let sub = self.subtract;
        d.par_chunks_mut(sd.max(img))
            .enumerate()
            .for_each(|(i, chunk)| {
                for (o, v) in chunk[..img].iter_mut().zip(&s[i * ss..][..img]) {
                    *o = if sub { *o - *v } else { *o + *v };
                }
            });
    }
}

impl candle_core::InplaceOp2 for AddAssign {
    fn name(&self) -> &'static str {
        "revstab-add-assign"
    }
    fn cpu_fwd(
        &self,
        dst: &mut candle_core::CpuStorage,
        dst_l: &candle_core::Layout,
        src: &candle_core::CpuStorage,
        src_l: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        use candle_core::CpuStorage as S;
        match (dst, src) {
            (S::F32(d), S::F32(s)) => self.run(d, dst_l, s, src_l),
            (S::F64(d), S::F64(s)) => self.run(d, dst_l, s, src_l),
            _ => candle_core::bail!("revstab-add-assign: f32 or f64 tensors of one dtype only"),
        }
        Ok(())
    }
}
