#!/bin/bash
# Page lifetime at the ioctl level.  Pinned memfd pages: the buffer keeps
# them when the memfd is closed or has a hole punched into the range (no
# kernel "Bad page" report), a pin never allocates (holes and fallocated
# but unwritten pages are refused with ENODATA), and the pinned mapping
# refuses get_user_pages (O_DIRECT: EFAULT).  Allocated pages vmspliced into
# a pipe keep their buffer alive and charged after release until the pipe
# lets go.  QUERY answers right among 512 buffers closed in a scrambled order.
# PHYSMEM-EXPECT: pin-memfd-close-keeps-pages
# PHYSMEM-EXPECT: pin-memfd-punch-keeps-pages
# PHYSMEM-EXPECT: pin-sparse-refused
# PHYSMEM-EXPECT: pin-unwritten-refused
# PHYSMEM-EXPECT: pin-mapping-refuses-gup
# PHYSMEM-EXPECT: vmsplice-after-free-stays-charged
# PHYSMEM-EXPECT: query-many
for c in pin-memfd-close-keeps-pages pin-memfd-punch-keeps-pages \
	pin-sparse-refused pin-unwritten-refused vmsplice-after-free-stays-charged query-many; do
	"$PHYSMEM_BIN/physmem-vmtest" "$c"
done
modprobe virtio_blk 2>/dev/null
for _ in $(seq 50); do
	[ -b /dev/vda ] && break
	sleep 0.1
done
if [ -b /dev/vda ]; then
	"$PHYSMEM_BIN/physmem-vmtest" pin-mapping-refuses-gup /dev/vda
else
	echo "PHYSMEM-TEST pin-mapping-refuses-gup FAIL no /dev/vda"
fi
