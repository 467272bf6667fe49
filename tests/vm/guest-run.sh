#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# guest-run.sh: runs as root inside the test VM, chrooted into the host's
# read-only root.  Loads physmem.ko, runs every case script, checks the
# kernel log, prints "PHYSMEM-VM-RESULT pass=N fail=M".
#
# Case scripts get, in the environment:
#   PHYSMEM_SRC      source tree          PHYSMEM_BUILD  VM test build dir
#   PHYSMEM_BIN      writable copies of the helpers (world-executable)
#   PHYSMEM_KO       the module           PHYSMEM_TMP    scratch dir (tmpfs)
#   PHYSMEM_PROJECT_BUILD_DIR  the project's build dir (may be empty)
#   PHYSMEM_VM_KMOD_ARGS  the module parameters it was loaded with (a case
#                    that reloads the module passes them again)
# and print "PHYSMEM-TEST <name> PASS|FAIL|SKIP <detail>" lines.
set -u
export PHYSMEM_TMP=/tmp/physmem-vm
export PHYSMEM_BIN=$PHYSMEM_TMP/bin
export PHYSMEM_KO=$PHYSMEM_BUILD/kmod/physmem.ko
export PHYSMEM_VM_KMOD_ARGS=${PHYSMEM_VM_KMOD_ARGS:-}
export PHYSMEM_SRC PHYSMEM_BUILD PHYSMEM_PROJECT_BUILD_DIR
RESULTS=$PHYSMEM_TMP/results
mkdir -p "$PHYSMEM_BIN"
chmod 755 "$PHYSMEM_TMP" "$PHYSMEM_BIN"
cp "$PHYSMEM_BUILD"/bin/* "$PHYSMEM_BIN/"
chmod 755 "$PHYSMEM_BIN"/*
: >"$RESULTS"

result() { echo "PHYSMEM-TEST $1 $2 ${3:--}" | tee -a "$RESULTS"; }

# Kernel messages stay off the console until the dump below: printed by a
# console thread (7.x), one landed inside a case's result line ("contiguous
# chunk is too small" from a refused QBUF) and the host found no line for
# that case.  An oops or panic still reaches the console (they raise the
# console level themselves); everything else is in the dump.
echo 1 >/proc/sys/kernel/printk
echo "PHYSMEM-VM-GUEST start $(uname -r)"
# shellcheck disable=SC2086
if out=$(insmod "$PHYSMEM_KO" $PHYSMEM_VM_KMOD_ARGS 2>&1) && [ -c /dev/physmem ]; then
	mode=$(stat -c %a /dev/physmem)
	if [ "$mode" = 600 ]; then
		result module-load PASS "dev mode $mode"
	else
		result module-load FAIL "dev mode $mode, want 600"
	fi
else
	result module-load FAIL "insmod: $out"
fi

IFS=: read -ra dirs <<<"$PHYSMEM_VM_CASE_DIRS"
for d in "${dirs[@]}"; do
	for f in "$d"/*.sh; do
		[ -e "$f" ] || continue
		# shellcheck disable=SC2254
		case $(basename "$f") in $PHYSMEM_VM_ONLY) ;; *) continue ;; esac
		echo "PHYSMEM-VM-CASE $f"
		t0=$(date +%s)
		(cd "$PHYSMEM_TMP" && timeout 240 bash "$f") 2>&1 | tee -a "$RESULTS"
		echo "PHYSMEM-VM-CASE-DONE $(basename "$f") $(( $(date +%s) - t0 ))s"
	done
done

# all buffers gone once every case has finished
if [ -d /sys/class/misc/physmem/stats ]; then
	b=$(cat /sys/class/misc/physmem/stats/buffers)
	n=$(cat /sys/class/misc/physmem/stats/bytes)
	nb=$(cat /sys/class/misc/physmem/stats/bindings)
	bb=$(cat /sys/class/misc/physmem/stats/bound_bytes)
	if [ "$b" = 0 ] && [ "$n" = 0 ] && [ "$nb" = 0 ] && [ "$bb" = 0 ]; then
		result counters-zero PASS "buffers=0 bytes=0 bindings=0 bound_bytes=0"
	else
		result counters-zero FAIL "buffers=$b bytes=$n bindings=$nb bound_bytes=$bb"
	fi
else
	result counters-zero FAIL "module not loaded at the end"
fi

# vivid on 6.12 and later can hand schedule_timeout() a negative timeout when
# a jiffy passes between its deadline check and its wait (vivid_thread_*);
# the kernel prints "wrong timeout value" and a stack trace and returns at
# once.  That race is vivid's, not physmem's: leave out exactly those blocks
# (the full log is still printed below).
judged_log() {
	dmesg | awk '
		/schedule_timeout: wrong timeout value/ { held = 1; n = 0; vivid = 0 }
		held {
			block[n++] = $0
			if (/vivid_thread_/)
				vivid = 1
			if (/<\/TASK>/) {
				if (!vivid)
					for (i = 0; i < n; i++) print block[i]
				held = 0
			}
			next
		}
		{ print }
		END { if (held) for (i = 0; i < n; i++) print block[i] }'
}
pattern='WARNING:|BUG:|Oops|general protection|KASAN|UBSAN|kernel BUG|Call Trace|Bad page|list_del corruption|list_add corruption|Bad rss-counter|page dumped because|Poison overwritten|Redzone|Object padding|refcount_t:|KFENCE|pagealloc: '
echo "PHYSMEM-DMESG-BEGIN"
dmesg | sed 's/^/dmesg: /'
echo "PHYSMEM-DMESG-END"
if bad=$(judged_log | grep -E "$pattern" | head -3) && [ -n "$bad" ]; then
	result kernel-log FAIL "$(echo "$bad" | tr '\n' ' ')"
else
	left_out=$(( $(dmesg | grep -c 'schedule_timeout: wrong timeout value') -
		$(judged_log | grep -c 'schedule_timeout: wrong timeout value') ))
	result kernel-log PASS "$(dmesg | grep -c physmem) physmem lines, no warnings$(
		[ "$left_out" = 0 ] || echo " ($left_out vivid schedule_timeout traces left out)")"
fi

pass=$(grep -c '^PHYSMEM-TEST [^ ]* PASS' "$RESULTS")
fail=$(grep -c '^PHYSMEM-TEST [^ ]* FAIL' "$RESULTS")
echo "PHYSMEM-VM-RESULT pass=$pass fail=$fail"
