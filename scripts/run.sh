#!/bin/sh
# First README command: install what is missing, build, run the default guest.
# Until Linux boots (issue 4) the default guest is the s001 program on KVM:
# it prints "Helo" through the debug port and exits.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh >/dev/null
exec build/bin/launcher run guest/default.conf "$@"
