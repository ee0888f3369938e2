//! Fuzzes the http service's input path: libFuzzer's bytes become read sizes and a stream
//! (`reactor::fuzzing::split_input`), fed to the service whole and split; see
//! `src/fuzzing.rs` for what is checked.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use reactor::fuzzing::{Target, run};

fuzz_target!(|data: &[u8]| run(Target::Http, data));
