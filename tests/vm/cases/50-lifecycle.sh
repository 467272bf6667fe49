#!/bin/bash
# Lifecycle: rmmod refused while a buffer lives and allowed after; 1000
# alloc/free cycles, a few hundred bad ioctls and an alloc/free vs
# physical-mmap race leave every counter at zero.
# PHYSMEM-EXPECT: lifecycle-rmmod
# PHYSMEM-EXPECT: lifecycle-cycles
# PHYSMEM-EXPECT: lifecycle-bad-ioctls
# PHYSMEM-EXPECT: lifecycle-race
t=lifecycle-rmmod
if "$PHYSMEM_BIN/physmem-vmtest" hold-run rmmod physmem 2>/dev/null; then
	echo "PHYSMEM-TEST $t FAIL rmmod succeeded while a buffer was alive"
	insmod "$PHYSMEM_KO"
elif [ ! -c /dev/physmem ]; then
	echo "PHYSMEM-TEST $t FAIL module gone"
elif ! out=$(rmmod physmem 2>&1); then
	echo "PHYSMEM-TEST $t FAIL rmmod after release: $out"
elif grep -q '^physmem ' /proc/modules; then
	echo "PHYSMEM-TEST $t FAIL still listed after rmmod"
elif ! out=$(insmod "$PHYSMEM_KO" 2>&1); then
	echo "PHYSMEM-TEST $t FAIL reload: $out"
else
	echo "PHYSMEM-TEST $t PASS refused while held, unloaded after, reloaded"
fi
"$PHYSMEM_BIN/physmem-vmtest" lifecycle-cycles 1000
"$PHYSMEM_BIN/physmem-vmtest" lifecycle-bad-ioctls 8
"$PHYSMEM_BIN/physmem-vmtest" lifecycle-race 500
