#!/bin/bash
# The mapping benchmark (tests/bench/physmem-map-bench.c): allocate + mmap +
# full touch + free of a 1 GiB and a 64 MiB buffer with physmem, the system
# dma-buf heap and anonymous memory (THP and 4 KiB), ratios of the median
# totals in "PHYSMEM-BENCH map ..." lines.  Not part of the default suite: it
# needs a boot without the memory debugging options (page_poison and
# slub_debug distort every free) and about 3 GiB of guest memory:
#   sudo PHYSMEM_VM_CASE_DIRS=$PWD/tests/bench/vm PHYSMEM_VM_ONLY='9*' \
#        PHYSMEM_VM_KDEBUG= PHYSMEM_VM_MEM=3072 tests/vm/run-vm-tests.sh DIR
# or tests/kernels/kernel-line.sh bench debian13|newest DIR.  The result
# says whether every method ran and read back what it wrote, and whether
# physmem's full touch faulted once per 2 MiB window; timings are reported,
# never judged.
# PHYSMEM-EXPECT: map-bench
SIZES="1024 64"
REPS=3
P=/sys/module/physmem/parameters

# Refuse to measure a kernel that poisons freed memory, or one too small.
for opt in page_poison slub_debug init_on_free; do
	if grep -qE "(^| )${opt}(=| |$)" /proc/cmdline; then
		echo "PHYSMEM-TEST map-bench SKIP booted with $opt (run with PHYSMEM_VM_KDEBUG=)"
		exit 0
	fi
done
avail=$(awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo)
if [ "$avail" -lt 2048 ]; then
	echo "PHYSMEM-TEST map-bench SKIP ${avail} MiB available, needs 2048 (PHYSMEM_VM_MEM=3072)"
	exit 0
fi
if [ ! -c /dev/physmem ]; then
	echo "PHYSMEM-TEST map-bench FAIL physmem.ko not loaded"
	exit 0
fi

# Limits large enough for the biggest buffer (both module parameters are
# writable at run time); restored afterwards.
old_buf=$(cat $P/max_buffer_mb)
old_total=$(cat $P/max_total_mb)
echo 2048 >$P/max_buffer_mb
echo 2048 >$P/max_total_mb

args=(--reps "$REPS")
for s in $SIZES; do
	args+=(--size "$s")
done
t0=$(date +%s)
out=$("$PHYSMEM_BIN/physmem-map-bench" "${args[@]}" 2>&1)
rc=$?
echo "$out"
echo "$old_buf" >$P/max_buffer_mb
echo "$old_total" >$P/max_total_mb

line=$(echo "$out" | grep -m1 '^PHYSMEM-BENCH map ')
# Not a timing: a full touch must fault once per 2 MiB window (size/2 plus
# a few for an unaligned start and the program's own pages), never per 4 KiB.
many=
while read -r mib faults; do
	[ "$faults" -le $(( mib / 2 + 8 )) ] || many+="${mib}MiB: $faults faults per touch; "
done < <(echo "$out" | sed -n 's/^PHYSMEM-BENCH map \([0-9]*\)MiB .*faults\/touch=\([0-9-]*\).*/\1 \2/p')
if [ -n "$many" ]; then
	echo "PHYSMEM-TEST map-bench FAIL $many(physmem faults a 2 MiB window at a time)"
elif [ "$rc" -eq 0 ] && [ -n "$line" ]; then
	echo "PHYSMEM-TEST map-bench PASS ${line#PHYSMEM-BENCH } ($(( $(date +%s) - t0 ))s)"
else
	echo "PHYSMEM-TEST map-bench FAIL exit $rc: $(echo "$out" | grep 'physmem-map-bench:' | grep -v reps | head -3 | tr '\n' ' ')"
fi
