//! [`BackwardPlan`]: the one description of a backward, and its parts ([`Source`],
//! [`Rebuild`], the checkpointed segment).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Where the backward takes each layer's input from.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Inputs stored by the forward pass.
    #[default]
    Stored,
    /// Inputs rebuilt by inverses from the layer above (only non-invertible layers store).
    Reconstructed,
    /// Inputs recomputed forward from the nearest stored checkpoint (the input of every k-th
    /// unit or block; Chen et al. 2016): exact, bitwise the stored gradients.
    Checkpointed,
    /// Reconstructed, except at the anchors: the forward stores an anchored layer's input and
    /// the backward takes it there, so the reconstruction error restarts from zero (anchors
    /// from an SNR target or a list)
    //
    // No anchors: bitwise `reconstructed`; every rebuilt input anchored: bitwise `stored`
    // (BackwardPlan::anchors; crate::measure::anchors::Anchoring chooses them).
    Anchored,
}

impl Source {
    /// Name used in result files.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Stored => "stored",
            Source::Reconstructed => "reconstructed",
            Source::Checkpointed => "checkpointed",
            Source::Anchored => "anchored",
        }
    }

    /// Whether the backward's inputs are exactly the stored ones (stored and checkpointed: no
    /// reconstruction error, infinite SNR, zero gradient angle).
    pub fn exact(self) -> bool {
        matches!(self, Source::Stored | Source::Checkpointed)
    }

    /// Whether the forward stores every input (stored, checkpointed) rather than only those
    /// the backward cannot rebuild (reconstructed, anchored).
    pub fn stores_all(self) -> bool {
        self.exact()
    }
}

/// The default checkpoint interval of a network of `depth` units or blocks:
/// `k = ceil(sqrt(depth))` (Chen et al. 2016), computed in integers (1 for depth 0).
pub fn default_segment(depth: usize) -> usize {
    let mut k = 1;
    while k * k < depth {
        k += 1;
    }
    k
}

/// Check a checkpoint interval `every` (units or blocks per segment) for a network of `depth`
/// units or blocks: `1 <= every <= depth`. `None` is [`default_segment`].
pub fn segment_length(every: Option<usize>, depth: usize) -> Result<usize> {
    let k = every.unwrap_or_else(|| default_segment(depth));
    if k == 0 || k > depth {
        return Err(Error::config(
            "checkpointed segment (units or blocks per segment)",
            format!("between 1 and the depth {depth}"),
            k,
        ));
    }
    Ok(k)
}

/// How a reversible block takes its step of a reconstructed backward.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Rebuild {
    /// The block input from the block's analytic inverse, then the per-layer backward of F and
    /// G, their hidden activations rebuilt as their [`crate::layers::InnerRebuild`] says (docs/design.md section 3).
    #[default]
    PerLayer,
    /// Gomez et al.'s Algorithm 1: `G(y1)` and `F(x2)` computed once each, hidden inputs kept,
    /// serving both the inverse and the gradient (hidden activations always recomputed).
    Algorithm1,
}

/// The one description of a backward: where each layer's input comes from ([`Source`]), how
/// a reversible block rebuilds its input in reconstructed mode ([`Rebuild`]), and how many
/// units or blocks a checkpointed segment holds. (How the hidden activations of F and G are
/// rebuilt is the architecture's, [`crate::layers::InnerRebuild`], fixed when the network is built.)
///
/// Named plans, as configs, tables and result files spell them ([`BackwardPlan::name`],
/// [`BackwardPlan::parse`]): `stored`, `reconstructed` (per-layer rebuild), `algorithm1`
/// (reconstructed with Gomez et al.'s Algorithm 1), `checkpointed` (`checkpointed:K` with
/// `K` units or blocks per segment; without `K`, `ceil(sqrt(depth))` or the tool's
/// `segment`). A [`Source`] converts to its plan with the default rebuild and segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct BackwardPlan {
    /// Where each layer's input comes from.
    pub source: Source,
    /// How a reversible block rebuilds its input (reconstructed mode).
    pub rebuild: Rebuild,
    /// Checkpointed: units or blocks per segment, `1..=depth` (`None`: [`default_segment`]).
    pub segment: Option<usize>,
    /// Anchored: the names of the layers whose input the forward stores and the backward
    /// takes as stored (any layer whose input the reconstructed mode rebuilds: a layer of a
    /// layer-wise chain, a reversible block, a layer of a hybrid's F or G). Not part of the
    /// plan's name: configs and result files list them apart.
    pub anchors: Vec<String>,
}

impl BackwardPlan {
    /// Every input stored by the forward.
    pub const STORED: BackwardPlan = BackwardPlan {
        source: Source::Stored,
        rebuild: Rebuild::PerLayer,
        segment: None,
        anchors: Vec::new(),
    };
    /// Inputs rebuilt by inverses, each block by its analytic inverse, then the per-layer
    /// backward of F and G.
    pub const RECONSTRUCTED: BackwardPlan = BackwardPlan {
        source: Source::Reconstructed,
        rebuild: Rebuild::PerLayer,
        segment: None,
        anchors: Vec::new(),
    };
    /// Reconstructed with Gomez et al.'s Algorithm 1 ([`Rebuild::Algorithm1`]).
    pub const ALGORITHM1: BackwardPlan = BackwardPlan {
        source: Source::Reconstructed,
        rebuild: Rebuild::Algorithm1,
        segment: None,
        anchors: Vec::new(),
    };

    /// Reconstructed with the inputs of `anchors` stored ([`Source::Anchored`]).
    pub fn anchored(anchors: Vec<String>) -> BackwardPlan {
        BackwardPlan {
            source: Source::Anchored,
            anchors,
            ..BackwardPlan::STORED
        }
    }

    /// Checkpointed with `segment` units or blocks per segment (`None`: the default).
    pub fn checkpointed(segment: Option<usize>) -> BackwardPlan {
        BackwardPlan {
            source: Source::Checkpointed,
            segment,
            ..BackwardPlan::STORED
        }
    }

    /// The same plan with `segment` when it is checkpointed and has none of its own.
    pub fn with_default_segment(self, segment: Option<usize>) -> BackwardPlan {
        match self.source {
            Source::Checkpointed => BackwardPlan {
                segment: self.segment.or(segment),
                ..self
            },
            Source::Stored | Source::Reconstructed | Source::Anchored => self,
        }
    }

    /// The plan's name: `stored`, `reconstructed`, `algorithm1` or `checkpointed` (the
    /// segment is not part of it).
    pub fn name(&self) -> &'static str {
        match (self.source, self.rebuild) {
            (Source::Reconstructed, Rebuild::Algorithm1) => "algorithm1",
            (source, _) => source.as_str(),
        }
    }

    /// Parse a named plan (`checkpointed:K` sets the segment).
    pub fn parse(text: &str) -> Result<BackwardPlan> {
        let t = text.trim().to_ascii_lowercase();
        let (name, k) = match t.split_once(':') {
            Some((n, k)) => (n, Some(k)),
            None => (t.as_str(), None),
        };
        let plan = match name {
            "stored" => BackwardPlan::STORED,
            "reconstructed" => BackwardPlan::RECONSTRUCTED,
            "algorithm1" => BackwardPlan::ALGORITHM1,
            "checkpointed" => BackwardPlan::checkpointed(None),
            "anchored" => BackwardPlan::anchored(Vec::new()),
            _ => {
                return Err(Error::Unknown {
                    kind: "backward",
                    got: text.into(),
                    expected: "stored, reconstructed, algorithm1, checkpointed[:K], anchored"
                        .into(),
                })
            }
        };
        match k {
            None => Ok(plan),
            Some(k) if plan.source == Source::Checkpointed => match k.parse::<usize>() {
                Ok(k) if k >= 1 => Ok(BackwardPlan::checkpointed(Some(k))),
                _ => Err(Error::config(
                    "checkpointed:K",
                    "K >= 1 units or blocks per segment",
                    k,
                )),
            },
            Some(_) => Err(Error::config(
                "backward",
                "a segment (`:K`) only after checkpointed",
                text,
            )),
        }
    }
}

impl From<&BackwardPlan> for BackwardPlan {
    fn from(plan: &BackwardPlan) -> BackwardPlan {
        plan.clone()
    }
}

impl From<Source> for BackwardPlan {
    fn from(source: Source) -> BackwardPlan {
        BackwardPlan {
            source,
            ..BackwardPlan::STORED
        }
    }
}

impl std::fmt::Display for BackwardPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.segment {
            Some(k) if self.source == Source::Checkpointed => write!(f, "{}:{k}", self.name()),
            _ => f.write_str(self.name()),
        }
    }
}

impl std::str::FromStr for BackwardPlan {
    type Err = Error;
    fn from_str(s: &str) -> Result<BackwardPlan> {
        BackwardPlan::parse(s)
    }
}

impl From<BackwardPlan> for String {
    fn from(p: BackwardPlan) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for BackwardPlan {
    type Error = Error;
    fn try_from(s: String) -> Result<BackwardPlan> {
        BackwardPlan::parse(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_plans_parse_print_and_serialise_back() {
        for text in [
            "stored",
            "reconstructed",
            "algorithm1",
            "checkpointed",
            "checkpointed:3",
        ] {
            let plan = BackwardPlan::parse(text).unwrap();
            assert_eq!(plan.to_string(), text);
            let json = serde_json::to_string(&plan).unwrap();
            assert_eq!(serde_json::from_str::<BackwardPlan>(&json).unwrap(), plan);
        }
        assert_eq!(
            BackwardPlan::parse("algorithm1").unwrap().rebuild,
            Rebuild::Algorithm1
        );
        assert_eq!(
            BackwardPlan::parse("checkpointed:4").unwrap().segment,
            Some(4)
        );
        assert_eq!(BackwardPlan::from(Source::Stored), BackwardPlan::STORED);
        for bad in ["recon", "checkpointed:0", "stored:2", "checkpointed:x"] {
            assert!(BackwardPlan::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_default_segment_applies_to_checkpointed_plans_without_one() {
        let c = BackwardPlan::checkpointed(None).with_default_segment(Some(2));
        assert_eq!(c.segment, Some(2));
        let own = BackwardPlan::checkpointed(Some(3)).with_default_segment(Some(2));
        assert_eq!(own.segment, Some(3));
        assert_eq!(
            BackwardPlan::STORED.with_default_segment(Some(2)),
            BackwardPlan::STORED
        );
    }
}
