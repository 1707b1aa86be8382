#!/bin/sh
# make run's script: it makes and formats the pool, mounts it in the
# foreground, and SIGINT (Ctrl-C) unmounts cleanly: no stale mount, a clean
# fsck, the data kept for the next run.
set -u
UDAXFS=$1
RUN=$(dirname "$0")/../scripts/run.sh
DIR=$(mktemp -d /dev/shm/udx-run-XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null
	grep -qs " $DIR/mnt " /proc/mounts && fusermount3 -u -z "$DIR/mnt"
	rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "SKIP: no FUSE here"; exit 77
fi

start() {
	# a script's background job starts with SIGINT ignored; this test is
	# Ctrl-C at a terminal, where it is not
	UDX_RUN_DIR=$DIR env --default-signal=INT "$RUN" "$UDAXFS" > "$DIR/out" 2>&1 &
	PID=$!
	for i in $(seq 200); do
		grep -qs " $DIR/mnt fuse.udaxfs " /proc/mounts && return 0
		kill -0 "$PID" 2>/dev/null || fail "run.sh ended: $(cat "$DIR/out")"
		sleep 0.05
	done
	fail "no mount after 10 s: $(cat "$DIR/out")"
}
stop() {
	kill -INT "$PID"
	wait "$PID"; rc=$?
	PID=
	[ $rc -eq 0 ] || fail "run.sh exit $rc after SIGINT: $(cat "$DIR/out")"
	grep -qs " $DIR/mnt " /proc/mounts && fail "a mount is left after SIGINT"
}

start
grep -q "mounted at $DIR/mnt until you press Ctrl-C" "$DIR/out" || fail "no instructions: $(cat "$DIR/out")"
echo "kept across runs" > "$DIR/mnt/note" || fail "write"
stop
"$UDAXFS" fsck "$DIR/udaxfs.pool" >/dev/null || fail "fsck after the run"
start
grep -q "using $DIR/udaxfs.pool" "$DIR/out" || fail "second run made a new pool: $(cat "$DIR/out")"
[ "$(cat "$DIR/mnt/note")" = "kept across runs" ] || fail "data lost between runs"
stop
echo "cli_run: ok"
