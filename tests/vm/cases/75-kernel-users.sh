#!/bin/bash
# Kernel users of physmem buffers besides O_DIRECT and vmsplice (40, 45):
# vgem imports a buffer (PRIME) and attaches fences that poll() and
# DMA_BUF_IOCTL_SYNC on the physmem fd wait for; AF_XDP UMEM and io_uring
# fixed buffers pin the pages of an allocated buffer's mapping (a buffer
# freed meanwhile drains) and are refused on a pinned buffer's PFNMAP
# mapping (use the memfd's mapping).
# PHYSMEM-EXPECT: vgem-fence-poll
# PHYSMEM-EXPECT: gup-af-xdp-umem
# PHYSMEM-EXPECT: io-uring-fixed-buffers
if out=$(modprobe vgem 2>&1); then
	for _ in $(seq 50); do
		ls /dev/dri/card* >/dev/null 2>&1 && break
		sleep 0.1
	done
	"$PHYSMEM_BIN/physmem-users" vgem-fence-poll
	modprobe -r vgem 2>/dev/null
else
	echo "PHYSMEM-TEST vgem-fence-poll SKIP modprobe vgem: $(echo "$out" | head -1)"
fi
"$PHYSMEM_BIN/physmem-users" gup-af-xdp-umem
modprobe virtio_blk 2>/dev/null
for _ in $(seq 50); do
	[ -b /dev/vda ] && break
	sleep 0.1
done
if [ -b /dev/vda ]; then
	"$PHYSMEM_BIN/physmem-users" io-uring-fixed-buffers /dev/vda
else
	echo "PHYSMEM-TEST io-uring-fixed-buffers FAIL no /dev/vda"
fi
