//! Replays every input of `fuzz/corpus/` (the seeds, and what fuzzing found
//! worth keeping) through the fuzz targets' bodies, so `cargo test` checks
//! again every input that ever crashed a parser. Fuzzing itself:
//! docs/fuzzing.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

#[path = "../fuzz/targets.rs"]
mod targets;

#[test]
fn every_corpus_input_is_handled_without_a_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, target) in targets::ALL {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{name}: an empty corpus");
        for path in inputs {
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", path.display());
        }
    }
}
