#!/usr/bin/env bash
# Fuzz every service's input path for a bounded time, or, where that is impossible, replay
# the checked-in corpus on stable.
#
#   scripts/fuzz.sh                 # each target for FUZZ_SECS (default 30) seconds
#   FUZZ_SECS=300 scripts/fuzz.sh   # longer
#   scripts/fuzz.sh http kv         # only these targets
#
# Fuzzing needs a nightly toolchain; this script never installs one.
#   * nightly + cargo-fuzz (`cargo install cargo-fuzz`): `cargo fuzz run`, with AddressSanitizer.
#   * nightly alone: the same targets built with the coverage instrumentation cargo-fuzz
#     would add (no sanitizer, which safe Rust does not need to catch memory errors) and run
#     directly.
#   * neither: a note, and only the corpus replay below.
# The checked-in seeds in fuzz/corpus/<target>/ are read, never written: inputs the fuzzer
# finds go to fuzz/target/corpus/<target>/ (copy the small, interesting ones into the seeds to
# keep them). A crash is saved under fuzz/artifacts/<target>/ and the script exits non-zero.
# Either way it ends by replaying the corpus through `cargo test --test fuzz_corpus`, the
# check `cargo test` runs too.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${FUZZ_SECS:-30}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(echo chat http kv)
# -max_len: the services run with small limits (src/fuzzing.rs), so 4 KiB reaches all of
# them. -timeout: one input taking over 10 s is a hang, reported as a crash.
libfuzzer_args=(-max_total_time="$secs" -max_len=4096 -timeout=10)

have_nightly() { cargo +nightly --version >/dev/null 2>&1; }
have_cargo_fuzz() { cargo +nightly fuzz --version >/dev/null 2>&1; }

if have_nightly && have_cargo_fuzz; then
  for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${secs}s (cargo fuzz)"
    mkdir -p "fuzz/target/corpus/$target"
    cargo +nightly fuzz run "$target" "fuzz/target/corpus/$target" "fuzz/corpus/$target" -- \
      "${libfuzzer_args[@]}"
  done
elif have_nightly; then
  echo "fuzz.sh: cargo-fuzz is not installed; building the targets with nightly directly."
  triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
  (
    cd fuzz
    # What `cargo fuzz build` passes, less the sanitizer.
    RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
      cargo +nightly build --quiet --release --bins --target "$triple"
  )
  for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${secs}s"
    mkdir -p "fuzz/target/corpus/$target" "fuzz/artifacts/$target"
    log="fuzz/target/fuzz-$target.log"
    rc=0
    # Where cargo put it: fuzz/target, unless CARGO_TARGET_DIR says elsewhere (absolute, or
    # relative to fuzz/, where it was built).
    bin_dir="${CARGO_TARGET_DIR:-target}"
    case "$bin_dir" in /*) ;; *) bin_dir="fuzz/$bin_dir" ;; esac
    "$bin_dir/$triple/release/$target" "fuzz/target/corpus/$target" "fuzz/corpus/$target" \
      "${libfuzzer_args[@]}" -artifact_prefix="fuzz/artifacts/$target/" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
      tail -40 "$log" >&2
      echo "fuzz.sh: $target failed (exit $rc); the input is in fuzz/artifacts/$target/" >&2
      exit 1
    fi
    grep -E '^Done [0-9]+ runs' "$log" || tail -1 "$log"
  done
else
  echo "fuzz.sh: no nightly toolchain; not fuzzing, replaying the corpus only (stable)."
fi

echo "== replaying the corpus"
cargo test --quiet --test fuzz_corpus
