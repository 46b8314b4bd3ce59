#!/usr/bin/env bash
# Mutation testing of a pure core against its fast tests (cargo-mutants).
#
#   scripts/mutants.sh run     [DIR]   mutate DIR (default src/engine), shard by shard
#   scripts/mutants.sh missed  [DIR]   re-test only what the last run missed
#   scripts/mutants.sh summary [DIR]   counts and kill rate of the last run
#
# Shard k holds every shards-th mutant from the k-th on (round robin), so
# each shard is a sample spread over all files. Shards run one after another;
# a finished shard is kept, so an interrupted run resumes where it stopped
# (delete the output folder to start afresh).
# Results go to mutants.out/<dir>/ (git-ignored): per shard cargo-mutants'
# own caught/missed/timeout/unviable lists and logs, and summary.txt.
#
# Reviewed equivalent mutants (changes no test can observe, each with its
# reason) are excluded in .cargo/mutants.toml; the kill rate is over the rest.
#
# Settings (environment):
#   MUTANTS_SHARDS      shards (default 4)
#   MUTANTS_SAMPLE      run only this shard (0-based) of MUTANTS_SHARDS: a
#                       sample of every MUTANTS_SHARDS-th mutant, for a run
#                       shorter than the whole (the summary says so)
#   MUTANTS_JOBS        parallel builds (default 1: the fast tests are
#                       single-threaded enough, and the machine is shared)
#   MUTANTS_TIMEOUT     seconds per test run of one mutant (default 60, about
#                       10x the fast tests' baseline)
#   MUTANTS_TESTS       cargo test target arguments, e.g. "--lib --test=scenarios"
#                       (default: per DIR below)
#   MUTANTS_TARGET_DIR  cargo target dir for the mutated copies (default: this
#                       checkout's target/, so dependencies build once)
#   PROPTEST_CASES      cases of the engine property test per mutant
#                       (default 500; the normal test run uses 2000)
set -euo pipefail

cmd=${1:-run}
dir=${2:-src/engine}
dir=${dir%/}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

shards=${MUTANTS_SHARDS:-4}
jobs=${MUTANTS_JOBS:-1}
timeout=${MUTANTS_TIMEOUT:-60}
out="mutants.out/${dir//\//-}"
export PROPTEST_CASES=${PROPTEST_CASES:-500}
export CARGO_TARGET_DIR=${MUTANTS_TARGET_DIR:-$root/target}

# Only the fast tests: never the model checker, the end-to-end tests or the
# benches. The library's unit tests, and the core's own test files (for the
# session, those that build without features: not the dev-server ones).
case "$dir" in
src/engine*) default_tests="--lib --test=api_edges --test=scenarios --test=state_machine --test=topic_edges --test=transitions" ;;
src/session*) default_tests="--lib --test=session_channels --test=session_config --test=session_ordered --test=session_pushes --test=session_props --test=session_socket --test=presence_props --test=stream_props" ;;
*) default_tests="--lib" ;;
esac
read -r -a tests <<<"${MUTANTS_TESTS:-$default_tests}"
# The same targets for the build and the test run: each mutant builds only
# what it runs.
target_args=()
for t in "${tests[@]}"; do target_args+=("--cargo-arg=$t"); done

# The outcome files and options used here are those of cargo-mutants 27.
ensure_cargo_mutants() {
    if ! cargo mutants --version 2>/dev/null | grep -q '^cargo-mutants 27\.'; then
        echo "installing cargo-mutants 27" >&2
        cargo install --locked cargo-mutants --version '^27'
    fi
}

# cargo-mutants' common arguments; extra ones follow.
mutants() {
    cargo mutants \
        --no-default-features \
        --profile mutants \
        --jobs "$jobs" \
        --timeout "$timeout" \
        --build-timeout 600 \
        --file "$dir/**" \
        "${target_args[@]}" \
        "$@"
}

# Runs one cargo-mutants invocation into $1; exit codes 0 (all caught),
# 2 (some missed) and 3 (some timed out) are a completed run.
run_into() {
    local dest=$1
    shift
    local start=$SECONDS status=0
    git rev-parse --short HEAD >"$dest/commit"
    mutants --output "$dest" "$@" || status=$?
    case $status in
    0 | 2 | 3) echo $((SECONDS - start)) >"$dest/seconds" ;;
    *)
        echo "cargo mutants failed with exit code $status (see $dest/mutants.out/debug.log)" >&2
        exit "$status"
        ;;
    esac
}

run() {
    ensure_cargo_mutants
    mkdir -p "$out"
    local first=0 last=$((shards - 1))
    if [[ -n ${MUTANTS_SAMPLE:-} ]]; then
        first=$MUTANTS_SAMPLE
        last=$MUTANTS_SAMPLE
    fi
    for ((k = first; k <= last; k++)); do
        local dest="$out/shard-$k-of-$shards"
        if [[ -f $dest/seconds ]]; then
            echo "shard $k/$shards already done ($(cat "$dest/seconds")s)"
            continue
        fi
        rm -rf "$dest"
        mkdir -p "$dest"
        echo "shard $k/$shards: $(date -u +%H:%M:%S)"
        run_into "$dest" --shard "$k/$shards" --sharding round-robin
    done
    summary
}

# Re-tests the mutants missed so far (and not listed as equivalent since),
# e.g. after new tests; the summary counts the newer outcome.
missed() {
    ensure_cargo_mutants
    summary >/dev/null
    local names=() line
    while IFS= read -r line; do
        names+=(--re "^$(sed 's/[][\\.^$*+?(){}|]/\\&/g' <<<"$line")\$")
    done < <(grep -h '^missed' "$out/counted.tsv" 2>/dev/null | cut -f2)
    if ((${#names[@]} == 0)); then
        echo "nothing missed"
        return
    fi
    local dest="$out/recheck-$(date -u +%Y%m%dT%H%M%S)"
    mkdir -p "$dest"
    run_into "$dest" "${names[@]}"
    summary
}

# The exclude_re patterns of .cargo/mutants.toml (TOML literal strings, one
# per line), one per line.
equivalent_patterns() {
    sed -n "s/^[[:space:]]*'\(.*\)',[[:space:]]*\$/\1/p" .cargo/mutants.toml
}

summary() {
    local patterns run kind
    patterns=$(mktemp)
    equivalent_patterns >"$patterns"
    # The latest outcome of each mutant wins (a recheck after new tests). A
    # recheck only updates mutants the shards tested (its name patterns may
    # match others, which would skew a sample).
    local tag
    for run in "$out"/shard-*/mutants.out "$out"/recheck-*/mutants.out; do
        [[ -d $run ]] || continue
        tag=${run#"$out"/}
        tag=${tag%%/*}
        for kind in caught missed timeout unviable; do
            if [[ -f $run/$kind.txt ]]; then sed "s/^/$kind\t$tag\t/" "$run/$kind.txt"; fi
        done
    done | awk -F'\t' '$2 ~ /^shard-/ || ($3 in latest) { latest[$3] = $1 }
        END { for (m in latest) print latest[m] "\t" m }' |
        sort -k2 >"$out/outcomes.tsv"
    # Mutants listed as equivalent after a run still show in its outcomes.
    grep -E -f "$patterns" "$out/outcomes.tsv" >"$out/equivalent.tsv" || true
    grep -v -E -f "$patterns" "$out/outcomes.tsv" >"$out/counted.tsv" || true
    if [[ ! -s $patterns ]]; then cp "$out/outcomes.tsv" "$out/counted.tsv"; fi
    count() { grep -c "^$1" "$out/counted.tsv" || true; }
    local caught missed timeout unviable seconds=0 runs=0 s
    caught=$(count caught)
    missed=$(count missed)
    timeout=$(count timeout)
    unviable=$(count unviable)
    for s in "$out"/*/seconds; do
        [[ -f $s ]] || continue
        seconds=$((seconds + $(cat "$s")))
        runs=$((runs + 1))
    done
    local tested=$((caught + missed + timeout))
    {
        echo "mutation run of $dir; runs (oldest first, the newest outcome of a mutant wins):"
        for s in "$out"/shard-*/seconds "$out"/recheck-*/seconds; do
            [[ -f $s ]] || continue
            echo "  $(basename "$(dirname "$s")") at $(cat "$(dirname "$s")/commit" 2>/dev/null || echo '?'): $(cat "$s")s"
        done
        echo "tests: cargo test --no-default-features --profile mutants ${tests[*]}" \
            "(PROPTEST_CASES=$PROPTEST_CASES)"
        local done_shards of
        done_shards=$(find "$out" -maxdepth 2 -path "$out/shard-*/seconds" | wc -l)
        of=$(find "$out" -maxdepth 1 -name 'shard-*-of-*' | sed 's/.*-of-//' | sort -un | tail -1)
        if [[ -n $of ]] && ((done_shards < of)); then
            echo "SAMPLE: $done_shards of $of shards (each every ${of}th mutant), not the whole"
        fi
        echo "caught $caught, missed $missed, timeouts $timeout, unviable $unviable"
        echo "equivalent (excluded, $(wc -l <"$patterns") patterns in .cargo/mutants.toml):" \
            "$(wc -l <"$out/equivalent.tsv") in these outcomes"
        if ((tested > 0)); then
            local permille=$(((caught + timeout) * 1000 / tested))
            echo "kill rate over viable non-equivalent mutants: $((permille / 10)).$((permille % 10)) %" \
                "($((caught + timeout)) of $tested; a timeout counts as killed)"
        fi
        echo "time: ${seconds}s in $runs cargo-mutants runs"
        if ((missed > 0)); then
            echo "missed:"
            grep '^missed' "$out/counted.tsv" | cut -f2 | sed 's/^/  /'
        fi
        if grep -q '^caught' "$out/equivalent.tsv"; then
            echo "WARNING: caught, so not equivalent: remove from .cargo/mutants.toml:"
            grep '^caught' "$out/equivalent.tsv" | cut -f2 | sed 's/^/  /'
        fi
    } | tee "$out/summary.txt"
    rm -f "$patterns"
}

case "$cmd" in
run) run ;;
missed) missed ;;
summary) summary ;;
*)
    echo "usage: $0 run|missed|summary [DIR]" >&2
    exit 64
    ;;
esac
