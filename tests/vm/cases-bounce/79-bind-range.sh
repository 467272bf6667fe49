#!/bin/bash
# Without an IOMMU, BIND refuses (ERANGE) a buffer edu cannot reach at its
# physical address (above 4 GiB, edu being driverless with the default
# 32-bit mask) instead of bouncing it through swiotlb.  In the bounce layout
# (PHYSMEM_VM_BOUNCE=1) because most RAM lies above 4 GiB there.
# PHYSMEM-EXPECT: bind-range
"$PHYSMEM_BIN/physmem-vmtest" bind-range
