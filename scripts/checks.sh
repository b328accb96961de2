# PASS/FAIL helpers of the mount suites (sourced): counters `passed` and `failed`.
passed=${passed:-0}; failed=${failed:-0}
pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1${2:+ ($2)}"; failed=$((failed + 1)); }
# check DESC CMD...: passes when CMD succeeds.
check() { local d=$1; shift; local out; if out=$("$@" 2>&1); then pass "$d"; else fail "$d" "$(echo "$out" | tail -2 | tr '\n' ' ')"; fi; }
# check_err DESC PATTERN CMD...: passes when CMD fails and its output matches PATTERN.
check_err() {
    local d=$1 pat=$2; shift 2; local out
    if out=$("$@" 2>&1); then fail "$d" "unexpectedly succeeded"
    elif echo "$out" | grep -qi -- "$pat"; then pass "$d"; else fail "$d" "got: $(echo "$out" | tail -1)"; fi
}
