#!/bin/sh
# udaxfs mount's command line, bad input and the mount helpers:
#   8. a device that is not udaxfs, damaged superblocks (the primary only:
#      the mount recovers from the backup; both: a clear error), a damaged
#      inode (that file fails, the rest works, no crash), a missing or
#      non-directory mount point, a second mount of a device in use, missing
#      arguments, unknown and bad options: each a message and the exit code
#      of `udaxfs mount --help` (0 ok, 1 failure, 2 usage), no mount left
#      behind, and the device usable afterwards; -o ro (writes fail with
#      EROFS, reads work, the pool file is not written); allow_other and the
#      permission checks for another user
#   9. the mount helpers: mount -t fuse.udaxfs (mount(8) -> mount.fuse3 ->
#      `udaxfs DEVICE MOUNTPOINT -o OPTIONS`), mount.fuse3 run directly, and
#      udaxfs run as mount.fuse.udaxfs; the forking mode of `udaxfs mount`
# usage: fuse_cli.sh PATH/TO/udaxfs
set -u
. "$(dirname "$0")/fuse_lib.sh"
fl_init cli "${1:-}"

POOL=$FL_SHM/pool
M=$FL_TMP/mnt
M2=$FL_TMP/mnt2
mkdir "$M" "$M2"
fl_mkfs "$POOL" --size 64M

# mount_fails WHAT EXPECTED_RC REGEX ARGS...: `udaxfs mount ARGS` (the forking
# mode, as a user runs it) exits EXPECTED_RC (or any non-zero for "nz")
# with a message matching REGEX, in time, and adds no mount on $M or $M2
mounts_here() { awk -v a="$M" -v b="$M2" '$2 == a || $2 == b' /proc/mounts; }
mount_fails() {
	_mf_what=$1 _mf_rc=$2 _mf_re=$3
	shift 3
	_mf_before=$(mounts_here)
	_mf_out=$(timeout $((30 * FL_SLOW)) "$UDAXFS" mount "$@" 2>&1)
	_mf_got=$?
	[ $_mf_got -eq 124 ] && fail "$_mf_what: udaxfs mount $*: hangs (killed after $((30 * FL_SLOW)) s)"
	[ $_mf_got -gt 128 ] && fail "$_mf_what: udaxfs mount $*: killed by signal $((_mf_got - 128)): $_mf_out"
	if [ "$_mf_rc" = nz ]; then
		[ $_mf_got -ne 0 ] || fail "$_mf_what: udaxfs mount $*: exit 0, want a failure"
	else
		[ $_mf_got -eq "$_mf_rc" ] || fail "$_mf_what: udaxfs mount $*: exit $_mf_got, want $_mf_rc: $_mf_out"
	fi
	echo "$_mf_out" | grep -qiE "$_mf_re" ||
		fail "$_mf_what: udaxfs mount $*: the message does not match '$_mf_re': $_mf_out"
	if [ "$(mounts_here)" != "$_mf_before" ]; then
		fl_track "$M"
		fl_track "$M2"
		fail "$_mf_what: a failed mount left a mount behind: $(mounts_here)"
	fi
	echo "   $_mf_what: exit $_mf_got: $(echo "$_mf_out" | head -1)"
}

# bg_mount WHAT ARGS...: `udaxfs mount ARGS` in the forking mode succeeds;
# sets BG_PID to the daemon serving $M
bg_mount() {
	_bm_what=$1
	shift
	_bm_out=$(timeout $((30 * FL_SLOW)) "$UDAXFS" mount "$@" 2>&1) ||
		fail "$_bm_what: udaxfs mount $*: exit $?: $_bm_out"
	fl_is_mounted "$M" || fail "$_bm_what: exit 0 but $M is not mounted"
	fl_track "$M"
	BG_PID=$(fl_find_daemon "$M") || fail "$_bm_what: no daemon process found for $M"
	fl_track "$M" "$BG_PID"
}

# bg_umount WHAT: umount $M, wait for the forked daemon to end, fsck clean
bg_umount() {
	_bu_out=$(timeout $((60 * FL_SLOW)) umount "$M" 2>&1) || fail "$1: umount: $_bu_out"
	fl_wait_gone "$BG_PID" $((60 * FL_SLOW)) || fail "$1: the daemon $BG_PID still runs after umount"
	fl_is_mounted "$M" && fail "$1: still mounted after umount"
	fl_untrack "$M"
	fl_fsck_clean "$POOL" "$1"
}

# ---- help and usage ---------------------------------------------------------

say "8. help, usage"
out=$("$UDAXFS" mount --help) || fail "mount --help: exit $?"
echo "$out" | grep -q "exit codes: 0 mounted" && echo "$out" | grep -q "2 bad command line" ||
	fail "mount --help does not document the exit codes: $out"
"$UDAXFS" help mount | grep -q "exit codes" || fail "udaxfs help mount"
mount_fails "no arguments" 2 "give a DEVICE and a MOUNTPOINT"
mount_fails "no mount point" 2 "give a DEVICE and a MOUNTPOINT" "$POOL"
mount_fails "an extra operand" 2 "extra" "$POOL" "$M" "$M2"
mount_fails "an unknown flag" 2 "unknown option '--bogus'" --bogus "$POOL" "$M"
mount_fails "-o without a list" 2 "needs a list" "$POOL" "$M" -o

# ---- bad devices and mount points ------------------------------------------

say "8. bad devices and mount points"
head -c 33554432 /dev/zero > "$FL_SHM/zero"
mount_fails "a zero-filled device" 1 "udaxfs|superblock" "$FL_SHM/zero" "$M"
mount_fails "a missing device" 1 "no such device or pool file" "$FL_SHM/missing" "$M"
mount_fails "a directory as the device" 1 "directory" "$FL_SHM" "$M"
mount_fails "a missing mount point" 1 "no such file" "$POOL" "$FL_TMP/missing"
: > "$FL_TMP/file"
mount_fails "a mount point that is a file" 1 "not a directory" "$POOL" "$FL_TMP/file"

# a second mount of a device in use
fl_mount "$POOL" "$M"
DPID=$FL_PID DLOG=$FL_LOG
head -c 100000 /dev/urandom > "$FL_SHM/data"
cp "$FL_SHM/data" "$M/data" || fail "write"
mkdir "$M/dir" && echo keep > "$M/dir/keep"
mount_fails "a second mount of a mounted device" 1 "in use" "$POOL" "$M2"
mount_fails "a second mount, on the same mount point" 1 "in use" "$POOL" "$M"
fl_umount "$M" "$DPID" "$DLOG"
fl_fsck_clean "$POOL" "after the second-mount attempts"

# options udaxfs or libfuse refuse: a message, non-zero, and no mount left
# behind (the device is released: the next mount works)
mount_fails "an unknown -o option" 2 "unknown option|bogus_option" -o bogus_option "$POOL" "$M"
mount_fails "max_threads=0" 2 "max_threads" -o max_threads=0 "$POOL" "$M"
mount_fails "attr_timeout=abc" 2 "attr_timeout" -o attr_timeout=abc "$POOL" "$M"
mount_fails "entry_timeout=-1" 2 "entry_timeout" -o entry_timeout=-1 "$POOL" "$M"
fl_mount "$POOL" "$M" -o attr_timeout=0,entry_timeout=0,negative_timeout=0,max_threads=2
DPID=$FL_PID DLOG=$FL_LOG
cmp "$M/data" "$FL_SHM/data" || fail "the mount after refused options: data"
fl_umount "$M" "$DPID" "$DLOG"

# ---- read-only --------------------------------------------------------------

say "8. -o ro: writes fail with EROFS, reads work, the pool is not written"
sum=$(sha256sum < "$POOL")
fl_mount "$POOL" "$M" -o ro
DPID=$FL_PID DLOG=$FL_LOG
fl_mount_line "$M" | grep -qE " ro[, ]" || fail "-o ro: not ro in /proc/mounts: $(fl_mount_line "$M")"
cmp "$M/data" "$FL_SHM/data" || fail "-o ro: read"
[ "$(cat "$M/dir/keep")" = keep ] || fail "-o ro: read in a directory"
ls -laR "$M" >/dev/null || fail "-o ro: ls -laR"
ro_refused() {
	_rr_what=$1
	shift
	_rr=$("$@" 2>&1) && fail "-o ro: $_rr_what succeeded"
	echo "$_rr" | grep -q "Read-only file system" || fail "-o ro: $_rr_what: '$_rr', want 'Read-only file system'"
}
ro_refused "a new file" sh -c "echo x > '$M/new'"
ro_refused "a write to a file" sh -c "echo x >> '$M/data'"
ro_refused "touch" touch "$M/data"
ro_refused "mkdir" mkdir "$M/newdir"
ro_refused "rm" rm "$M/data"
ro_refused "rmdir" rm -r "$M/dir"
ro_refused "mv" mv "$M/data" "$M/data2"
ro_refused "chmod" chmod 600 "$M/data"
ro_refused "truncate" truncate -s 0 "$M/data"
ro_refused "ln -s" ln -s data "$M/link"
cmp "$M/data" "$FL_SHM/data" || fail "-o ro: the data after the refused writes"
fl_umount "$M" "$DPID" "$DLOG"
[ "$(sha256sum < "$POOL")" = "$sum" ] || fail "-o ro: the pool file changed"
fl_fsck_clean "$POOL" "after -o ro"

# ---- allow_other and permissions --------------------------------------------

say "8. allow_other: another user, the kernel's permission checks"
as_user() { setpriv --reuid=4321 --regid=4321 --clear-groups "$@"; }
chmod 755 "$FL_TMP"             # mktemp made it 700: let the user reach $M
as_user stat "$FL_TMP" >/dev/null || fail "another user cannot stat $FL_TMP"
fl_mount "$POOL" "$M"
DPID=$FL_PID DLOG=$FL_LOG
chmod 755 "$M"
as_user stat "$M" >/dev/null 2>&1 && fail "without allow_other another user can stat the mount"
fl_umount "$M" "$DPID" "$DLOG"
fl_mount "$POOL" "$M" -o allow_other
DPID=$FL_PID DLOG=$FL_LOG
chmod 644 "$M/data"
mkdir -p "$M/mine" && chown 4321:4321 "$M/mine"
out=$(as_user cat "$M/data" 2>&1 | cmp - "$FL_SHM/data" 2>&1) || fail "allow_other: another user cannot read a 644 file: $out"
out=$(as_user sh -c "echo x >> '$M/data'" 2>&1) && fail "allow_other: another user wrote a root 644 file"
echo "$out" | grep -q "Permission denied" || fail "allow_other: a write to a root 644 file: $out"
out=$(as_user sh -c "echo x > '$M/new'" 2>&1) && fail "allow_other: another user created a file in a root 755 directory"
out=$(as_user sh -c "echo mine > '$M/mine/f' && cat '$M/mine/f'" 2>&1)
[ "$out" = mine ] || fail "allow_other: another user in its own directory: $out"
[ "$(stat -c %u:%g "$M/mine/f")" = 4321:4321 ] || fail "allow_other: the new file's owner: $(stat -c %u:%g "$M/mine/f")"
# the kernel's checks, with udaxfs' owners and modes: a write clears the
# set-user-ID bit, chown is for root, times of another's file, sticky
as_user sh -c "chmod 4755 '$M/mine/f' && echo more >> '$M/mine/f'" || fail "allow_other: chmod and write of one's own file"
[ "$(stat -c %a "$M/mine/f")" = 755 ] || fail "allow_other: a write by the owner leaves mode $(stat -c %a "$M/mine/f") (want 755: set-user-ID cleared)"
out=$(as_user chown 0 "$M/mine/f" 2>&1) && fail "allow_other: another user gave a file to root"
echo "$out" | grep -q "Operation not permitted" || fail "allow_other: chown: $out"
touch "$M/rootfile" && chmod 666 "$M/rootfile"
as_user touch "$M/rootfile" || fail "allow_other: touch (now) of a 666 file"
out=$(as_user touch -d 2000-01-01 "$M/rootfile" 2>&1) && fail "allow_other: another user set the times of root's file"
mkdir -m 1777 "$M/sticky" && touch "$M/sticky/rootfile" && chmod 666 "$M/sticky/rootfile"
out=$(as_user rm -f "$M/sticky/rootfile" 2>&1) && fail "allow_other: another user removed root's file in a sticky directory"
[ -e "$M/sticky/rootfile" ] || fail "allow_other: the file in the sticky directory is gone"
chown 4321:777 "$M/mine" && chmod 2775 "$M/mine"
as_user touch "$M/mine/g" || fail "allow_other: touch in a set-group-ID directory"
[ "$(stat -c %u:%g "$M/mine/g")" = 4321:777 ] || fail "allow_other: the group from a set-group-ID directory: $(stat -c %u:%g "$M/mine/g")"
chmod 700 "$M/mine"
chown 0:0 "$M/mine"
out=$(as_user ls "$M/mine" 2>&1) && fail "allow_other: another user listed a root 700 directory"
rm -r "$M/mine" "$M/sticky" "$M/rootfile"
fl_umount "$M" "$DPID" "$DLOG"
fl_fsck_clean "$POOL" "after allow_other"

# ---- a pool that needs recovery ------------------------------------------------

say "8. a pool that was not unmounted cleanly: -o ro, a refused option"
fl_mkfs "$FL_SHM/dirty" --size 64M
fl_mount "$FL_SHM/dirty" "$M"
DPID=$FL_PID
cp "$FL_SHM/data" "$M/data"
exec 3<"$M/data"
rm "$M/data"                    # an orphan the crash leaves for recovery
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
exec 3<&-
fusermount3 -u -z "$M" || fail "fusermount3 -u -z of a dead mount"
fl_untrack "$M"
sum=$(sha256sum < "$FL_SHM/dirty")
# read-only cannot recover: a clear refusal, and the pool is not written
mount_fails "-o ro of a pool that needs recovery" 1 "needs recovery" -o ro "$FL_SHM/dirty" "$M"
[ "$(sha256sum < "$FL_SHM/dirty")" = "$sum" ] || fail "-o ro of a pool that needs recovery wrote the pool"
# a mount refused for its options should not have touched the device
for opt in max_threads=0 bogus_option; do
	cp "$FL_SHM/dirty" "$FL_SHM/dirty2"
	mount_fails "-o $opt on a pool that needs recovery" nz "$opt" -o "$opt" "$FL_SHM/dirty2" "$M"
	[ "$(sha256sum < "$FL_SHM/dirty2")" = "$sum" ] ||
		fail "udaxfs mount -o $opt (refused: exit $_mf_got) wrote the device before it looked at its options"
done
# a bad option, ours or libfuse's, is a bad command line (2)
for opt in max_threads=0 attr_timeout=abc entry_timeout=-1 bogus_option; do
	"$UDAXFS" mount -o "$opt" "$POOL" "$M" >/dev/null 2>&1
	rc=$?
	[ $rc -eq 2 ] || fail "udaxfs mount -o $opt: exit $rc, not 2 (bad command line)"
done
rm -f "$FL_SHM/dirty2"
# the read-write mount recovers: the orphan is freed
fl_mount "$FL_SHM/dirty" "$M"
o=$(fl_stat_value "$M" orphans)
[ "$o" = 0 ] || fail "after recovery: $o orphans"
fl_umount "$M" "$FL_PID" "$FL_LOG"
fl_fsck_clean "$FL_SHM/dirty" "the recovered pool"

# ---- damaged images ----------------------------------------------------------

say "8. damaged images: superblocks, an inode"
NBLK=$((64 * 256))
fl_mkfs "$FL_SHM/dmg" --size 64M
POOL_SAVE=$POOL
POOL=$FL_SHM/dmg
fl_mount "$POOL" "$M"
DPID=$FL_PID DLOG=$FL_LOG
cp "$FL_SHM/data" "$M/data" && cp "$FL_SHM/data" "$M/victim" || fail "write"
VICTIM=$(stat -c %i "$M/victim")
fl_umount "$M" "$DPID" "$DLOG"
cp "$POOL" "$FL_SHM/dmg.orig"

# the primary superblock: garbage.  The mount takes the backup (or fails
# with a clear message); no crash, no hang
head -c 4096 /dev/urandom | dd of="$POOL" conv=notrunc status=none
out=$(timeout $((30 * FL_SLOW)) "$UDAXFS" mount "$POOL" "$M" 2>&1)
rc=$?
if [ $rc -eq 0 ]; then
	fl_track "$M"
	BG_PID=$(fl_find_daemon "$M") || fail "no daemon for $M"
	fl_track "$M" "$BG_PID"
	cmp "$M/data" "$FL_SHM/data" || fail "after a damaged primary superblock: the data"
	bg_umount "a damaged primary superblock, recovered from the backup"
	echo "   a damaged primary superblock: mounted from the backup; fsck clean after"
elif [ $rc -eq 1 ]; then
	echo "$out" | grep -qiE "superblock|udaxfs" || fail "a damaged primary superblock: exit 1 without a clear message: $out"
	echo "   a damaged primary superblock: refused: $out"
else
	fail "a damaged primary superblock: exit $rc: $out"
fi

# both superblocks: a clear error
cp "$FL_SHM/dmg.orig" "$POOL"
head -c 4096 /dev/urandom | dd of="$POOL" conv=notrunc status=none
head -c 4096 /dev/urandom | dd of="$POOL" bs=4096 seek=$((NBLK - 1)) conv=notrunc status=none
mount_fails "both superblocks damaged" 1 "superblock|udaxfs" "$POOL" "$M"

# the backup only: the mount works, the clean unmount rewrites the backup
cp "$FL_SHM/dmg.orig" "$POOL"
head -c 4096 /dev/urandom | dd of="$POOL" bs=4096 seek=$((NBLK - 1)) conv=notrunc status=none
bg_mount "a damaged backup superblock" "$POOL" "$M"
cmp "$M/data" "$FL_SHM/data" || fail "a damaged backup superblock: the data"
bg_umount "a damaged backup superblock, rewritten at unmount"

# one inode: that file fails with an error, the others work, the daemon
# survives; fsck names the inode
cp "$FL_SHM/dmg.orig" "$POOL"
ITABLE=$(od -An -t u8 -j 168 -N 8 "$POOL" | tr -d ' ')
printf 'garbage-garbage!' | dd of="$POOL" bs=1 seek=$((ITABLE * 4096 + VICTIM * 256 + 8)) \
	conv=notrunc status=none
fl_mount "$POOL" "$M"
DPID=$FL_PID DLOG=$FL_LOG
out=$(timeout 30 cat "$M/victim" 2>&1) && fail "a damaged inode: cat succeeded"
echo "$out" | grep -qiE "Structure needs cleaning|Input/output error" || fail "a damaged inode: cat: $out"
cmp "$M/data" "$FL_SHM/data" || fail "a damaged inode: another file"
timeout 30 ls -la "$M" >/dev/null 2>&1
echo ok > "$M/new" && [ "$(cat "$M/new")" = ok ] || fail "a damaged inode: a new file"
fl_umount "$M" "$DPID" "$DLOG"
out=$("$UDAXFS" fsck "$POOL" 2>&1)
rc=$?
[ $rc -eq 4 ] && echo "$out" | grep -q "inode $VICTIM is damaged" || fail "fsck of a damaged inode: exit $rc: $out"
POOL=$POOL_SAVE

# ---- 9. the mount helpers ----------------------------------------------------

# the forking mode, as a user runs it
say "9. udaxfs mount (forking), then umount"
bg_mount "udaxfs mount" "$POOL" "$M"
cmp "$M/data" "$FL_SHM/data" || fail "udaxfs mount (forking): data"
bg_umount "udaxfs mount (forking)"

# `udaxfs DEVICE MOUNTPOINT -o OPTIONS`, as mount.fuse3 runs it, with the
# build directory first on PATH (mount.fuse3 runs `udaxfs` from PATH)
say "9. mount.fuse3 DEVICE MOUNTPOINT -t fuse.udaxfs -o OPTIONS"
BIN=$(dirname "$UDAXFS")
out=$(PATH=$BIN:$PATH timeout $((30 * FL_SLOW)) mount.fuse3 "$POOL" "$M" -o rw,noatime -t fuse.udaxfs 2>&1) ||
	fail "mount.fuse3: exit $?: $out"
fl_is_mounted "$M" || fail "mount.fuse3: exit 0 but not mounted"
fl_track "$M"
BG_PID=$(fl_find_daemon "$M") || fail "mount.fuse3: no daemon"
fl_track "$M" "$BG_PID"
line=$(fl_mount_line "$M")
set -- $line
[ "$1" = "$POOL" ] && [ "$3" = fuse.udaxfs ] || fail "mount.fuse3: /proc/mounts says '$line'"
echo "$4" | grep -q noatime || fail "mount.fuse3: noatime is not in '$4'"
cmp "$M/data" "$FL_SHM/data" || fail "mount.fuse3: data"
bg_umount "mount.fuse3"

# mount -t fuse.udaxfs: mount(8) runs /sbin/mount.fuse with a cleaned
# environment (no PATH: /bin/sh's default path), so the build's udaxfs is
# put on that path in a private mount namespace: a bind mount over
# /usr/local/sbin that nobody else sees (and that goes away with it)
say "9. mount -t fuse.udaxfs DEVICE MOUNTPOINT (mount(8), mount.fuse3), umount"
mkdir "$FL_TMP/sbin"
ln -s "$UDAXFS" "$FL_TMP/sbin/udaxfs"
cat > "$FL_SHM/ns.sh" <<EOF
set -u
# on any failure, detach the mount: its daemon then ends
trap 'umount -l "$M" 2>/dev/null' EXIT
mount --bind "$FL_TMP/sbin" /usr/local/sbin || exit 10
mount -t fuse.udaxfs -o ro "$POOL" "$M" || exit 11
grep " $M " /proc/mounts > "$FL_SHM/ns.mounts"
cmp "$M/data" "$FL_SHM/data" || exit 12
touch "$M/ro" 2>/dev/null && exit 13
umount "$M" || exit 14
grep -q " $M " /proc/mounts && exit 15
exit 0
EOF
if unshare -m --propagation private true 2>/dev/null; then
	out=$(timeout $((60 * FL_SLOW)) unshare -m --propagation private sh "$FL_SHM/ns.sh" 2>&1)
	rc=$?
	case $rc in
	0) ;;
	1) fail "mount -t fuse.udaxfs: the private namespace: $out" ;;
	10) fail "mount -t fuse.udaxfs: the bind mount in the private namespace failed: $out" ;;
	11) fail "mount -t fuse.udaxfs -o ro $POOL $M: failed: $out" ;;
	12) fail "mount -t fuse.udaxfs: the data differs" ;;
	13) fail "mount -t fuse.udaxfs -o ro: a write succeeded" ;;
	*) fail "mount -t fuse.udaxfs: exit $rc: $out" ;;
	esac
	set -- $(cat "$FL_SHM/ns.mounts")
	[ "$1" = "$POOL" ] && [ "$3" = fuse.udaxfs ] || fail "mount -t fuse.udaxfs: /proc/mounts said '$*'"
	echo "$4" | grep -qE "(^|,)ro(,|$)" || fail "mount -t fuse.udaxfs -o ro: options '$4'"
	# the daemon lived in the namespace: wait for it to end
	BG_PID=$(fl_find_daemon "$M" 2>/dev/null)
	if [ -n "$BG_PID" ]; then
		fl_track "$M" "$BG_PID"
		fl_wait_gone "$BG_PID" $((60 * FL_SLOW)) || fail "mount -t fuse.udaxfs: the daemon did not end after umount"
		fl_untrack "$M"
	fi
	fl_fsck_clean "$POOL" "mount -t fuse.udaxfs"
else
	echo "   NOTE: mount -t fuse.udaxfs not tested: unshare -m is not permitted here"
fi

# udaxfs called as mount.fuse.udaxfs (the name mount(8) looks for)
say "9. mount.fuse.udaxfs DEVICE MOUNTPOINT -o rw, umount"
ln -s "$UDAXFS" "$FL_TMP/mount.fuse.udaxfs"
out=$(timeout $((30 * FL_SLOW)) "$FL_TMP/mount.fuse.udaxfs" "$POOL" "$M" -o rw 2>&1) ||
	fail "mount.fuse.udaxfs: exit $?: $out"
fl_is_mounted "$M" || fail "mount.fuse.udaxfs: not mounted"
fl_track "$M"
BG_PID=$(fl_find_daemon "$M") || fail "mount.fuse.udaxfs: no daemon"
fl_track "$M" "$BG_PID"
set -- $(fl_mount_line "$M")
[ "$1" = "$POOL" ] && [ "$3" = fuse.udaxfs ] || fail "mount.fuse.udaxfs: /proc/mounts says '$*'"
echo "$4" | grep -qE "(^|,)rw(,|$)" || fail "mount.fuse.udaxfs -o rw: options '$4'"
echo helper > "$M/helper" && [ "$(cat "$M/helper")" = helper ] || fail "mount.fuse.udaxfs: write"
bg_umount "mount.fuse.udaxfs"
# mount(8)'s flags for helpers: -r is ro, -n -s -v are ignored
out=$(timeout $((30 * FL_SLOW)) "$FL_TMP/mount.fuse.udaxfs" -n -s -v "$POOL" "$M" -r 2>&1) ||
	fail "mount.fuse.udaxfs -n -s -v -r: exit $?: $out"
fl_track "$M"
BG_PID=$(fl_find_daemon "$M") || fail "mount.fuse.udaxfs -r: no daemon"
fl_track "$M" "$BG_PID"
set -- $(fl_mount_line "$M")
echo "$4" | grep -qE "(^|,)ro(,|$)" || fail "mount.fuse.udaxfs -r: options '$4'"
bg_umount "mount.fuse.udaxfs -r"
out=$("$FL_TMP/mount.fuse.udaxfs" "$POOL" 2>&1)
[ $? -eq 2 ] || fail "mount.fuse.udaxfs without a mount point: exit not 2: $out"
echo ok
