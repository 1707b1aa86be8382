#!/bin/sh
# make run: the main job.  The embedded default pool, run/udaxfs.pool in the
# working tree (a 1 GiB sparse file), made and formatted on first use, is
# mounted through FUSE at run/mnt in the foreground; Ctrl-C unmounts it
# cleanly.  Without FUSE (no /dev/fuse, no permission) the in-process
# demonstration runs instead on anonymous memory.
#   UDX_RUN_DIR=DIR   put the pool and the mount point elsewhere
set -u
UDAXFS=$1
DIR=${UDX_RUN_DIR:-$PWD/run}
POOL=$DIR/udaxfs.pool
MNT=$DIR/mnt

if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null 2>&1; then
	echo "udaxfs: no FUSE here (/dev/fuse, fusermount3); running the in-process demo instead"
	exec "$UDAXFS" demo
fi
mkdir -p "$MNT" || exit 1

# a mount a killed earlier run left behind (its server is gone): ours, so
# take it away; a live one means that run is still going
if grep -qs " $MNT fuse.udaxfs " /proc/mounts; then
	if stat "$MNT" >/dev/null 2>&1; then
		echo "udaxfs: $MNT is mounted by a run still going; stop it first (Ctrl-C there," >&2
		echo "        or umount $MNT)" >&2
		exit 1
	fi
	echo "udaxfs: removing the stale mount a killed run left at $MNT"
	fusermount3 -u -z "$MNT" || exit 1
fi

if [ ! -e "$POOL" ]; then
	"$UDAXFS" mkfs "$POOL" --size 1G --label udaxfs-run || exit 1
else
	echo "udaxfs: using $POOL (delete it for a fresh file system)"
fi

cat <<EOF

udaxfs is mounted at $MNT until you press Ctrl-C.  In another terminal:

  cp -a /etc/apt $MNT/ && ls -lR $MNT        use it like any directory
  df -h $MNT; mount | grep udaxfs
  $UDAXFS stats $MNT
      live counters: inodes, orphans, folios, pins
  echo kept > $MNT/f; exec 3<$MNT/f; rm $MNT/f; cat <&3
      an unlinked file lives while it is open (an orphan in the stats)

The pool is a file on disk, persisted with msync at every commit: each
metadata change is durable when it returns, which costs a few milliseconds
on a disk (a pool on /dev/shm, or real persistent memory, does not).
After Ctrl-C: $UDAXFS fsck $POOL

EOF
exec "$UDAXFS" mount -f "$POOL" "$MNT"
