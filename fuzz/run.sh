#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time; exits non-zero on any crash,
# panic, timeout or out-of-memory. For CI and for a quick local check.
#
#   fuzz/run.sh [SECONDS]     # per target, default 30
#
# Works on stable Rust: `--sanitizer none` needs no -Z flag (trunkd's only unsafe code is
# the SSE2 intrinsics of src/sip/classify.rs, whose loads read exactly a `&[u8; 16]`, so
# AddressSanitizer would find little and costs ~6x the executions). Committed seeds in
# corpus/<target>/ are read, never written: new inputs go to a temporary directory. The
# scan target's seeds are the wire vectors in ../tests/data/, read from there.
# Crashing inputs are written to artifacts/<target>/ (git-ignored).
set -euo pipefail

seconds="${1:-30}"
case "$seconds" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac

cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found; installing it" >&2
    cargo install cargo-fuzz --locked
fi

cargo fuzz build --sanitizer none

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

status=0
for target in $(cargo fuzz list); do
    echo "== fuzz target $target: ${seconds}s" >&2
    mkdir -p "$work/$target" "corpus/$target"
    # The first corpus directory receives new inputs; the committed seeds come after it.
    seeds=("corpus/$target")
    if [ "$target" = scan ]; then
        seeds+=("../tests/data")
    fi
    # -timeout: one input taking over 10 s counts as a failure (a hang).
    if ! cargo fuzz run --sanitizer none "$target" "$work/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1; then
        echo "== fuzz target $target FAILED; input saved under fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit "$status"
