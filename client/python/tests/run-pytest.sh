#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Run the physmem Python package's pytest suite against the physmemd binary $1.
# Debian's python3 first: python3-numpy and python3-pytest are installed for it.
# Exit 77 (skipped) where no python3 has both.
dir=$(dirname "$0")
for py in /usr/bin/python3 python3; do
	if "$py" -c 'import numpy, pytest' 2>/dev/null; then
		PHYSMEMD="$1" PYTHONDONTWRITEBYTECODE=1 exec "$py" -m pytest -q -p no:cacheprovider "$dir"
	fi
done
echo "python-pytest: no python3 with numpy and pytest (apt install python3-numpy python3-pytest)"
exit 77
