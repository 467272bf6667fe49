#!/bin/bash
# DMA proof: QEMU's edu device copies buffer A -> device -> buffer B using
# the DMA addresses physmem reports; B is checked through its dma-buf mmap.
# PHYSMEM-EXPECT: dma-contig
# PHYSMEM-EXPECT: dma-sg
# PHYSMEM-EXPECT: dma-pin
"$PHYSMEM_BIN/physmem-vmtest" dma-contig
"$PHYSMEM_BIN/physmem-vmtest" dma-sg
"$PHYSMEM_BIN/physmem-vmtest" dma-pin
