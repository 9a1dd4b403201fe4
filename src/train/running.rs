//! The batch-norm running statistics, which live outside the `VarMap`: snapshots
//! ([`running_stats`]), restores ([`restore_running_stats`]) and their safetensors form for the
//! checkpoints.

use crate::layers::Layer;
use crate::nets::Network;
use candle_core::Tensor;

/// The layers of `layer` that keep training state outside the parameters (batch norms), in
/// network order ([`crate::layers::primitives`]).
fn stateful_layers(layer: &dyn Layer) -> Vec<&dyn Layer> {
    crate::layers::primitives(layer)
        .into_iter()
        .filter(|l| l.running_stats().is_some())
        .collect()
}

/// The batch-norm running statistics of `net`, in network order: the layer's name and its
/// (mean, unbiased variance), `None` before its first training forward. The tensors are
/// immutable (every update makes new ones), so this is a snapshot.
pub fn running_stats(net: &Network) -> Vec<(String, Option<(Tensor, Tensor)>)> {
    stateful_layers(&net.chain)
        .into_iter()
        .map(|l| (l.name().to_string(), l.running_stats().flatten()))
        .collect()
}

/// Run `f` on `net` and put its batch-norm running statistics back as they were before, whether
/// `f` succeeds or not: for extra training-mode forwards (probes, plans, checks) that must leave
/// the run as it was.
pub fn keeping_running_stats<T>(net: &Network, f: impl FnOnce() -> T) -> T {
    let before = running_stats(net);
    let out = f();
    restore_running_stats(net, &before);
    out
}

/// Put back a snapshot of [`running_stats`] (the same network).
pub fn restore_running_stats(net: &Network, stats: &[(String, Option<(Tensor, Tensor)>)]) {
    for (layer, (_, s)) in stateful_layers(&net.chain).into_iter().zip(stats) {
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
