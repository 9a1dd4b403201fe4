//! What the backward driver ([`crate::backprop`]) and the layers' vector-Jacobian products
//! exchange: the parameter gradients ([`Grads`]), a tensor the walk holds ([`Held`]) and what one
//! step of the walk returns ([`Back`]). They live here, below the driver, so that the layers
//! ([`Layer::vjp`](super::Layer::vjp)) need nothing from it; [`crate::backprop`] re-exports them.

use candle_core::Tensor;
use std::collections::HashMap;

/// Parameter gradients by parameter name. Each gradient inserted is declared to the counting
/// allocator as not an activation ([`crate::alloc::exclude`]), so that the memory
/// experiment reports the activation peak apart from the parameter gradients.
#[derive(Default)]
pub struct Grads {
    map: HashMap<String, Tensor>,
}

impl Grads {
    /// No gradients.
    pub fn new() -> Self {
        Self::default()
    }
    /// Keep `grad` as the gradient of parameter `name`.
    pub fn insert(&mut self, name: String, grad: Tensor) {
        crate::alloc::exclude(grad.elem_count() * grad.dtype().size_in_bytes());
        self.map.insert(name, grad);
    }
    /// The gradient of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.map.get(name)
    }
    /// The gradients by name.
    pub fn into_map(self) -> HashMap<String, Tensor> {
        self.map
    }
}

impl std::ops::Index<&str> for Grads {
    type Output = Tensor;
    fn index(&self, name: &str) -> &Tensor {
        &self.map[name]
    }
}

/// A tensor the walk holds, and whether it holds it alone (then it may be updated in place).
pub struct Held {
    /// The tensor.
    pub tensor: Tensor,
    /// True when nothing else reads this tensor's storage (nor a view of it) any more.
    pub owned: bool,
}

impl Held {
    /// A tensor held alone.
    pub fn owned(tensor: Tensor) -> Self {
        Held {
            tensor,
            owned: true,
        }
    }
    /// A tensor shared with someone else (never written).
    pub fn shared(tensor: Tensor) -> Self {
        Held {
            tensor,
            owned: false,
        }
    }
}

/// What one step of the walk returns.
pub struct Back {
    /// The layer's input: stored, rebuilt, or the one the caller knew; `None` in stored mode
    /// for a layer whose VJP was taken at its output ([`Layer::vjp_at_output`](super::Layer::vjp_at_output)) and that stored
    /// nothing.
    pub input: Option<Held>,
    /// Gradient of the loss with respect to the input (`None` when gradients are not computed).
    pub grad: Option<Held>,
    /// True when `input` was rebuilt (by an inverse or a recomputation) rather than stored.
    pub rebuilt: bool,
}
