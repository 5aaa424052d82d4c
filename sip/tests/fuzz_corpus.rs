//! Replays the committed fuzz corpora through the bodies of `sip/fuzz/targets.rs` (issue 13); see
//! tests/common/fuzz_replay.rs.

#[path = "../fuzz/targets.rs"]
mod targets;

#[path = "../../tests/common/fuzz_replay.rs"]
mod fuzz_replay;

#[test]
fn committed_fuzz_corpora_replay() {
    fuzz_replay::replay(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/fuzz"), targets::TARGETS);
}
