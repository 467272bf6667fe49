#!/bin/bash
# Kernel importers that read and write with the CPU: V4L2 vivid capture and
# output queues on physmem dma-bufs (V4L2_MEMORY_DMABUF), through
# vb2_plane_vaddr() (dma_buf_vmap).  vivid 0 uses vb2-vmalloc, vivid 1
# vb2-dma-contig (allocators=0,1).  Without .vmap the dma-contig capture
# thread wrote to address 0 (Oops).
#   cap-Q-K-C:  capture on queue Q (vmalloc|contig) into physmem kind K
#               (contig|sg|pin) with cache mode C; the test pattern must land
#               and successive frames differ.
#   out-Q-K-C:  physmem output buffers with known patterns; vivid loops its
#               HDMI output back to its HDMI input and the captured frames
#               must be those patterns.
#   Q-contig-sg-refused: a buffer of physically separate segments on a
#               dma-contig queue is refused (no oops/WARN, buffer freed).
# PHYSMEM-EXPECT: importer-vivid-cap-vmalloc-contig-cached
# PHYSMEM-EXPECT: importer-vivid-cap-vmalloc-contig-wc
# PHYSMEM-EXPECT: importer-vivid-cap-vmalloc-contig-uc
# PHYSMEM-EXPECT: importer-vivid-cap-vmalloc-sg-cached
# PHYSMEM-EXPECT: importer-vivid-cap-vmalloc-sg-wc
# PHYSMEM-EXPECT: importer-vivid-cap-vmalloc-sg-uc
# PHYSMEM-EXPECT: importer-vivid-cap-vmalloc-pin
# PHYSMEM-EXPECT: importer-vivid-cap-contig-contig-cached
# PHYSMEM-EXPECT: importer-vivid-cap-contig-contig-wc
# PHYSMEM-EXPECT: importer-vivid-cap-contig-contig-uc
# PHYSMEM-EXPECT: importer-vivid-cap-contig-sg-refused
# PHYSMEM-EXPECT: importer-vivid-out-vmalloc-contig-cached
# PHYSMEM-EXPECT: importer-vivid-out-vmalloc-contig-wc
# PHYSMEM-EXPECT: importer-vivid-out-vmalloc-contig-uc
# PHYSMEM-EXPECT: importer-vivid-out-vmalloc-sg-cached
# PHYSMEM-EXPECT: importer-vivid-out-vmalloc-sg-wc
# PHYSMEM-EXPECT: importer-vivid-out-vmalloc-sg-uc
# PHYSMEM-EXPECT: importer-vivid-out-vmalloc-pin
# PHYSMEM-EXPECT: importer-vivid-out-contig-contig-cached
# PHYSMEM-EXPECT: importer-vivid-out-contig-contig-wc
# PHYSMEM-EXPECT: importer-vivid-out-contig-contig-uc
# PHYSMEM-EXPECT: importer-vivid-out-contig-sg-refused
runs=()	# "name mode instance kind cache"
for dir in cap out; do
	for c in cached wc uc; do
		runs+=("importer-vivid-$dir-vmalloc-contig-$c $dir 0 contig $c")
		runs+=("importer-vivid-$dir-vmalloc-sg-$c $dir 0 sg $c")
	done
	runs+=("importer-vivid-$dir-vmalloc-pin $dir 0 pin cached")
	for c in cached wc uc; do
		runs+=("importer-vivid-$dir-contig-contig-$c $dir 1 contig $c")
	done
	runs+=("importer-vivid-$dir-contig-sg-refused $dir-refused 1 sg cached")
done
all() {	# one result line for every run: all <verdict> <detail>
	local r
	for r in "${runs[@]}"; do echo "PHYSMEM-TEST ${r%% *} $1 $2"; done
}
if ! out=$(modprobe vivid n_devs=2 node_types=0x101,0x101 allocators=0,1 \
		ccs_cap_mode=0,0 ccs_out_mode=0,0 2>&1); then
	all SKIP "vivid not available: $(echo "$out" | head -1)"
	exit 0
fi
node() {	# the $2 (vid-cap|vid-out) node of vivid instance $1
	local d
	for d in /sys/class/video4linux/video*; do
		[ "$(cat "$d/name" 2>/dev/null)" = "vivid-00$1-$2" ] &&
			{ echo "/dev/$(basename "$d")"; return 0; }
	done
	return 1
}
for _ in $(seq 50); do node 1 vid-out >/dev/null && break; sleep 0.1; done
cap0=$(node 0 vid-cap) && out0=$(node 0 vid-out) &&
cap1=$(node 1 vid-cap) && out1=$(node 1 vid-out) || {
	all FAIL "vivid capture/output nodes not found"
	ls /sys/class/video4linux/; cat /sys/class/video4linux/*/name
	exit 0
}
start=$(date +%s)
for r in "${runs[@]}"; do
	set -- $r
	if [ "$3" = 0 ]; then
		"$PHYSMEM_BIN/physmem-vivid" "$1" "$2" "$cap0" "$out0" 0 "$4" "$5"
	else
		"$PHYSMEM_BIN/physmem-vivid" "$1" "$2" "$cap1" "$out1" 1 "$4" "$5"
	fi
done
echo "vivid: ${#runs[@]} runs in $(( $(date +%s) - start )) s"
modprobe -r vivid
