//! Replays every file of the committed fuzz corpora (`fixtures/fuzz/<target>/`) through
//! the body the cargo-fuzz target runs (`sip/fuzz/targets.rs`, included below), on stable and
//! without libFuzzer, so what a fuzz run once found (issue 13) stays fixed. A failure
//! names the target and the file.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/fuzz").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn committed_fuzz_corpora_replay() {
    let mut failed = Vec::new();
    for (target, body) in targets::TARGETS {
        let files = corpus(target);
        assert!(!files.is_empty(), "no committed corpus for {target}");
        for f in files {
            let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            if std::panic::catch_unwind(|| body(&data)).is_err() {
                failed.push(format!("{target}: {}", f.display()));
            }
        }
    }
    assert!(failed.is_empty(), "fuzz corpus files that fail their target:\n{}", failed.join("\n"));
}
