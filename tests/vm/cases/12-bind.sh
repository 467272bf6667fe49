#!/bin/bash
# A device binding (PHYSMEM_IOC_BIND) to edu in the default boot (no IOMMU:
# PHYSMEM_BIND_DIRECT, bound addresses == physical, copies correct).  The
# IOMMU cases are in tests/vm/cases-iommu (their own boots).
# PHYSMEM-EXPECT: bind-direct
case " $(cat /proc/cmdline) " in
*" intel_iommu=on "*)
	echo "PHYSMEM-TEST bind-direct SKIP IOMMU boot (tests/vm/cases-iommu covers it)" ;;
*)
	"$PHYSMEM_BIN/physmem-vmtest" bind-direct ;;
esac
