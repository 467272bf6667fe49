#!/bin/bash
# O_DIRECT read from a virtio disk into mapped cached buffers (the mapping
# must work with get_user_pages).  The host wrote a 16 MiB pattern disk.
# PHYSMEM-EXPECT: odirect
modprobe virtio_blk 2>/dev/null
for _ in $(seq 50); do
	[ -b /dev/vda ] && break
	sleep 0.1
done
if [ ! -b /dev/vda ]; then
	echo "PHYSMEM-TEST odirect FAIL no /dev/vda"
	exit 0
fi
"$PHYSMEM_BIN/physmem-vmtest" odirect /dev/vda 16
