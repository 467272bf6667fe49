#!/bin/bash
# A kernel importer that writes with the CPU: V4L2 vivid captures into
# physmem dma-bufs through vb2_plane_vaddr() (dma_buf_vmap).  vivid 0 uses
# vb2-vmalloc, vivid 1 vb2-dma-contig (allocators=0,1).  Without .vmap
# the dma-contig capture thread wrote to address 0 (Oops).
# PHYSMEM-EXPECT: importer-vivid-dma-contig-no-oops
# PHYSMEM-EXPECT: importer-vivid-vmalloc-sg
# PHYSMEM-EXPECT: importer-vivid-vmalloc-pin
cases="importer-vivid-dma-contig-no-oops importer-vivid-vmalloc-sg importer-vivid-vmalloc-pin"
if ! out=$(modprobe vivid n_devs=2 node_types=0x1,0x1 allocators=0,1 2>&1); then
	for c in $cases; do
		echo "PHYSMEM-TEST $c SKIP vivid not available: $(echo "$out" | head -1)"
	done
	exit 0
fi
node() {	# the capture node of vivid instance $1
	local d
	for d in /sys/class/video4linux/video*; do
		[ "$(cat "$d/name" 2>/dev/null)" = "vivid-00$1-vid-cap" ] &&
			{ echo "/dev/$(basename "$d")"; return 0; }
	done
	return 1
}
for _ in $(seq 50); do node 1 >/dev/null && break; sleep 0.1; done
vmalloc=$(node 0) && contig=$(node 1) || {
	for c in $cases; do echo "PHYSMEM-TEST $c FAIL vivid capture nodes not found"; done
	ls /sys/class/video4linux/; cat /sys/class/video4linux/*/name
	exit 0
}
"$PHYSMEM_BIN/physmem-vivid" importer-vivid-dma-contig-no-oops "$contig" contig
"$PHYSMEM_BIN/physmem-vivid" importer-vivid-vmalloc-sg "$vmalloc" sg
"$PHYSMEM_BIN/physmem-vivid" importer-vivid-vmalloc-pin "$vmalloc" pin
modprobe -r vivid
