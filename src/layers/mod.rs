//! Invertible (and the few non-invertible) layers.
//!
//! Every layer implements [`Layer`]: a forward with a [`Pass`] that says which statistics and
//! which parameter tensors to use, an `inverse` for the invertible ones, and (primitive layers)
//! a closed-form vector-Jacobian product [`Layer::vjp`]. Which input the product is taken at
//! (stored, rebuilt, recomputed) is decided by the one backward driver, [`crate::backprop`]. The public invertible layers also implement
//! candle's [`candle_nn::Module`] (forward = record the state the inverse needs) and
//! [`Invertible`] (`inverse`).
//!
//! | layer | forward | inverse | state kept |
//! |---|---|---|---|
//! | [`InvBatchNorm`] | `y = g~ (x - mu_B) / s + beta` | `x = s (y - beta) / g~ + mu_B` | `mu_B`, `var_B` |
//! | [`InvLeakyReLU`] | `y = x` if `x > 0` else `n x` | `x = y` if `y > 0` else `y / n` | none |
//! | [`AdditiveCoupling`] | `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)` | `x2 = y2 - G(y1)`, `x1 = y1 - F(x2)` | none (inner BN stats) |
//! | [`ChannelPool`] | `(b,c,h,w) -> (b,4c,h/2,w/2)` | exact | none |
//! | [`BatchPool`] | `(b,c,h,w) -> (4b,c,h/2,w/2)` | exact | none |
//!
//! The layers with a choice of code ([`Conv2d`], [`Relu`], [`InvBatchNorm`], [`InvLeakyReLU`],
//! [`AdditiveCoupling`]'s additions) hold a [`crate::backend::Backend`], set with their
//! `with_backend` (default [`Backend::Kernels`](crate::backend::Backend::Kernels)).

pub mod batchnorm;
pub mod conv;
pub mod coupling;
pub mod gamma_init;
pub mod grads;
pub mod leaky_relu;
pub mod pooling;

pub use batchnorm::{BatchNormConfig, GammaInit, InvBatchNorm};
pub use conv::{Conv2d, Head, Relu};
pub use coupling::{AdditiveCoupling, InnerRebuild, Residual};
pub use grads::{Back, Grads, Held};
pub use leaky_relu::InvLeakyReLU;
pub use pooling::{BatchPool, ChannelPool, MaxPool2};

use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use std::collections::HashMap;

/// Which statistics and parameter tensors a forward uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Training forward of a step: batch statistics are computed and *recorded* (for the
    /// inverse), parameters are detached (no autograd graph is built).
    Record,
    /// Like `Record` but differentiable in the parameters (used by `Module::forward`).
    RecordGraph,
    /// Recompute with the statistics recorded by the last `Record` pass, detached (used to
    /// rebuild activations inside reversible blocks).
    Replay,
    /// Differentiable forward for a vector-Jacobian product: batch statistics from the input,
    /// parameters tracked, nothing recorded.
    Graph,
    /// Inference: running statistics, detached.
    Eval,
}

impl Pass {
    /// Whether parameters are tracked by autograd in this pass.
    pub fn tracks_params(self) -> bool {
        matches!(self, Pass::Graph | Pass::RecordGraph)
    }
}

/// A named learnable parameter.
#[derive(Clone)]
pub struct Param {
    /// Path-like name, e.g. `s0.u3.bn.gamma`.
    pub name: String,
    /// The variable.
    pub var: Var,
}

impl Param {
    /// The tensor to compute with in `pass`: tracked or detached.
    pub fn tensor(&self, pass: Pass) -> Tensor {
        if pass.tracks_params() {
            self.var.as_tensor().clone()
        } else {
            self.var.as_detached_tensor()
        }
    }
}

/// Candle's `Module` plus an inverse: the public face of an invertible layer.
pub trait Invertible: candle_nn::Module {
    /// Reconstruct the input from the output, using only the state recorded by the last
    /// forward.
    fn inverse(&self, y: &Tensor) -> Result<Tensor>;
}

/// Kind of a traced (rebuilt) activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The input of a layer rebuilt by that layer's inverse, in a layer-wise chain.
    Layer,
    /// The input of a reversible block, rebuilt by the block's analytic inverse.
    BlockInput,
    /// A hidden activation inside a reversible block (rebuilt layer-wise or recomputed).
    Hidden,
}

impl Role {
    /// Name used in result files.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Layer => "layer",
            Role::BlockInput => "block-input",
            Role::Hidden => "hidden",
        }
    }
}

/// One activation seen by the backward, in the order the backward visits them (top down).
#[derive(Clone)]
pub struct TraceEntry {
    /// The name of the layer whose *input* this is.
    pub layer: String,
    /// What kind of activation it is.
    pub role: Role,
    /// The activation (stored or reconstructed, depending on the run).
    pub tensor: Tensor,
}

/// Activations pushed by the forward pass for the backward to pop (last in, first out).
pub struct Tape {
    /// Store every layer's input (stored mode) or only those of non-invertible layers.
    pub store_all: bool,
    /// Also store the inputs of layers whose VJP is taken at their output
    /// ([`Layer::vjp_at_output`]), for a trace that compares every activation.
    pub for_trace: bool,
    /// The pass the forward runs in: [`Pass::Record`] for a training forward (batch statistics
    /// computed and recorded), [`Pass::Replay`] for the recomputation of a checkpointed segment
    /// (the statistics recorded by that forward, so the same values, bitwise).
    pub pass: Pass,
    /// The anchored layers (anchored source): their inputs are stored as in stored mode.
    pub anchors: std::collections::HashSet<String>,
    items: Vec<Tensor>,
}

impl Tape {
    /// An empty tape.
    pub fn new(store_all: bool) -> Self {
        Tape {
            store_all,
            for_trace: false,
            pass: Pass::Record,
            anchors: Default::default(),
            items: Vec::new(),
        }
    }

    /// Whether the layer `name` stores its input as in stored mode: every layer when the tape
    /// stores everything, an anchor otherwise.
    pub fn stores_input_of(&self, name: &str) -> bool {
        self.store_all || self.anchors.contains(name)
    }

    /// An empty tape that stores every input, filled by a recomputation in [`Pass::Replay`]
    /// (a checkpointed segment, [`crate::backprop`]); `for_trace` as [`Tape::for_trace`].
    pub fn replay(for_trace: bool) -> Self {
        Tape {
            pass: Pass::Replay,
            ..Tape::for_trace(true, for_trace)
        }
    }

    /// An empty tape that also keeps what a trace compares ([`Tape::for_trace`]).
    pub fn for_trace(store_all: bool, trace: bool) -> Self {
        Tape {
            for_trace: trace,
            ..Tape::new(store_all)
        }
    }

    /// Whether a layer that `pushes` (its input would be stored) with VJP at its output
    /// `at_output` really stores its input.
    pub fn stores(&self, pushes: bool, at_output: bool) -> bool {
        pushes && (!at_output || self.for_trace)
    }

    /// [`Tape::stores`] for the layer `name`: an anchor stores its input even when its VJP
    /// is taken at its output (the layer below may need that input, which an anchor gives
    /// exactly; the VJP of such a layer is the same at either).
    pub fn stores_for(&self, name: &str, pushes: bool, at_output: bool) -> bool {
        self.stores(pushes, at_output) || (pushes && self.anchors.contains(name))
    }
    /// Push an activation.
    pub fn push(&mut self, t: Tensor) {
        self.items.push(t)
    }
    /// Pop the last activation.
    pub fn pop(&mut self, layer: &str) -> Result<Tensor> {
        self.items
            .pop()
            .ok_or_else(|| Error::internal(layer, "backward found no stored input (tape empty)"))
    }
    /// Number of stored activations.
    pub fn len(&self) -> usize {
        self.items.len()
    }
    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Total bytes of the stored activations.
    pub fn bytes(&self) -> usize {
        self.items
            .iter()
            .map(|t| t.elem_count() * t.dtype().size_in_bytes())
            .sum()
    }
}

/// What the backward driver ([`crate::backprop`]) needs to know of a layer's structure: a
/// primitive layer (its own [`Layer::vjp`]) or one of the composites the driver walks.
pub enum Structure<'a> {
    /// A layer with a closed-form vector-Jacobian product.
    Primitive,
    /// A sequence of layers.
    Chain(&'a Chain),
    /// A reversible block with F and G.
    Coupling(&'a AdditiveCoupling),
    /// An ordinary residual block.
    Residual(&'a Residual),
}

impl<'a> Structure<'a> {
    /// The layers directly inside a composite, in network order (a block's F before its G);
    /// none for a primitive layer.
    pub fn children(&self) -> Vec<&'a dyn Layer> {
        match self {
            Structure::Primitive => Vec::new(),
            Structure::Chain(c) => c.layers.iter().map(|l| l.as_ref()).collect(),
            Structure::Coupling(c) => vec![c.f() as &dyn Layer, c.g() as &dyn Layer],
            Structure::Residual(r) => vec![r.f() as &dyn Layer],
        }
    }
}

/// Every layer of the tree under `layer`, composites included, in network order (a composite
/// before its children): the one traversal of the layer tree ([`Structure::children`]). The
/// composites' parameters, training's batch-norm running statistics and the anchorable layers
/// follow this order; the backward driver ([`crate::backprop`]) walks the same structure top
/// down.
pub fn walk(layer: &dyn Layer) -> Vec<&dyn Layer> {
    let mut out = vec![layer];
    for child in layer.structure().children() {
        out.extend(walk(child));
    }
    out
}

/// Every primitive layer of `layer` (itself if it is one), in network order ([`walk`]).
pub fn primitives(layer: &dyn Layer) -> Vec<&dyn Layer> {
    walk(layer)
        .into_iter()
        .filter(|l| matches!(l.structure(), Structure::Primitive))
        .collect()
}

/// A layer of a network: forward under a [`Pass`], optional inverse, and (primitive layers) a
/// closed-form vector-Jacobian product. Which input the product is taken at (stored, rebuilt by
/// the inverse, recomputed) is decided by the one backward driver, [`crate::backprop`].
pub trait Layer: Send + Sync {
    /// Path-like name (`s0.u3.bn`).
    fn name(&self) -> &str;
    /// Forward under `pass`.
    fn forward_pass(&self, x: &Tensor, pass: Pass) -> Result<Tensor>;
    /// Whether `inverse` is available.
    fn is_invertible(&self) -> bool;
    /// Reconstruct the input from the output (state from the last `Record` pass).
    fn inverse(&self, _y: &Tensor) -> Result<Tensor> {
        Err(Error::config(
            self.name(),
            "an invertible layer",
            "a layer that is not invertible",
        ))
    }
    /// Learnable parameters.
    fn params(&self) -> Vec<Param>;
    /// Role of this layer's input in a trace.
    fn input_role(&self) -> Role {
        Role::Layer
    }
    /// The structure the backward driver walks (primitive unless overridden).
    fn structure(&self) -> Structure<'_> {
        Structure::Primitive
    }

    /// Training state outside the parameters (a batch norm's running mean and variance):
    /// `None` for a layer without any, `Some(None)` before its first training forward. Saved
    /// with training checkpoints, so that a resumed run evaluates as an uninterrupted one.
    fn running_stats(&self) -> Option<Option<(Tensor, Tensor)>> {
        None
    }

    /// Restore [`Layer::running_stats`] (a layer without state ignores it).
    fn set_running_stats(&self, _stats: Option<(Tensor, Tensor)>) {}

    /// Vector-Jacobian product of a primitive layer at `input` (its training-mode function,
    /// batch statistics from `input` for batch norms): returns `dL/dinput` for the output
    /// gradient `grad_output`, and inserts the parameter gradients into `grads` when given.
    /// Closed form in every layer (the derivative is stated in its docs); no autograd graph.
    fn vjp(
        &self,
        _input: &Tensor,
        _grad_output: &Tensor,
        _grads: Option<&mut Grads>,
    ) -> Result<Tensor> {
        Err(Error::internal(
            self.name(),
            "composite layers are walked by the backward driver (no vjp of their own)",
        ))
    }

    /// Whether [`Layer::vjp`] needs only the sign of its input, which the output shares (ReLU,
    /// leaky ReLU): then the stored mode takes the VJP at the output (the stored input of the
    /// layer above) and stores nothing for this layer, as the paper's memory model counts.
    fn vjp_at_output(&self) -> bool {
        false
    }

    /// Training forward that pushes on the tape what the backward will pop: the input when
    /// `push_input` and (the tape stores everything or the layer is not invertible), unless
    /// the VJP is taken at the output ([`Tape::stores`]). The forward runs in the tape's
    /// [`Tape::pass`].
    fn forward_tape(&self, x: &Tensor, tape: &mut Tape, push_input: bool) -> Result<Tensor> {
        let pushes = push_input && (tape.stores_input_of(self.name()) || !self.is_invertible());
        if tape.stores_for(self.name(), pushes, self.vjp_at_output()) {
            tape.push(x.clone());
        }
        self.forward_pass(x, tape.pass)
    }
}

/// Vector-Jacobian product of a layer at `input` by candle's autograd on a fresh leaf: the
/// **test oracle** for the closed forms of [`Layer::vjp`] (never used by a training step).
/// Returns the input gradient and the parameter gradients by name.
pub fn autograd_vjp<L: Layer + ?Sized>(
    layer: &L,
    input: &Tensor,
    grad_output: &Tensor,
) -> Result<(Tensor, HashMap<String, Tensor>)> {
    let leaf = Var::from_tensor(input)?;
    let out = layer.forward_pass(leaf.as_tensor(), Pass::Graph)?;
    let dot = out.mul(&grad_output.to_dtype(out.dtype())?)?.sum_all()?;
    let store = dot.backward()?;
    let mut grads = HashMap::new();
    for p in layer.params() {
        let g = match store.get(p.var.as_tensor()) {
            Some(g) => g.detach(),
            None => p.var.zeros_like()?,
        };
        grads.insert(p.name.clone(), g);
    }
    let dx = match store.get(leaf.as_tensor()) {
        Some(g) => g.detach(),
        None => input.zeros_like()?,
    };
    Ok((dx, grads))
}

/// A sequence of layers. The network itself is a chain; so are F and G of a coupling.
pub struct Chain {
    name: String,
    /// The layers, bottom to top.
    pub layers: Vec<Box<dyn Layer>>,
    /// How hidden activations are rebuilt in reconstructed mode.
    pub rebuild: InnerRebuild,
    /// Role given to the inputs of layers 1.. of this chain in a trace (`None`: the layers'
    /// own roles).
    pub hidden_role: Option<Role>,
}

impl Chain {
    /// A chain named `name`.
    pub fn new(
        name: impl Into<String>,
        layers: Vec<Box<dyn Layer>>,
        rebuild: InnerRebuild,
        hidden_role: Option<Role>,
    ) -> Result<Self> {
        let name = name.into();
        if layers.is_empty() {
            return Err(Error::config(name, "a chain of at least one layer", "none"));
        }
        if rebuild == InnerRebuild::LayerwiseInverse
            && hidden_role.is_some()
            && !layers.iter().all(|l| l.is_invertible())
        {
            return Err(Error::config(
                name,
                "invertible layers only (layer-wise rebuilding)",
                "a layer that is not invertible",
            ));
        }
        Ok(Chain {
            name,
            layers,
            rebuild,
            hidden_role,
        })
    }

    /// Forward under `pass`, returning every layer's input too (bottom to top) when `keep`.
    pub fn forward_keep(
        &self,
        x: &Tensor,
        pass: Pass,
        keep: bool,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let mut inputs = Vec::new();
        let mut h = x.clone();
        for layer in &self.layers {
            if keep {
                inputs.push(h.clone());
            }
            h = layer.forward_pass(&h, pass)?;
        }
        Ok((h, inputs))
    }
}

impl Chain {
    /// The input of every layer of the chain (bottom to top) from the chain input `x`: the
    /// layers below the top one run forward; the top layer's output is not needed (a recompute
    /// of the whole chain computed it and threw it away: one wasted convolution per F or G
    /// of a hybrid's invertible convolutions).
    pub fn layer_inputs(&self, x: &Tensor, pass: Pass) -> Result<Vec<Tensor>> {
        let mut inputs = Vec::with_capacity(self.layers.len());
        let mut h = x.clone();
        for (k, layer) in self.layers.iter().enumerate() {
            if k + 1 == self.layers.len() {
                inputs.push(h);
                break;
            }
            inputs.push(h.clone());
            h = layer.forward_pass(&h, pass)?;
        }
        Ok(inputs)
    }
}

impl Layer for Chain {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        Ok(self.forward_keep(x, pass, false)?.0)
    }
    fn is_invertible(&self) -> bool {
        self.layers.iter().all(|l| l.is_invertible())
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let mut h = y.clone();
        for layer in self.layers.iter().rev() {
            h = layer.inverse(&h)?;
        }
        Ok(h)
    }
    fn params(&self) -> Vec<Param> {
        primitives(self).iter().flat_map(|l| l.params()).collect()
    }
    fn structure(&self) -> Structure<'_> {
        Structure::Chain(self)
    }
    fn forward_tape(&self, x: &Tensor, tape: &mut Tape, push_input: bool) -> Result<Tensor> {
        let recompute = self.rebuild == InnerRebuild::Recompute && !tape.store_all;
        let mut h = x.clone();
        for (k, layer) in self.layers.iter().enumerate() {
            let push = if k == 0 { push_input } else { !recompute };
            h = layer.forward_tape(&h, tape, push)?;
        }
        Ok(h)
    }
}

/// The error of a parameter store whose lock a panicking thread poisoned.
fn poisoned() -> Error {
    Error::internal("parameter store", "lock poisoned by a panicking thread")
}

/// Parameters of a network, held the candle way in a [`VarMap`] (saveable as safetensors),
/// created from a seed so that every parameter is reproducible independently of creation
/// order: parameter `name` is drawn from `rng_for(seed, name)`.
pub struct ParamStore {
    /// The variables by name.
    pub varmap: VarMap,
    /// Seed of the initialisation.
    pub seed: u64,
    /// Storage dtype of the parameters.
    pub dtype: DType,
    /// Device of the parameters.
    pub device: Device,
}

impl ParamStore {
    /// An empty store.
    pub fn new(seed: u64, dtype: DType, device: &Device) -> Self {
        crate::device::init_cpu_threads();
        ParamStore {
            varmap: VarMap::new(),
            seed,
            dtype,
            device: device.clone(),
        }
    }

    fn insert(&self, name: &str, t: Tensor) -> Result<Param> {
        let var = Var::from_tensor(&t)?;
        let mut data = self.varmap.data().lock().map_err(|_| poisoned())?;
        if data.contains_key(name) {
            let d = "a parameter of this name exists already (names must be unique)";
            return Err(Error::internal(format!("parameter `{name}`"), d));
        }
        data.insert(name.to_string(), var.clone());
        Ok(Param {
            name: name.to_string(),
            var,
        })
    }

    /// A parameter with i.i.d. `N(mean, std^2)` entries (drawn in f64, cast to the dtype).
    pub fn normal(&self, name: &str, shape: &[usize], mean: f64, std: f64) -> Result<Param> {
        let mut rng = crate::util::rng_for(self.seed, name);
        let t = crate::util::randn(&mut rng, shape, mean, std, self.dtype, &self.device)?;
        self.insert(name, t)
    }

    /// A parameter filled with `value`.
    pub fn constant(&self, name: &str, shape: &[usize], value: f64) -> Result<Param> {
        let t = (Tensor::ones(shape, DType::F64, &Device::Cpu)? * value)?
            .to_dtype(self.dtype)?
            .to_device(&self.device)?;
        self.insert(name, t)
    }

    /// A parameter `exp(spread * N(0,1))` (log-normal around 1; `spread = 0` gives ones).
    pub fn log_normal(&self, name: &str, shape: &[usize], spread: f64) -> Result<Param> {
        let mut rng = crate::util::rng_for(self.seed, name);
        let t =
            crate::util::randn(&mut rng, shape, 0.0, spread, DType::F64, &Device::Cpu)?.exp()?;
        self.insert(name, t.to_dtype(self.dtype)?.to_device(&self.device)?)
    }

    /// A parameter `|N(1, std^2)| + offset` (drawn in f64, folded, shifted, then cast).
    pub fn abs_normal(&self, name: &str, shape: &[usize], std: f64, offset: f64) -> Result<Param> {
        let mut rng = crate::util::rng_for(self.seed, name);
        let t = (crate::util::randn(&mut rng, shape, 1.0, std, DType::F64, &Device::Cpu)?
            .abs()?
            + offset)?;
        self.insert(name, t.to_dtype(self.dtype)?.to_device(&self.device)?)
    }

    /// Copy every parameter of `other` (same names), casting to this store's dtype.
    pub fn copy_from(&self, other: &ParamStore) -> Result<()> {
        let src = other.varmap.data().lock().map_err(|_| poisoned())?;
        let dst = self.varmap.data().lock().map_err(|_| poisoned())?;
        for (name, var) in dst.iter() {
            let s = src.get(name).ok_or_else(|| {
                Error::config(
                    "the source network",
                    format!("a parameter `{name}`"),
                    "none",
                )
            })?;
            var.set(
                &s.as_tensor()
                    .to_dtype(self.dtype)?
                    .to_device(&self.device)?,
            )?;
        }
        Ok(())
    }
}

/// Split the channels of `x` (NCHW) into two equal halves.
pub fn split_channels(x: &Tensor, layer: &str) -> Result<(Tensor, Tensor)> {
    let c = x.dim(1)?;
    if c % 2 != 0 {
        return Err(Error::BadChannels {
            layer: layer.into(),
            expected: "an even number of".into(),
            got: c,
        });
    }
    Ok((x.narrow(1, 0, c / 2)?, x.narrow(1, c / 2, c / 2)?))
}

/// Check that `x` is 4-D (NCHW).
pub fn check_nchw(x: &Tensor, layer: &str) -> Result<(usize, usize, usize, usize)> {
    x.dims4().map_err(|_| Error::ShapeMismatch {
        context: layer.into(),
        expected: "(batch, channels, height, width)".into(),
        got: x.dims().to_vec(),
    })
}
