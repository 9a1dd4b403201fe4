//! The `anchors` experiment.
