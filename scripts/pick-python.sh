#!/bin/sh
# Prints the interpreter `make` creates .venv with (the Makefile's PYTHON; set PYTHON to
# choose another): the first candidate that is Python 3.11 or newer with venv and ensurepip.
#
# The system's python3 comes first. Distributions build it with profile-guided optimisation
# and LTO, and link libpython into the executable; a version manager's default build
# (pyenv's, for one) has neither and calls libpython through a shared library: there
# Backchannel's HTTP layer costs 20-35 % more CPU per request, a flow under load 5-10 %
# more (docs/performance.md, step 28).
for candidate in /usr/bin/python3 python3; do
    if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' \
        >/dev/null 2>&1; then
        echo "$candidate"
        exit 0
    fi
done
echo python3
