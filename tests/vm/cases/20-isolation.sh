#!/bin/bash
# Isolation: no unprivileged access to /dev/physmem, no mapping beyond a
# buffer, no physical mapping outside module buffers or without CAP_SYS_RAWIO.
# PHYSMEM-EXPECT: isolation-unpriv-open
# PHYSMEM-EXPECT: isolation-mmap
# PHYSMEM-EXPECT: isolation-phys-nocap
setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$PHYSMEM_BIN/physmem-vmtest" isolation-unpriv-open
"$PHYSMEM_BIN/physmem-vmtest" isolation-mmap
setpriv --inh-caps=-sys_rawio --bounding-set=-sys_rawio \
	"$PHYSMEM_BIN/physmem-vmtest" isolation-phys-nocap
