#!/bin/bash
# Contiguous pools, in boots with a pool reserved on the kernel command line
# and the module loaded with its pool parameter (PHYSMEM_VM_KMOD_ARGS):
# every pool gets the DMA and error cases; pools whose size the module owns
# (memmap, reserve_mem; not a shared CMA area) also exhaustion,
# fragmentation and the run's return after its quarantine.  Last, the
# module is unloaded with its pools and loaded again, and bad pool
# parameters must fail the load with a message.
# PHYSMEM-EXPECT: pool-errors
# PHYSMEM-EXPECT: pool-dma
# PHYSMEM-EXPECT: pool-exhaust
# PHYSMEM-EXPECT: pool-frag
# PHYSMEM-EXPECT: pool-free-back
# PHYSMEM-EXPECT: pool-params
T=$PHYSMEM_BIN/physmem-vmtest
D=/sys/class/misc/physmem/pools
# (no /dev/fd in the guest for a process substitution)
"$T" pool-list >"$PHYSMEM_TMP/pools"
n=0
first=
while read -r i kind name; do
	[ -n "$first" ] || first=$kind
	echo "pool $i: $kind $name"
	"$T" pool-errors $n
	"$T" pool-dma $n
	if [ "$kind" != cma ]; then
		"$T" pool-exhaust $n
		"$T" pool-frag $n
		"$T" pool-free-back $n
	fi
	n=$((n + 1))
done <"$PHYSMEM_TMP/pools"
if [ $n = 0 ]; then
	for c in pool-errors pool-dma pool-exhaust pool-frag pool-free-back pool-params; do
		echo "PHYSMEM-TEST $c FAIL no pool (module parameters: '$PHYSMEM_VM_KMOD_ARGS')"
	done
	exit 0
fi

# Unload with the pools (memunmap_pages etc.), refuse bad parameters, reload.
t=pool-params
params() {
	local out bad
	if ! out=$(rmmod physmem 2>&1); then
		echo "PHYSMEM-TEST $t FAIL rmmod with $n pool(s): $out"
		return
	fi
	# the last one is System RAM in these 1536 MiB guests
	for bad in pool_memmap=64M pool_memmap=1M@256M pool_memmap=64M@0x1000 \
		pool_memmap=64M@1M pool_reserve_mem=no-such-region \
		pool_reserve_mem=a-name-that-is-too-long pool_cma=no-such-area \
		pool_memmap=64M@1G; do
		lines=$(dmesg | wc -l)
		if insmod "$PHYSMEM_KO" "$bad" 2>/dev/null; then
			echo "PHYSMEM-TEST $t FAIL insmod $bad succeeded"
			rmmod physmem
			return
		fi
		if ! dmesg | tail -n +"$((lines + 1))" | grep -q "physmem: $bad: "; then
			echo "PHYSMEM-TEST $t FAIL insmod $bad: no message: $(dmesg | tail -2 | tr '\n' ' ')"
			return
		fi
	done
	# shellcheck disable=SC2086
	if ! out=$(insmod "$PHYSMEM_KO" $PHYSMEM_VM_KMOD_ARGS 2>&1); then
		echo "PHYSMEM-TEST $t FAIL reload with '$PHYSMEM_VM_KMOD_ARGS': $out"
		return
	fi
	local m
	m=$(find "$D" -mindepth 1 -maxdepth 1 -type d | wc -l)
	if [ "$m" != "$n" ]; then
		echo "PHYSMEM-TEST $t FAIL $m pool(s) after reload, want $n"
		return
	fi
	echo "PHYSMEM-TEST $t PASS unloaded with $n pool(s), 8 bad parameters refused with a message, reloaded"
}
params
# the first pool is whole again after the reload
[ "$first" = cma ] ||
	"$T" pool-free-back 0 | sed 's/PHYSMEM-TEST pool-free-back/PHYSMEM-TEST pool-reload-free-back/'
