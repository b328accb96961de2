#!/usr/bin/env bash
# The one test command: installs what a fresh Debian machine needs, builds everything,
# and runs every test — unit, end-to-end against fdfs-devserver, the py3fdfs interop check,
# the fdfs CLI suite and the real kernel mount suite. Exit status 0 only if all pass.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/install-deps.sh || { echo "test.sh: installing dependencies failed" >&2; exit 1; }

echo "== swift build (debug, with tests)"
swift build --build-tests 2>&1 | tail -n 40
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "test.sh: build failed" >&2; echo "0 passed, 1 failed"; exit 1; }
bin=$(swift build --show-bin-path)
export FDFS_BIN_DIR="$bin"

passed=0; failed=0; failures=(); failed_tests=()
count() { # stage name, exit status, passed, failed
    local name=$1 rc=$2 p=${3:-0} f=${4:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    [ "$rc" -eq 0 ] || failures+=("$name")
    echo "== $name: exit $rc, $p passed, $f failed"
}

# Swift unit and integration tests (Swift Testing), in two runs: the suites on a private
# PostgreSQL (the naming engines, the shared namespace) and the in-process FUSE mount of the
# kernel notifier on their own, so their load does not count against the memory bounds other
# tests measure on the process (peak RSS).
log=$(mktemp)
pg_suites='NamingStoreTests|SharedNamespaceTests|PrivatePostgres|KernelNotifier'
for run in "--skip $pg_suites" "--filter $pg_suites"; do
    # shellcheck disable=SC2086  # run is an option and its argument
    swift test --skip-build $run 2>&1 | tee "$log" | grep -vE '^(◇|↳|✔ Test [a-zA-Z])' | tail -n 60
    rc=${PIPESTATUS[0]}
    n=$(grep -oE 'Test run with [0-9]+ tests?' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
    nf=$(grep -cE '^✘ Test .* failed after' "$log" || true)   # one line per failed test
    # The names (and first issue line) of failed tests, repeated at the very end: CI keeps only
    # the tail of the output, and the shell suites print a lot after this stage.
    while IFS= read -r l; do failed_tests+=("$l"); done < <(grep -E '^✘ Test [^r]' "$log" | cut -c1-300 | head -n 40)
    count "swift test $run" "$rc" "$((n - nf))" "$nf"
done

# Shell suites: each prints a final "N passed, M failed" line.
suites=(
    "scripts/cli-tests.sh"
    "scripts/interop-tests.sh"
    "FDFS_BACKEND=memory scripts/mount-tests.sh"
    "FDFS_BACKEND=devserver scripts/mount-tests.sh"
    "scripts/mount-cluster-tests.sh"
    "scripts/write-tests.sh"
    "FDFS_BACKEND=memory scripts/posix-tests.sh"
    "FDFS_BACKEND=devserver FDFS_MOUNT_OPTIONS=attr_timeout=0,entry_timeout=0 scripts/posix-tests.sh"
    "scripts/fault-tests.sh"
    # The real-world server modes: storage ids in file ids, trunk files.
    "DEVSERVER_ARGS=--storage-ids scripts/cli-tests.sh"
    "DEVSERVER_ARGS=--trunk scripts/cli-tests.sh"
    "FDFS_BACKEND=devserver DEVSERVER_ARGS=--storage-ids scripts/mount-tests.sh"
    "FDFS_BACKEND=devserver DEVSERVER_ARGS=--trunk scripts/mount-tests.sh"
    "DEVSERVER_ARGS=--storage-ids ROUNDS=1 OUTAGE_ROUNDS=2 scripts/fault-tests.sh"
    # Issue 11: two mounts sharing one tree through PostgreSQL; the mount and write suites with
    # their named tree in PostgreSQL.
    "scripts/shared-tests.sh"
    "FDFS_BACKEND=devserver FDFS_META=postgres scripts/mount-tests.sh"
    "FDFS_META=postgres scripts/write-tests.sh"
)
for suite in "${suites[@]}"; do
    echo "== $suite"
    script=${suite##* }; vars=()   # an optional VAR=value prefix sets the suite's environment
    [ "$script" = "$suite" ] || read -ra vars <<<"${suite% *}"
    [ -f "$script" ] || { count "$suite (missing)" 1 0 1; continue; }
    env "${vars[@]}" bash "$script" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
    count "$suite" "$rc" "${p:-0}" "${f:-0}"
done
rm -f "$log"

[ ${#failures[@]} -eq 0 ] || echo "failed stages: ${failures[*]}"
[ ${#failed_tests[@]} -eq 0 ] || printf 'failed swift test: %s\n' "${failed_tests[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failures[@]} -eq 0 ]
