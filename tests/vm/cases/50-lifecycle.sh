#!/bin/bash
# Lifecycle: rmmod refused while a buffer lives and allowed after; 1000
# alloc/free cycles, a few hundred bad ioctls and an alloc/free vs
# physical-mmap race leave every counter at zero.
# PHYSMEM-EXPECT: lifecycle-rmmod
# PHYSMEM-EXPECT: lifecycle-cycles
# PHYSMEM-EXPECT: lifecycle-bad-ioctls
# PHYSMEM-EXPECT: lifecycle-race
# PHYSMEM-EXPECT: lifecycle-quarantine
t=lifecycle-rmmod
if "$PHYSMEM_BIN/physmem-vmtest" hold-run rmmod physmem 2>/dev/null; then
	echo "PHYSMEM-TEST $t FAIL rmmod succeeded while a buffer was alive"
	insmod "$PHYSMEM_KO" $PHYSMEM_VM_KMOD_ARGS
elif [ ! -c /dev/physmem ]; then
	echo "PHYSMEM-TEST $t FAIL module gone"
elif ! out=$(rmmod physmem 2>&1); then
	echo "PHYSMEM-TEST $t FAIL rmmod after release: $out"
elif grep -q '^physmem ' /proc/modules; then
	echo "PHYSMEM-TEST $t FAIL still listed after rmmod"
elif ! out=$(insmod "$PHYSMEM_KO" $PHYSMEM_VM_KMOD_ARGS 2>&1); then
	echo "PHYSMEM-TEST $t FAIL reload: $out"
else
	echo "PHYSMEM-TEST $t PASS refused while held, unloaded after, reloaded"
fi
"$PHYSMEM_BIN/physmem-vmtest" lifecycle-cycles 1000
"$PHYSMEM_BIN/physmem-vmtest" lifecycle-bad-ioctls 8
"$PHYSMEM_BIN/physmem-vmtest" lifecycle-race 500

# Quarantine against late DMA: with quarantine_ms set, a released buffer's
# pages stay out of the allocator (and counted) for that long, then go; an
# rmmod during the quarantine frees them at once, cleanly.
t=lifecycle-quarantine
P=/sys/module/physmem/parameters/quarantine_ms
S=/sys/class/misc/physmem/stats
quarantine() {
	local q q2 i
	echo 3000 >"$P" || { echo "PHYSMEM-TEST $t FAIL cannot set quarantine_ms"; return; }
	"$PHYSMEM_BIN/physmem-vmtest" hold-run true >/dev/null 2>&1
	q=$(cat $S/quarantined_bytes)
	if [ "$q" -eq 0 ] || [ "$(cat $S/buffers)" != 0 ]; then
		echo "PHYSMEM-TEST $t FAIL after release: quarantined_bytes $q, live buffers $(cat $S/buffers)"
		echo 0 >"$P"
		return
	fi
	for i in $(seq 100); do
		[ "$(cat $S/quarantined_bytes)" = 0 ] && break
		sleep 0.1
	done
	q2=$(cat $S/quarantined_bytes)
	if [ "$q2" != 0 ]; then
		echo "PHYSMEM-TEST $t FAIL still $q2 bytes quarantined 10 s after a 3 s quarantine"
		echo 0 >"$P"
		return
	fi
	echo 60000 >"$P"
	"$PHYSMEM_BIN/physmem-vmtest" hold-run true >/dev/null 2>&1
	if [ "$(cat $S/quarantined_bytes)" = 0 ]; then
		echo "PHYSMEM-TEST $t FAIL nothing quarantined with quarantine_ms=60000"
	elif ! out=$(rmmod physmem 2>&1); then
		echo "PHYSMEM-TEST $t FAIL rmmod during quarantine: $out"
	elif ! out=$(insmod "$PHYSMEM_KO" $PHYSMEM_VM_KMOD_ARGS 2>&1); then
		echo "PHYSMEM-TEST $t FAIL reload: $out"
	else
		echo "PHYSMEM-TEST $t PASS $q bytes held back after release, freed by the timer; rmmod during a 60 s quarantine freed them"
		return
	fi
	echo 0 >"$P"
}
quarantine
