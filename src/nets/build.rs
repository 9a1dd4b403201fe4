//! Building a [`Network`] from its [`NetConfig`]: the stem, the units the architecture's row
//! says ([`Unit`]), the poolings and the head; and the same network in another dtype or backend.

use super::{LayerKind, NetConfig, Network, PoolKind, Stem, Unit};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::layers::{
    AdditiveCoupling, BatchNormConfig, BatchPool, Chain, ChannelPool, Conv2d, Head, InnerRebuild,
    InvBatchNorm, InvLeakyReLU, Layer, MaxPool2, ParamStore, Relu, Residual, Role,
};
use candle_core::{DType, Device};

fn boxed<L: Layer + 'static>(l: L) -> Box<dyn Layer> {
    Box::new(l)
}

impl Network {
    /// Build `config` in `dtype` on `device` with the default backend
    /// ([`Backend::Kernels`]); weights from `config.seed`.
    pub fn build(config: &NetConfig, dtype: DType, device: &Device) -> Result<Network> {
        Network::build_with(config, dtype, device, Backend::default())
    }

    /// Build `config` in `dtype` on `device`, every layer computed by `backend`; weights from
    /// `config.seed` (the same for every backend).
    pub fn build_with(
        config: &NetConfig,
        dtype: DType,
        device: &Device,
        backend: Backend,
    ) -> Result<Network> {
        config.validate()?;
        let net = &config.net;
        let store = ParamStore::new(config.seed, dtype, device);
        let bn_inv = BatchNormConfig {
            eps: config.bn_eps,
            eps_i: config.eps_i,
            reparam: true,
            momentum: net.bn_momentum,
            gamma_spread: net.gamma_spread,
            gamma_init: net.gamma_init,
        };
        let bn_plain = BatchNormConfig {
            reparam: false,
            eps_i: 0.0,
            ..bn_inv
        };
        let mut layers: Vec<Box<dyn Layer>> = Vec::new();
        let mut c = config.width;
        let mut groups = 1usize;
        let mut num_layers = 0;
        let mut unit_starts = Vec::with_capacity(config.depth);
        if net.stem == Stem::Conv {
            layers.push(boxed(
                Conv2d::new(
                    &store,
                    "stem",
                    net.in_channels,
                    c,
                    3,
                    1,
                    false,
                    net.init_scale,
                )?
                .with_backend(backend),
            ));
            num_layers += 1;
        }
        let fg = config.fg_kinds();
        // The F (or G) chain named `q` on `ch` channels: convolutions `conv1, conv2, ...`, batch
        // norms `bn1, bn2, ...`, activations `act` (`relu`), `act2` (`relu2`), ... (the names of
        // the default chains, so their weights do not change).
        let block_chain = |q: &str, ch: usize, invertible: bool| -> Result<Vec<Box<dyn Layer>>> {
            let (mut convs, mut bns, mut acts, mut relus) = (0, 0, 0, 0);
            let numbered = |base: &str, k: usize| {
                if k == 1 {
                    format!("{q}.{base}")
                } else {
                    format!("{q}.{base}{k}")
                }
            };
            let mut l: Vec<Box<dyn Layer>> = Vec::with_capacity(fg.len());
            for kind in &fg {
                match (kind, invertible) {
                    (LayerKind::Conv, true) => {
                        convs += 1;
                        l.push(boxed(AdditiveCoupling::inv_conv_with(
                            &store,
                            &format!("{q}.conv{convs}"),
                            ch,
                            net.init_scale,
                            backend,
                        )?));
                    }
                    (LayerKind::Conv, false) => {
                        convs += 1;
                        l.push(boxed(
                            Conv2d::new(
                                &store,
                                &format!("{q}.conv{convs}"),
                                ch,
                                ch,
                                3,
                                1,
                                false,
                                net.init_scale,
                            )?
                            .with_backend(backend),
                        ));
                    }
                    (LayerKind::Bn, _) => {
                        bns += 1;
                        let bn = if invertible { bn_inv } else { bn_plain };
                        l.push(boxed(
                            InvBatchNorm::new(&store, &format!("{q}.bn{bns}"), ch, bn)?
                                .with_backend(backend),
                        ));
                    }
                    (LayerKind::Lrelu, _) => {
                        acts += 1;
                        l.push(boxed(
                            InvLeakyReLU::new(&numbered("act", acts), config.slope)?
                                .with_backend(backend),
                        ));
                    }
                    (LayerKind::Relu, false) => {
                        relus += 1;
                        l.push(boxed(
                            Relu::new(&numbered("relu", relus)).with_backend(backend),
                        ));
                    }
                    (LayerKind::Relu, true) => {
                        let d = "relu is not invertible (validated configs never get here)";
                        return Err(Error::internal(q, d));
                    }
                }
            }
            Ok(l)
        };
        let layout = config.units_per_stage();
        let pools = config.pools();
        for (s, &units) in layout.iter().enumerate() {
            for u in 0..units {
                unit_starts.push(layers.len());
                match config.arch.spec().unit {
                    Unit::Layerwise => {
                        let p = format!("s{s}.u{u}");
                        layers.push(boxed(AdditiveCoupling::inv_conv_with(
                            &store,
                            &format!("{p}.conv"),
                            c,
                            net.init_scale,
                            backend,
                        )?));
                        layers.push(boxed(
                            InvBatchNorm::new(&store, &format!("{p}.bn"), c, bn_inv)?
                                .with_backend(backend),
                        ));
                        layers.push(boxed(
                            InvLeakyReLU::new(&format!("{p}.act"), config.slope)?
                                .with_backend(backend),
                        ));
                        num_layers += 3;
                    }
                    Unit::Coupling {
                        invertible_fg,
                        inner,
                    } => {
                        let p = format!("s{s}.b{u}");
                        let half = c / 2;
                        let chain = |side: &str| -> Result<Chain> {
                            let q = format!("{p}.{side}");
                            let l = block_chain(&q, half, invertible_fg)?;
                            Chain::new(q, l, inner, Some(Role::Hidden))
                        };
                        let (f, g) = (chain("F")?, chain("G")?);
                        layers.push(boxed(
                            AdditiveCoupling::new(&p, c, f, g, Role::BlockInput)?
                                .with_backend(backend),
                        ));
                        num_layers += 2 * fg.len();
                    }
                    Unit::Residual => {
                        let p = format!("s{s}.b{u}");
                        let l = block_chain(&p, c, false)?;
                        let f = Chain::new(
                            format!("{p}.F"),
                            l,
                            InnerRebuild::Recompute,
                            Some(Role::Hidden),
                        )?;
                        layers.push(boxed(Residual::new(&p, f)));
                        num_layers += fg.len();
                    }
                }
            }
            if s >= pools.len() || !config.keeps_pool(s) {
                continue;
            }
            let name = format!("pool{s}");
            match pools[s] {
                PoolKind::Channel => {
                    layers.push(boxed(ChannelPool::new(&name)));
                    c *= 4;
                }
                PoolKind::Batch => {
                    layers.push(boxed(BatchPool::new(&name)));
                    groups *= 4;
                }
                PoolKind::Max => {
                    layers.push(boxed(MaxPool2::new(&format!("{name}.max"))));
                    layers.push(boxed(
                        Conv2d::new(&store, &format!("{name}.proj"), c, 2 * c, 1, 1, false, 1.0)?
                            .with_backend(backend),
                    ));
                    c *= 2;
                    num_layers += 1;
                }
            }
            num_layers += 1;
        }
        layers.push(boxed(Head::new(&store, "head", c, config.classes, groups)?));
        num_layers += 1;
        let chain = Chain::new("net", layers, InnerRebuild::LayerwiseInverse, None)?;
        Ok(Network {
            config: config.clone(),
            dtype,
            device: device.clone(),
            params: store,
            chain,
            num_layers,
            backend,
            unit_starts,
        })
    }

    /// The same network in another dtype with the same weights (cast) and the same backend:
    /// e.g. the f64 shadow of an f32 network, whose weights are exactly the f32 values.
    pub fn cast(&self, dtype: DType) -> Result<Network> {
        self.cast_with(dtype, self.backend)
    }

    /// The f64 shadow of this network ([`Network::cast`] to f64) on the device that computes
    /// f64: this network's device, or the CPU when it has no f64 (Metal;
    /// [`crate::device::has_f64`]). Feed it batches on [`Network::device`] of the shadow.
    pub fn f64_shadow(&self) -> Result<Network> {
        self.f64_shadow_on(crate::device::has_f64(&self.device))
    }

    /// [`Network::f64_shadow`] with the device's f64 support given: `device_has_f64 = false`
    /// builds the shadow on the CPU whatever this network's device (the path Metal takes; tests
    /// drive it with this flag).
    pub fn f64_shadow_on(&self, device_has_f64: bool) -> Result<Network> {
        let device = crate::device::f64_device(&self.device, device_has_f64);
        let other = Network::build_with(&self.config, DType::F64, &device, self.backend)?;
        other.params.copy_from(&self.params)?;
        Ok(other)
    }

    /// The same network in another dtype with the same weights (cast), computed by `backend`:
    /// e.g. the same network on the other backend (`dtype` = [`Network::dtype`]).
    pub fn cast_with(&self, dtype: DType, backend: Backend) -> Result<Network> {
        let other = Network::build_with(&self.config, dtype, &self.device, backend)?;
        other.params.copy_from(&self.params)?;
        Ok(other)
    }
}
