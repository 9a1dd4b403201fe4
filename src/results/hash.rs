//! FNV-1a (64 bit), the hash of cache keys and of the named seed streams: defined in
//! [`crate::hash`] (below [`crate::util`], whose seed streams use it) and re-exported here with
//! the rest of what result files share.

pub use crate::hash::{fnv1a64, fnv1a64_from, FNV_OFFSET, FNV_PRIME};
