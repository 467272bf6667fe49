#!/bin/bash
# Mapping attacks as root holding only dma-buf fds: fork, mremap, partial
# munmap and odd offsets, mprotect, mlock, NUMA calls, userfaultfd, procfs.
# PHYSMEM-EXPECT: atk-fork
# PHYSMEM-EXPECT: atk-mremap
# PHYSMEM-EXPECT: atk-ranges
# PHYSMEM-EXPECT: atk-mprotect
# PHYSMEM-EXPECT: atk-mlock
# PHYSMEM-EXPECT: atk-numa
# PHYSMEM-EXPECT: atk-uffd
# PHYSMEM-EXPECT: atk-procfs
ATK=$PHYSMEM_BIN/physmem-attack
"$ATK" fork mremap ranges mprotect mlock numa uffd procfs
