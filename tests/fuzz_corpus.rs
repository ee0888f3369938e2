//! The fuzz corpus, replayed on stable: every file in `fuzz/corpus/<target>/` goes through
//! `reactor::fuzzing::run`, the function the `cargo fuzz` target of the same name calls. So
//! the checked-in seeds (and any input copied there from a fuzzing run) keep passing on every
//! `cargo test`, with no nightly toolchain. `scripts/fuzz.sh` fuzzes for real when it can.

use std::path::Path;

use reactor::fuzzing::{Target, run};

#[test]
fn every_corpus_file_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for target in Target::ALL {
        let dir = root.join(target.name());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no seed files", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            // A panic names the file, so a failing input can be run alone with
            // `cargo fuzz run <target> <file>`.
            eprintln!("replaying {}", file.display());
            run(target, &data);
        }
    }
}
