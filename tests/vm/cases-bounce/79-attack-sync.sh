#!/bin/bash
# DMA_BUF_IOCTL_SYNC racing importers attaching and detaching: vgem PRIME
# import (with write fences now and then) + GEM close in a loop, and the test
# importer (edu, 28-bit mask) import/detach; no hang, no sync error.  Here
# in the bounce layout (PHYSMEM_VM_BOUNCE=1) because the importer's mappings
# of pages above 256 MiB need swiotlb: without it the DMA API refuses them
# with a kernel warning.
# PHYSMEM-EXPECT: atk-sync-attach-race
ATK=$PHYSMEM_BIN/physmem-attack
modprobe vgem 2>/dev/null
KO=$PHYSMEM_BUILD/edu-importer/physmem_edu_importer.ko
edu=0
if ! out=$(insmod "$KO" 2>&1); then
	echo "PHYSMEM-TEST atk-sync-attach-race FAIL insmod physmem_edu_importer: $out"
	exit 0
else
	edu=1
	for _ in $(seq 50); do
		[ -c /dev/physmem-edu-importer ] && break
		sleep 0.1
	done
fi
echo "attack: vgem $(ls /dev/dri 2>/dev/null | tr '\n' ' ') edu-importer=$edu"
"$ATK" sync-attach-race
[ "$edu" = 1 ] && rmmod physmem_edu_importer
