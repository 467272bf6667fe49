#!/bin/bash
# The same attacks by an unprivileged process (uid 65534) that got its
# buffer fds from root.
# PHYSMEM-EXPECT: atk-fork-unpriv
# PHYSMEM-EXPECT: atk-mremap-unpriv
# PHYSMEM-EXPECT: atk-ranges-unpriv
# PHYSMEM-EXPECT: atk-mprotect-unpriv
# PHYSMEM-EXPECT: atk-mlock-unpriv
# PHYSMEM-EXPECT: atk-numa-unpriv
# PHYSMEM-EXPECT: atk-uffd-unpriv
# PHYSMEM-EXPECT: atk-procfs-unpriv
# PHYSMEM-EXPECT: atk-vmsplice-tail-unpriv
# PHYSMEM-EXPECT: atk-iouring-unpriv
# PHYSMEM-EXPECT: atk-race-unpriv
# PHYSMEM-EXPECT: atk-race-pt-unpriv
# PHYSMEM-EXPECT: atk-madvise-unpriv
ATK=$PHYSMEM_BIN/physmem-attack
"$ATK" --unpriv fork mremap ranges mprotect mlock numa uffd procfs vmsplice-tail iouring race race-pt madvise
