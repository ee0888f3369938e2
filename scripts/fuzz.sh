#!/usr/bin/env bash
# Fuzz every service's input path for a bounded time, or, where that is impossible, replay
# the checked-in corpus on stable.
#
#   scripts/fuzz.sh                 # each target for FUZZ_SECS (default 30) seconds
#   FUZZ_SECS=300 scripts/fuzz.sh   # longer
#   scripts/fuzz.sh http kv         # only these targets
#
# Fuzzing needs a nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz`); this script never installs either. New interesting inputs are
# added to fuzz/corpus/<target>/ (commit the small ones you want kept); a crash is saved under
# fuzz/artifacts/<target>/ and the script exits non-zero. Either way it ends by replaying the
# corpus through `cargo test --test fuzz_corpus`, the same check CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${FUZZ_SECS:-30}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(echo chat http kv)

have_nightly() { cargo +nightly --version >/dev/null 2>&1; }
have_cargo_fuzz() { cargo +nightly fuzz --version >/dev/null 2>&1; }

if have_nightly && have_cargo_fuzz; then
  for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${secs}s"
    # -max_len: the services run with small limits (src/fuzzing.rs), so 4 KiB reaches all of
    # them. -timeout: one input taking over 10 s is a hang, reported as a crash.
    cargo +nightly fuzz run "$target" -- \
      -max_total_time="$secs" -max_len=4096 -timeout=10
  done
else
  have_nightly || echo "fuzz.sh: no nightly toolchain."
  have_nightly && ! have_cargo_fuzz && echo "fuzz.sh: cargo-fuzz is not installed."
  echo "fuzz.sh: not fuzzing; replaying the corpus only (fuzz/corpus/*, stable)."
fi

echo "== replaying the corpus"
cargo test --quiet --test fuzz_corpus
