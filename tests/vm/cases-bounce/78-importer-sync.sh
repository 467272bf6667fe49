#!/bin/bash
# CPU access syncs reach an importer's own mapping: the test importer module
# (tests/vm/edu-importer) attaches QEMU's edu device with its 28-bit DMA
# mask, so a buffer page above 256 MiB is mapped through a swiotlb bounce
# buffer (the guest boots iommu=soft); DMA_BUF_IOCTL_SYNC on the physmem fd
# must copy between that bounce buffer and the pages, both ways; and the
# importer's unmap of a write-combined buffer's mapping must copy the
# device's write back without any sync.  The
# importer is unloaded at the end so later users of edu find it unbound.
# PHYSMEM-EXPECT: importer-dma-api-sync-contig
# PHYSMEM-EXPECT: importer-dma-api-sync-sg
# PHYSMEM-EXPECT: importer-dma-api-unmap-wc
CASES="importer-dma-api-sync-contig importer-dma-api-sync-sg importer-dma-api-unmap-wc"
KO=$PHYSMEM_BUILD/edu-importer/physmem_edu_importer.ko

fail_all() {
	for c in $CASES; do
		echo "PHYSMEM-TEST $c FAIL $1"
	done
}

tlb=$(dmesg | grep -o 'software IO TLB: mapped \[mem [^]]*\]' | head -1)
if [ -z "$tlb" ]; then
	fail_all "no swiotlb in the kernel log (iommu=soft missing?)"
	exit 0
fi
echo "importer-sync: $tlb"
if ! out=$(insmod "$KO" 2>&1); then
	fail_all "insmod physmem_edu_importer: $out"
	exit 0
fi
for _ in $(seq 50); do
	[ -c /dev/physmem-edu-importer ] && break
	sleep 0.1
done
if [ -c /dev/physmem-edu-importer ]; then
	for c in $CASES; do
		"$PHYSMEM_BIN/physmem-importer-sync" "$c"
	done
else
	fail_all "no /dev/physmem-edu-importer (edu not bound?)"
fi
rmmod physmem_edu_importer || echo "PHYSMEM-TEST importer-dma-api-unmap-wc FAIL rmmod physmem_edu_importer failed"
