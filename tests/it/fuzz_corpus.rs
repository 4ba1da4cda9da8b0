//! Replays every input of `fuzz/corpus/` (the seeds, and what fuzzing found
//! worth keeping) and of `fuzz/regressions/` (each input that once crashed
//! or hung a target) through the fuzz targets' bodies, so `cargo test`
//! checks them again on every run. Fuzzing itself: docs/fuzzing.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

#[path = "../../fuzz/targets.rs"]
mod targets;

#[test]
fn every_corpus_input_is_handled_without_a_panic() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, target) in targets::ALL {
        let dir = fuzz.join("corpus").join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(!inputs.is_empty(), "{name}: an empty corpus");
        if let Ok(found) = std::fs::read_dir(fuzz.join("regressions").join(name)) {
            inputs.extend(found.map(|entry| entry.unwrap().path()));
        }
        inputs.sort();
        for path in inputs {
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", path.display());
        }
    }
}
