#!/bin/bash
# DMA_BUF_IOCTL_SYNC racing importers attaching and detaching: vgem PRIME
# import (with write fences now and then) + GEM close in a loop, and the test
# importer (edu) import/detach when it loads; no hang, no sync error.
# PHYSMEM-EXPECT: atk-sync-attach-race
ATK=$PHYSMEM_BIN/physmem-attack
modprobe vgem 2>/dev/null
KO=$PHYSMEM_BUILD/edu-importer/physmem_edu_importer.ko
edu=0
if [ -f "$KO" ] && insmod "$KO" 2>/dev/null; then
	edu=1
	for _ in $(seq 50); do
		[ -c /dev/physmem-edu-importer ] && break
		sleep 0.1
	done
fi
echo "attack: vgem $(ls /dev/dri 2>/dev/null | tr '\n' ' ') edu-importer=$edu"
"$ATK" sync-attach-race
[ "$edu" = 1 ] && rmmod physmem_edu_importer
