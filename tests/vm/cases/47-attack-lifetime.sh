#!/bin/bash
# Page-lifetime attacks as root: vmsplice of tail pages, io_uring fixed
# buffers, O_DIRECT (sync and AIO closed mid-flight), fault/zap/remap races,
# physical mappings, every madvise, page scans without the global lock,
# a drain work that busy releases cannot starve.
# PHYSMEM-EXPECT: atk-vmsplice-tail
# PHYSMEM-EXPECT: atk-iouring
# PHYSMEM-EXPECT: atk-odirect
# PHYSMEM-EXPECT: atk-race
# PHYSMEM-EXPECT: atk-race-pt
# PHYSMEM-EXPECT: atk-phys
# PHYSMEM-EXPECT: atk-quarantine
# PHYSMEM-EXPECT: atk-madvise
# PHYSMEM-EXPECT: atk-release-lock
# PHYSMEM-EXPECT: atk-drain-not-starved
ATK=$PHYSMEM_BIN/physmem-attack
modprobe virtio_blk 2>/dev/null
modprobe loop 2>/dev/null
for _ in $(seq 50); do
	[ -b /dev/vda ] && break
	sleep 0.1
done
[ -b /dev/vda ] && export ATK_DISK=/dev/vda
img=$PHYSMEM_TMP/atk-loop.img
truncate -s 8M "$img"
if l=$(losetup -f --show "$img" 2>/dev/null); then
	export ATK_WDEV=$l
fi
echo "attack: disk=${ATK_DISK:-none} wdev=${ATK_WDEV:-none}"
"$ATK" vmsplice-tail iouring odirect race race-pt phys quarantine madvise release-lock drain-not-starved
[ -n "${ATK_WDEV:-}" ] && losetup -d "$ATK_WDEV"
rm -f "$img"
