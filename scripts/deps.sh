#!/bin/sh
# Install the Debian packages udaxfs needs to build, test and run, when any is
# missing.  Called by `make run`, `make test` and `make bench`; safe to re-run.
set -eu

PKGS="build-essential cmake pkg-config clang
libpmem2-dev liburcu-dev libcmocka-dev libxxhash-dev
libfuse3-dev fuse3
fio dbench fsmark sqlite3 git attr"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
		|| missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "udaxfs: installing Debian packages:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "udaxfs: need root (or sudo) to install:$missing" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
