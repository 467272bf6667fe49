#!/bin/sh
# Run physmemd ($PHYSMEMD_REAL) under valgrind: any memory error or definite/
# indirect leak makes it exit 99, which the test's final "exits 0 on SIGTERM"
# check turns into a failure.
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--show-leak-kinds=definite,indirect "$PHYSMEMD_REAL" "$@"
