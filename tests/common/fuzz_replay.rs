//! Replays every file of the committed fuzz corpora (`fixtures/fuzz/<target>/`) through the
//! body each cargo-fuzz target runs, on stable and without libFuzzer, so what a fuzz run once
//! found (issue 13) stays fixed. Shared by the replay tests of the three fuzz projects
//! (`sip/tests`, `media/tests`, `tests/fuzz_corpus.rs`); a failure names the target and file.

use std::path::{Path, PathBuf};

/// A fuzz target: its name (its corpus directory) and the body it runs on one input.
pub type Target = (&'static str, fn(&[u8]));

fn corpus(fixtures: &Path, target: &str) -> Vec<PathBuf> {
    let dir = fixtures.join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Every corpus file of every target under `fixtures` (the `fixtures/fuzz` directory)
/// through its target's body; panics listing the files that fail.
pub fn replay(fixtures: &Path, targets: &[Target]) {
    let mut failed = Vec::new();
    for (target, body) in targets {
        let files = corpus(fixtures, target);
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
