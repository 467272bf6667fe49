#!/usr/bin/env bash
# Set up and run the whole test suite: warnings as errors, unit and
# integration tests, the same again under ASan/UBSan, and the kernel module
# tests in a QEMU virtual machine.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${PHYSMEM_BUILD_DIR:-$top/build-test}

"$top/scripts/setup-deps.sh" test

cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DPHYSMEM_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
rc=0
ctest --test-dir "$build" --output-on-failure --timeout 900 || rc=$?
# Per kernel line: what each static check and VM suite reported (ctest shows
# a passing test's output only in its log).
echo "== kernel lines =="
grep -hE '^kmod-style [^ ]+: w1 |^run-vm-tests: (kernel|summary|FAILED because|the console around|  )|^packaging-vm: .*(summary|image kernel|built by DKMS)|^PHYSMEM-BENCH ' \
	"$build/Testing/Temporary/LastTest.log" || true
[ "$rc" -eq 0 ] || exit "$rc"

# The user-space tests again with sanitizers (the kernel, VM and packaging
# tests, which run uninstrumented programs, need no second run; the fuzzers
# ran under ASan/UBSan already).
cmake -S "$top" -B "$build-asan" -DCMAKE_BUILD_TYPE=Debug -DPHYSMEM_WERROR=ON -DPHYSMEM_SANITIZE=ON \
	-DPHYSMEM_FUZZ=OFF >/dev/null
cmake --build "$build-asan" -j"$(nproc)"
ctest --test-dir "$build-asan" --output-on-failure --timeout 900 -LE "vm|kernel|packaging|valgrind|fuzz"
