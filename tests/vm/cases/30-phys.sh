#!/bin/bash
# The classic interface: mmap /dev/physmem at a buffer's physical address;
# with allow_any_ram=1, at the address of a posix_memalign page.
# PHYSMEM-EXPECT: phys-demo
# PHYSMEM-EXPECT: phys-any-ram
"$PHYSMEM_BIN/physmem-vmtest" phys-demo
"$PHYSMEM_BIN/physmem-vmtest" phys-any-ram
