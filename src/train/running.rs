//! The batch-norm running statistics, which live outside the `VarMap`: snapshots
//! ([`running_stats`]), restores ([`restore_running_stats`]) and their safetensors form for the
//! checkpoints.

use crate::layers::{Layer, Structure};
use crate::nets::Network;
use candle_core::Tensor;

/// The layers of `layer` that keep training state outside the parameters (batch norms), in
/// network order, walking the composites as the backward driver does.
fn stateful_layers<'a>(layer: &'a dyn Layer, out: &mut Vec<&'a dyn Layer>) {
    match layer.structure() {
        Structure::Chain(c) => {
            for l in &c.layers {
                stateful_layers(l.as_ref(), out);
            }
        }
        Structure::Coupling(c) => {
            stateful_layers(c.f(), out);
            stateful_layers(c.g(), out);
        }
        Structure::Residual(r) => stateful_layers(r.f(), out),
        Structure::Primitive => {
            if layer.running_stats().is_some() {
                out.push(layer);
            }
        }
    }
}

/// The batch-norm running statistics of `net`, in network order: the layer's name and its
/// (mean, unbiased variance), `None` before its first training forward. The tensors are
/// immutable (every update makes new ones), so this is a snapshot.
pub fn running_stats(net: &Network) -> Vec<(String, Option<(Tensor, Tensor)>)> {
    let mut layers = Vec::new();
    stateful_layers(&net.chain, &mut layers);
    layers
        .into_iter()
        .map(|l| (l.name().to_string(), l.running_stats().flatten()))
        .collect()
}

/// Put back a snapshot of [`running_stats`] (the same network).
pub fn restore_running_stats(net: &Network, stats: &[(String, Option<(Tensor, Tensor)>)]) {
    let mut layers = Vec::new();
    stateful_layers(&net.chain, &mut layers);
    for (layer, (_, s)) in layers.into_iter().zip(stats) {
        layer.set_running_stats(s.clone());
    }
}

/// [`running_stats`] as safetensors entries `<index>.<layer>.mean` / `.var`.
pub(super) fn running_stats_map(net: &Network) -> std::collections::HashMap<String, Tensor> {
    let mut map = std::collections::HashMap::new();
    for (i, (name, s)) in running_stats(net).into_iter().enumerate() {
        if let Some((mean, var)) = s {
            map.insert(format!("{i}.{name}.mean"), mean);
            map.insert(format!("{i}.{name}.var"), var);
        }
    }
    map
}

/// Restore the entries of [`running_stats_map`] (a layer without entries has none yet).
pub(super) fn set_running_stats_map(
    net: &Network,
    map: &std::collections::HashMap<String, Tensor>,
) {
    let stats: Vec<(String, Option<(Tensor, Tensor)>)> = running_stats(net)
        .into_iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let get = |what: &str| map.get(&format!("{i}.{name}.{what}")).cloned();
            let s = get("mean").zip(get("var"));
            (name, s)
        })
        .collect();
    restore_running_stats(net, &stats);
}
