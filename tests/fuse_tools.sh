#!/bin/sh
# Real tools on a udaxfs FUSE mount (udaxfs mount -f, one pool in /dev/shm):
#   1. cp -a and diff -r of a generated tree (a few thousand files: nested
#      directories, small and medium random files, a sparse file, empty
#      files, relative symlinks, hard links, modes, owners, times), the
#      metadata compared with find -printf; tar create and extract with
#      sha256sum lists compared
#   2. git init, add, commit, a second commit, gc; git fsck --full clean,
#      git status --porcelain empty, a clone outside matches
#   3. sqlite3: thousands of single-statement transactions (rollback
#      journal) and a WAL database with a concurrent reader; integrity_check,
#      counts and sums, .dump equal to the same script run on tmpfs
#   4. fio with psync and mmap, verify=crc32c, verify_fatal
#   5. fs_mark (no sync, and fsync before close) and a short dbench
#   6. coreutils and util-linux: stat, chmod, chown, touch -d, ln, ln -s,
#      mv, rm, mkdir -p, rmdir, truncate, fallocate (-l, -n, --punch-hole,
#      -z), O_DIRECT, programs run from the mount, a set-group-ID
#      directory, a big directory, far offsets, long symlinks, fifos and
#      device nodes, xattrs refused, sync, statfs; concurrent writers
#      (regions of one file, separate files, O_APPEND), reads racing
#      truncate; an unlinked open file (an orphan in `udaxfs stats
#      MOUNTPOINT` until closed); after an unmount, fsck and a remount:
#      inode numbers, the tree, the tar extraction, git, sqlite and fio's
#      data verified again (read from the device, not the page cache)
# usage: fuse_tools.sh PATH/TO/udaxfs
set -u
. "$(dirname "$0")/fuse_lib.sh"
fl_init tools "${1:-}"

T0=$(now_ms)
lap() { echo "   ($(($(now_ms) - T0)) ms so far)"; }

POOL=$FL_SHM/pool
M=$FL_TMP/mnt
SRC=$FL_SHM/src
mkdir "$M" "$FL_SHM/home"

# sizes: a sanitized daemon is several times slower
if [ -n "$FL_SAN" ]; then
	TOP=3 SUB=3 PERDIR=64000 SQL_N=400 FIO_SIZE=2m FSM_N=300 DBENCH_T=0
else
	TOP=6 SUB=5 PERDIR=128000 SQL_N=3000 FIO_SIZE=8m FSM_N=2000 DBENCH_T=3
fi

fl_mkfs "$POOL" --size 2G --inodes 131072
fl_mount "$POOL" "$M"
MPID=$FL_PID MLOG=$FL_LOG

# ---- the source tree (on tmpfs) -------------------------------------------

make_tree() {
	mkdir -p "$1"
	for a in $(seq 0 $((TOP - 1))); do
		for b in $(seq 0 $((SUB - 1))); do
			mkdir -p "$1/d$a/s$b"
			# small files of random sizes: random bytes split at newlines
			head -c $PERDIR /dev/urandom | split -l 5 -a 3 - "$1/d$a/s$b/f"
		done
		# medium files: 300000 bytes each (not a multiple of 4096)
		head -c 1100000 /dev/urandom | split -b 300000 -a 1 - "$1/d$a/m"
	done
	mkdir -p "$1/d0/s0/a/b/c/d/e/f/g" "$1/emptydir"
	echo deep > "$1/d0/s0/a/b/c/d/e/f/g/leaf"
	head -c 3145851 /dev/urandom > "$1/big"            # 3 MiB + 123 bytes
	truncate -s 20M "$1/sparse"
	printf middle | dd of="$1/sparse" bs=1 seek=10000000 conv=notrunc status=none
	printf end | dd of="$1/sparse" bs=1 seek=20971000 conv=notrunc status=none
	: > "$1/empty1"
	: > "$1/d1/empty2"
	: > "$1/d2/s1/empty3"
	# relative symlinks inside the tree: to files, to a directory, a chain
	ln -s ../s1/faab "$1/d0/s0/link_file"
	ln -s s1 "$1/d0/link_dir"
	ln -s ../../big "$1/d1/s0/link_big"
	ln -s d2/s2/faac "$1/link_top"
	ln -s link_top "$1/link_chain"
	ln -s ./d0/s0/a/b/c/d/e/f/g/leaf "$1/link_deep"
	# hard links: a group of three across directories, and the big file
	ln "$1/d0/s0/faab" "$1/d1/hard_faab"
	ln "$1/d0/s0/faab" "$1/d2/s1/hard_faab2"
	ln "$1/big" "$1/d2/big_link"
	# modes and owners
	chmod 600 "$1/d0/s0/faaa"
	chmod 755 "$1/d0/s0/faac"
	chmod 444 "$1/d1/s1/faaa"
	chmod 4755 "$1/d1/s1/faab"
	chmod 0 "$1/d2/s2/faad"
	chmod 700 "$1/d2/s2"
	chmod 1777 "$1/d1/s2"
	chmod 2755 "$1/d2/s0"
	chown 1234:5678 "$1/d0/s1/faaa"
	chown 1000:1000 "$1/d1/s2"
	chown -h 42:43 "$1/link_top"
	# times, to the nanosecond
	touch -d '2001-02-03 04:05:06.123456789' "$1/d0/s0/faaa"
	touch -a -d '1990-01-01 00:00:00' "$1/d0/s0/faac"
	touch -h -d '1999-12-31 23:59:59.5' "$1/link_chain"
	touch -d '2010-10-10 10:10:10' "$1/d0/s0/a"
}

# tree_meta DIR TIMEFMT: type, mode, owner, size, links, mtime and name of
# every entry (directory sizes and link counts are the file system's own)
tree_meta() {
	(cd "$1" && find . -name .git -prune -o \
		\( -type d -printf "d %m %U:%G - - %T$2 %p\n" \) -o \
		\( -type l -printf "l %m %U:%G %s %n %T$2 %p -> %l\n" \) -o \
		-printf "%y %m %U:%G %s %n %T$2 %p\n") | LC_ALL=C sort
}

# tree_sums DIR: sha256sum of every regular file
tree_sums() {
	(cd "$1" && find . -name .git -prune -o -type f -print0 | LC_ALL=C sort -z |
		xargs -0 sha256sum)
}

# same_lists WHAT FILE1 FILE2
same_lists() {
	cmp -s "$2" "$3" || fail "$1: they differ:
$(diff "$2" "$3" | head -20)"
}

make_tree "$SRC"
NFILES=$(find "$SRC" -type f | wc -l)
tree_meta "$SRC" @ > "$FL_SHM/src.meta"
tree_sums "$SRC" > "$FL_SHM/src.sums"
say "source tree: $NFILES files, $(find "$SRC" -type d | wc -l) directories, $(find "$SRC" -type l | wc -l) symlinks"

# ---- 1. cp -a, diff -r, tar ------------------------------------------------

say "1. cp -a of the tree, diff -r, metadata, tar round trip"
out=$(timeout $((300 * FL_SLOW)) cp -a "$SRC" "$M/copy" 2>&1) || fail "cp -a: $out"
out=$(timeout $((300 * FL_SLOW)) diff -r --no-dereference "$SRC" "$M/copy" 2>&1) ||
	fail "diff -r of the copy: $(echo "$out" | head -20)"
tree_meta "$M/copy" @ > "$FL_SHM/copy.meta"
same_lists "cp -a: metadata of the source and the copy (mode owner size links mtime name)" \
	"$FL_SHM/src.meta" "$FL_SHM/copy.meta"
[ "$(stat -c %i "$M/copy/d0/s0/faab")" = "$(stat -c %i "$M/copy/d1/hard_faab")" ] &&
	[ "$(stat -c %i "$M/copy/d0/s0/faab")" = "$(stat -c %i "$M/copy/d2/s1/hard_faab2")" ] ||
	fail "cp -a: the hard links are not one inode: $(stat -c '%i %h %n' "$M/copy/d0/s0/faab" "$M/copy/d1/hard_faab" "$M/copy/d2/s1/hard_faab2")"
[ "$(cat "$M/copy/link_chain")" = "$(cat "$SRC/d2/s2/faac")" ] || fail "cp -a: a read through a symlink chain"
[ "$(readlink "$M/copy/d0/s0/link_file")" = ../s1/faab ] || fail "cp -a: readlink"
[ "$(stat -c %b "$M/copy/sparse")" -lt 20480 ] ||
	echo "   note: the sparse file takes $(stat -c %b "$M/copy/sparse") blocks on the mount"

out=$(cd "$M/copy" && timeout $((300 * FL_SLOW)) tar -cf "$M/tree.tar" . 2>&1) || fail "tar -c: $out"
mkdir "$M/untar"
out=$(timeout $((300 * FL_SLOW)) tar -C "$M/untar" -xpf "$M/tree.tar" 2>&1) || fail "tar -x: $out"
tree_sums "$M/untar" > "$FL_SHM/untar.sums"
same_lists "tar round trip: sha256sum lists of the source and the extraction" \
	"$FL_SHM/src.sums" "$FL_SHM/untar.sums"
tree_meta "$SRC" s > "$FL_SHM/src.meta_s"
tree_meta "$M/untar" s > "$FL_SHM/untar.meta_s"
same_lists "tar round trip: metadata (mtime in seconds, as tar keeps it)" \
	"$FL_SHM/src.meta_s" "$FL_SHM/untar.meta_s"
# tar -t of the archive on the mount lists every entry
n=$(tar -tf "$M/tree.tar" | wc -l)
[ "$n" -eq "$(cd "$SRC" && find . | wc -l)" ] || fail "tar -t lists $n entries"
lap

# ---- 2. git ----------------------------------------------------------------

say "2. git init, add, commit, gc, fsck, status"
export HOME="$FL_SHM/home" GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=udaxfs \
	GIT_AUTHOR_EMAIL=udaxfs@example.org GIT_COMMITTER_NAME=udaxfs \
	GIT_COMMITTER_EMAIL=udaxfs@example.org
# no background gc: a detached git process would keep the mount busy
export GIT_CONFIG_COUNT=2 GIT_CONFIG_KEY_0=gc.autoDetach GIT_CONFIG_VALUE_0=false \
	GIT_CONFIG_KEY_1=maintenance.auto GIT_CONFIG_VALUE_1=false
G=$M/copy
git_ok() {
	_go=$(cd "$G" && timeout $((300 * FL_SLOW)) git "$@" 2>&1) || fail "git $*: $_go"
}
git_ok init -q
git_ok add -A
git_ok commit -q -m "the generated tree"
git_ok fsck --full --no-progress
echo "$_go" | grep -qiE "error|missing|corrupt|broken" && fail "git fsck --full: $_go"
git_ok status --porcelain
[ -z "$_go" ] || fail "git status --porcelain after the commit: $(echo "$_go" | head)"
# a second commit: changes, renames, removals; then gc (packs, mmap reads)
echo appended >> "$G/d0/s1/faaa" &&
	head -c 5000 /dev/urandom > "$G/d1/new_file" &&
	mv "$G/d1/s1/faac" "$G/d1/s1/renamed" &&
	rm "$G/d0/s2/faac" || fail "changes in the git work tree"
git_ok add -A
git_ok commit -q -m "second"
git_ok gc -q
git_ok fsck --full --no-progress
echo "$_go" | grep -qiE "error|missing|corrupt|broken" && fail "git fsck --full after gc: $_go"
git_ok status --porcelain
[ -z "$_go" ] || fail "git status --porcelain after gc: $(echo "$_go" | head)"
git_ok rev-list --count HEAD
[ "$_go" = 2 ] || fail "git rev-list --count HEAD: $_go"
out=$(timeout $((300 * FL_SLOW)) git clone -q "$G" "$FL_SHM/clone" 2>&1) || fail "git clone: $out"
out=$(diff -r --no-dereference -x .git -x emptydir "$G" "$FL_SHM/clone" 2>&1) ||
	fail "the clone differs from the work tree: $(echo "$out" | head)"
GIT_HEAD=$(cd "$G" && git rev-parse HEAD)
lap

# ---- 3. sqlite3 ------------------------------------------------------------

say "3. sqlite3: $SQL_N insert transactions, updates, deletes; WAL with a reader"
mkdir "$M/db"
awk -v n="$SQL_N" 'BEGIN {
	print "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER NOT NULL, s TEXT);"
	print "CREATE INDEX t_v ON t(v);"
	for (i = 1; i <= n; i++)
		printf "INSERT INTO t VALUES(%d, %d, %d || \047:\047 || replace(hex(zeroblob(%d)), \0470\047, char(%d)));\n", i, (i * 7919) % 1000, i, i % 700, 97 + i % 26
	for (i = 1; i <= n / 6; i++)
		printf "UPDATE t SET v = v + 1000, s = s || \047+\047 WHERE id = %d;\n", i * 5
	for (i = 1; i <= n / 10; i++)
		printf "DELETE FROM t WHERE id = %d;\n", i * 7
	print "BEGIN; UPDATE t SET v = v + 1 WHERE id % 3 = 0; DELETE FROM t WHERE id % 11 = 0; COMMIT;"
}' > "$FL_SHM/ops.sql"
# the expected count, independently of sqlite
want_count=$(awk -v n="$SQL_N" 'BEGIN {
	for (i = 1; i <= n; i++) live[i] = 1
	for (i = 1; i <= n / 10; i++) delete live[i * 7]
	for (i in live) if (i % 11 != 0) c++
	print c }')
out=$(timeout $((300 * FL_SLOW)) sqlite3 "$M/db/t.db" < "$FL_SHM/ops.sql" 2>&1) || fail "sqlite3 on the mount: $out"
out=$(sqlite3 "$FL_SHM/ref.db" < "$FL_SHM/ops.sql" 2>&1) || fail "sqlite3 on tmpfs: $out"
check_sqlite() {
	_cs=$(sqlite3 "$M/db/t.db" "PRAGMA integrity_check;" 2>&1)
	[ "$_cs" = ok ] || fail "$1: PRAGMA integrity_check: $_cs"
	_cs=$(sqlite3 "$M/db/t.db" "SELECT count(*), sum(v), sum(length(s)) FROM t;" 2>&1)
	_cs_ref=$(sqlite3 "$FL_SHM/ref.db" "SELECT count(*), sum(v), sum(length(s)) FROM t;")
	[ "$_cs" = "$_cs_ref" ] || fail "$1: count|sum|length on the mount '$_cs', on tmpfs '$_cs_ref'"
	[ "${_cs%%|*}" = "$want_count" ] || fail "$1: $_cs rows, want $want_count"
	sqlite3 "$M/db/t.db" .dump > "$FL_SHM/mnt.dump" || fail "$1: .dump"
	sqlite3 "$FL_SHM/ref.db" .dump > "$FL_SHM/ref.dump"
	same_lists "$1: .dump of the database on the mount and on tmpfs" "$FL_SHM/ref.dump" "$FL_SHM/mnt.dump"
}
check_sqlite "sqlite (rollback journal)"
[ -e "$M/db/t.db-journal" ] && fail "sqlite: the rollback journal is left behind"

# WAL: the -shm file is shared memory (mmap of a file on the mount); a
# reader runs while the writer commits
WAL_N=$((SQL_N / 3))
sqlite3 "$M/db/w.db" "PRAGMA journal_mode=WAL; CREATE TABLE w(id INTEGER PRIMARY KEY, x TEXT);" >/dev/null ||
	fail "sqlite WAL: create"
awk -v n="$WAL_N" 'BEGIN { print ".timeout 10000"
	for (i = 1; i <= n; i++) printf "INSERT INTO w VALUES(%d, hex(zeroblob(%d)));\n", i, i % 300 }' > "$FL_SHM/wal.sql"
(
	last=0
	i=0
	while [ $i -lt 40 ]; do
		c=$(sqlite3 -cmd ".timeout 10000" "$M/db/w.db" "SELECT count(*) FROM w;" 2>&1) ||
			{ echo "reader: $c"; exit 1; }
		[ "$c" -ge "$last" ] || { echo "reader: the count went back from $last to $c"; exit 1; }
		last=$c
		i=$((i + 1))
	done
) > "$FL_SHM/reader.out" 2>&1 &
RPID=$!
FL_BG="$FL_BG $RPID"
out=$(timeout $((300 * FL_SLOW)) sqlite3 "$M/db/w.db" < "$FL_SHM/wal.sql" 2>&1) || fail "sqlite WAL writer: $out"
wait $RPID || fail "sqlite WAL reader: $(cat "$FL_SHM/reader.out")"
FL_BG=""
out=$(sqlite3 "$M/db/w.db" "PRAGMA integrity_check; SELECT count(*), sum(length(x)) FROM w; PRAGMA wal_checkpoint(TRUNCATE);" 2>&1)
want=$(awk -v n="$WAL_N" 'BEGIN { for (i = 1; i <= n; i++) s += 2 * (i % 300); printf "ok\n%d|%d\n0|0|0\n", n, s }')
[ "$out" = "$want" ] || fail "sqlite WAL: got '$out', want '$want'"
lap

# ---- 4. fio ----------------------------------------------------------------

say "4. fio: psync and mmap, verify=crc32c"
mkdir "$M/fio"
cat > "$FL_SHM/verify.fio" <<EOF
[global]
directory=$M/fio
size=$FIO_SIZE
verify=crc32c
do_verify=1
verify_fatal=1
randrepeat=1
verify_state_save=0

[psync-randwrite]
ioengine=psync
rw=randwrite
bs=4k
numjobs=2

[psync-write-mixed]
stonewall
ioengine=psync
rw=write
bsrange=512-256k

[mmap-randwrite]
stonewall
ioengine=mmap
rw=randwrite
bs=4k

[mmap-write]
stonewall
ioengine=mmap
rw=write
bs=64k
EOF
# run_fio WHAT [ARGS]: fio exits 0, every job says err= 0, no verify error
run_fio() {
	_rf_what=$1
	shift
	_rf=$(cd "$FL_SHM" && timeout $((300 * FL_SLOW)) fio "$@" "$FL_SHM/verify.fio" 2>&1) ||
		fail "$_rf_what: fio exit $?: $(echo "$_rf" | grep -iE 'verify|err|fail|bad' | head -20)"
	echo "$_rf" | grep -iE 'verify.*(fail|bad|mismatch|error)|bad magic|crc32c.*(wanted|mismatch)' &&
		fail "$_rf_what: verify errors"
	_rf_jobs=$(echo "$_rf" | grep -c 'err= *[0-9]')
	_rf_ok=$(echo "$_rf" | grep -c 'err= *0:')
	[ "$_rf_jobs" -eq 5 ] && [ "$_rf_ok" -eq 5 ] ||
		fail "$_rf_what: $_rf_ok of $_rf_jobs jobs report err= 0 (want 5 of 5): $(echo "$_rf" | grep 'err=')"
}
run_fio "fio write and verify"
lap

# ---- 5. fs_mark, dbench ----------------------------------------------------

say "5. fs_mark -n $FSM_N -s 4096 -t 2 (no sync, then fsync before close), dbench"
mkdir "$M/fsm" "$M/fsm2"
out=$(cd "$FL_SHM" && timeout $((300 * FL_SLOW)) fs_mark -d "$M/fsm" -n "$FSM_N" -s 4096 -t 2 -S 0 2>&1) ||
	fail "fs_mark -S 0: $out"
echo "$out" | grep -qE '^ +[0-9]+ +[0-9]+ +4096 ' || fail "fs_mark -S 0: no result line: $out"
out=$(cd "$FL_SHM" && timeout $((300 * FL_SLOW)) fs_mark -d "$M/fsm2" -n $((FSM_N / 4)) -s 16384 -t 2 -S 1 -k 2>&1) ||
	fail "fs_mark -S 1 -k: $out"
n=$(find "$M/fsm2" -type f -size 16384c | wc -l)
[ "$n" -eq $((FSM_N / 4 * 2)) ] || fail "fs_mark -k: $n files of 16384 bytes, want $((FSM_N / 4 * 2))"
rm -r "$M/fsm2" || fail "rm -r of fs_mark's files"
if [ "$DBENCH_T" -gt 0 ]; then
	mkdir "$M/dbench"
	out=$(timeout $((120 * FL_SLOW)) dbench -D "$M/dbench" -t "$DBENCH_T" 2 2>&1) ||
		fail "dbench: $(echo "$out" | tail -20)"
	echo "$out" | grep -q "^Throughput" || fail "dbench: no throughput line: $(echo "$out" | tail)"
	echo "$out" | grep -iE "^\[[0-9]+\] .*(failed|error)|ERROR" && fail "dbench reported errors"
fi
lap

# ---- 6. coreutils and util-linux -------------------------------------------

say "6. coreutils and util-linux"
W=$M/w
mkdir "$W" || fail "mkdir"
# zero_range FILE OFFSET LENGTH: write zeros (to build an expected file)
zero_range() {
	head -c "$3" /dev/zero | dd of="$1" oflag=seek_bytes seek="$2" conv=notrunc status=none
}
# want WHAT GOT EXPECTED
want() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }

printf 'hello, udaxfs\n' > "$W/f"
want "stat of a new file" "$(stat -c '%s %F %h %U %G %a' "$W/f")" "14 regular file 1 root root 644"
case $(stat -f -c %T "$M") in fuse*) ;; *) fail "stat -f: type $(stat -f -c %T "$M")" ;; esac
df "$M" >/dev/null || fail "df of the mount"
chmod 640 "$W/f" && want "chmod 640" "$(stat -c %a "$W/f")" 640
chmod u+x,g+s "$W/f" && want "chmod u+x,g+s" "$(stat -c %a "$W/f")" 2740
chmod 644 "$W/f"
chown 1234:5678 "$W/f" && want "chown 1234:5678" "$(stat -c %u:%g "$W/f")" 1234:5678
chown :99 "$W/f" && want "chown :99" "$(stat -c %u:%g "$W/f")" 1234:99
chown 0:0 "$W/f"
ln -s f "$W/sl" && chown -h 77:88 "$W/sl" &&
	want "chown -h of a symlink" "$(stat -c %u:%g "$W/sl"),$(stat -c %u:%g "$W/f")" "77:88,0:0"
touch -d '2001-02-03 04:05:06.123456789 UTC' "$W/f"
want "touch -d (mtime)" "$(TZ=UTC stat -c %y "$W/f")" "2001-02-03 04:05:06.123456789 +0000"
want "touch -d (atime)" "$(TZ=UTC stat -c %x "$W/f")" "2001-02-03 04:05:06.123456789 +0000"
touch -a -d '1999-01-01 00:00:00 UTC' "$W/f"
want "touch -a" "$(stat -c '%X %Y' "$W/f")" "915148800 981173106"
before=$(stat -c %Z "$W/f")
sleep 1.1
chmod 600 "$W/f"
[ "$(stat -c %Z "$W/f")" -gt "$before" ] || fail "chmod does not change ctime"
touch "$W/f"
[ "$(stat -c %Y "$W/f")" -ge $(($(date +%s) - 5)) ] || fail "touch: mtime is not now: $(stat -c %y "$W/f")"

ln "$W/f" "$W/hard" || fail "ln"
want "ln: link count" "$(stat -c %h "$W/f")" 2
want "ln: one inode" "$(stat -c %i "$W/hard")" "$(stat -c %i "$W/f")"
ln -s ../w/f "$W/soft" || fail "ln -s"
want "ln -s: readlink" "$(readlink "$W/soft")" ../w/f
want "ln -s: read through" "$(cat "$W/soft")" "hello, udaxfs"
want "ln -s: stat -L" "$(stat -L -c %i "$W/soft")" "$(stat -c %i "$W/f")"
ln -s nowhere "$W/dangling" && [ ! -e "$W/dangling" ] && [ -L "$W/dangling" ] || fail "a dangling symlink"
long=$(printf '%0255d' 0)
: > "$W/$long" || fail "a 255-byte name"
 (: > "$W/${long}x") 2>/dev/null && fail "a 256-byte name was accepted"
rm "$W/$long"

# mv: rename over an existing file, across directories, a directory
mkdir -p "$W/a/b/c/d" && [ -d "$W/a/b/c/d" ] || fail "mkdir -p"
echo one > "$W/a/x"
echo two > "$W/a/b/y"
old=$(stat -c %i "$W/a/b/y")
ino=$(stat -c %i "$W/a/x")
mv "$W/a/x" "$W/a/b/y" || fail "mv over an existing file"
want "mv over existing: content" "$(cat "$W/a/b/y")" one
want "mv over existing: inode" "$(stat -c %i "$W/a/b/y")" "$ino"
[ -e "$W/a/x" ] && fail "mv: the old name is still there"
[ "$old" != "$ino" ] || fail "mv: inode numbers"
mv "$W/a/b/y" "$W/a/b/c/d/z" || fail "mv across directories"
want "mv across directories" "$(cat "$W/a/b/c/d/z")" one
mkdir "$W/other"
mv "$W/a/b" "$W/other/" || fail "mv of a directory into another"
want "mv of a directory: content below it" "$(cat "$W/other/b/c/d/z")" one
want "mv of a directory: its .." "$(stat -c %i "$W/other/b/..")" "$(stat -c %i "$W/other")"
want "link count of a directory that lost a subdirectory" "$(stat -c %h "$W/a")" 2
want "link count of a directory that gained one" "$(stat -c %h "$W/other")" 3
mkdir "$W/emptyd"
mv -T "$W/other/b/c" "$W/emptyd" || fail "mv -T of a directory over an empty directory"
want "mv -T over an empty directory" "$(cat "$W/emptyd/d/z")" one
mkdir -p "$W/full/sub"
out=$(mv -T "$W/a" "$W/full" 2>&1) && fail "mv -T over a non-empty directory succeeded"
echo "$out" | grep -q "not empty" || fail "mv -T over a non-empty directory: $out"
out=$(mv "$W/full" "$W/full/sub/" 2>&1) && fail "mv of a directory into itself succeeded"

# rm, rmdir, rm -r
out=$(rmdir "$W/full" 2>&1) && fail "rmdir of a non-empty directory succeeded"
echo "$out" | grep -q "Directory not empty" || fail "rmdir of a non-empty directory: $out"
rmdir "$W/full/sub" "$W/full" || fail "rmdir of empty directories"
rm "$W/hard" && want "rm: link count" "$(stat -c %h "$W/f")" 1
out=$(rm "$W/nonexistent" 2>&1) && fail "rm of a missing file succeeded"
echo "$out" | grep -q "No such file" || fail "rm of a missing file: $out"
cp -a "$SRC/d0" "$W/tree" && rm -r "$W/tree" || fail "rm -r"
[ -e "$W/tree" ] && fail "rm -r: still there"
# a big directory: readdir while it empties
mkdir "$W/big"
(cd "$W/big" && seq 1 3000 | sed 's/^/entry-with-a-longer-name-/' | xargs touch) || fail "3000 creates"
want "ls of a directory of 3000 files" "$(ls "$W/big" | wc -l)" 3000
want "ls -U (readdir order, no duplicates)" "$(ls -U "$W/big" | sort -u | wc -l)" 3000
rm -r "$W/big" || fail "rm -r of 3000 files"

# truncate: grow (zeros), shrink, grow again (no old bytes come back)
head -c 10000 /dev/urandom > "$FL_SHM/r10k"
cp "$FL_SHM/r10k" "$W/t"
truncate -s 20000 "$W/t" && want "truncate grow: size" "$(stat -c %s "$W/t")" 20000
cmp -n 10000 "$W/t" "$FL_SHM/r10k" || fail "truncate grow: the first 10000 bytes changed"
cmp -n 10000 -i 10000:0 "$W/t" /dev/zero || fail "truncate grow: the grown part is not zero"
truncate -s 5000 "$W/t" && want "truncate shrink: size" "$(stat -c %s "$W/t")" 5000
cmp -n 5000 "$W/t" "$FL_SHM/r10k" || fail "truncate shrink: content"
truncate -s 9000 "$W/t"
cmp -n 4000 -i 5000:0 "$W/t" /dev/zero || fail "truncate shrink then grow: old bytes came back past 5000"
truncate -s 0 "$W/t" && want "truncate to 0" "$(stat -c '%s %b' "$W/t")" "0 0"
truncate -s 3G "$W/t" && want "truncate to 3 GiB (a hole, beyond the pool)" "$(stat -c %s "$W/t")" 3221225472
cmp -n 65536 -i 3221159936:0 "$W/t" /dev/zero || fail "the end of a 3 GiB hole is not zero"
rm "$W/t"

# fallocate
fallocate -l 10M "$W/fa" || fail "fallocate -l 10M"
want "fallocate -l: size" "$(stat -c %s "$W/fa")" 10485760
[ "$(stat -c %b "$W/fa")" -ge 20480 ] || fail "fallocate -l: $(stat -c %b "$W/fa") blocks"
cmp -n 10485760 "$W/fa" /dev/zero || fail "fallocate -l: not zero"
fallocate -n -o 10M -l 4M "$W/fa" && want "fallocate -n (keep size)" "$(stat -c %s "$W/fa")" 10485760
head -c 65536 /dev/urandom > "$FL_SHM/r64k"
cp "$FL_SHM/r64k" "$W/ph"
fallocate --punch-hole -o 4096 -l 8192 "$W/ph" || fail "fallocate --punch-hole"
want "punch: size unchanged" "$(stat -c %s "$W/ph")" 65536
cmp -n 4096 "$W/ph" "$FL_SHM/r64k" || fail "punch: the bytes before the hole changed"
cmp -n 8192 -i 4096:0 "$W/ph" /dev/zero || fail "punch: the hole is not zero"
cmp -i 12288:12288 "$W/ph" "$FL_SHM/r64k" || fail "punch: the bytes after the hole changed"
fallocate --punch-hole -o 20000 -l 5000 "$W/ph" || fail "an unaligned punch"
cmp -n 5000 -i 20000:0 "$W/ph" /dev/zero || fail "unaligned punch: not zero"
cmp -n 7712 -i 12288:12288 "$W/ph" "$FL_SHM/r64k" || fail "unaligned punch: the bytes before it changed"
cmp -i 25000:25000 "$W/ph" "$FL_SHM/r64k" || fail "unaligned punch: the bytes after it changed"
fallocate --punch-hole -o 60000 -l 100000 "$W/ph" && want "punch past the end: size" "$(stat -c %s "$W/ph")" 65536
cmp -n 5536 -i 60000:0 "$W/ph" /dev/zero || fail "punch past the end: not zero"
cp "$FL_SHM/r64k" "$FL_SHM/ph_want"
zero_range "$FL_SHM/ph_want" 4096 8192
zero_range "$FL_SHM/ph_want" 20000 5000
zero_range "$FL_SHM/ph_want" 60000 5536
cmp "$W/ph" "$FL_SHM/ph_want" || fail "the file with punched holes, as a whole"

# zero range: done (zeros, size kept) or refused cleanly (file unchanged)
cp "$FL_SHM/r64k" "$W/zr"
if out=$(fallocate -z -o 4096 -l 8192 "$W/zr" 2>&1); then
	cp "$FL_SHM/r64k" "$FL_SHM/zr_want"
	zero_range "$FL_SHM/zr_want" 4096 8192
	cmp "$W/zr" "$FL_SHM/zr_want" || fail "fallocate -z: the content"
else
	echo "$out" | grep -q "Operation not supported" || fail "fallocate -z: $out"
	cmp "$W/zr" "$FL_SHM/r64k" || fail "a refused fallocate -z changed the file"
fi

# programs run from the mount (exec maps the file)
cp /bin/echo "$W/echo" && chmod 755 "$W/echo" || fail "cp of a program"
want "a program run from the mount" "$("$W/echo" ran)" ran
printf '#!/bin/sh\necho script ran\n' > "$W/script" && chmod +x "$W/script"
want "a script run from the mount" "$("$W/script")" "script ran"

# O_DIRECT writes and reads
head -c 1048576 /dev/urandom > "$FL_SHM/r1m"
dd if="$FL_SHM/r1m" of="$W/direct" bs=65536 oflag=direct status=none || fail "dd oflag=direct"
dd if="$W/direct" bs=65536 iflag=direct status=none | cmp - "$FL_SHM/r1m" || fail "O_DIRECT read back"
cmp "$W/direct" "$FL_SHM/r1m" || fail "buffered read after O_DIRECT writes"

# a set-group-ID directory gives its group, and subdirectories its bit
mkdir "$W/sgid" && chown 0:4321 "$W/sgid" && chmod 2775 "$W/sgid"
: > "$W/sgid/file"
mkdir "$W/sgid/sub"
want "set-group-ID directory: the file's group" "$(stat -c %g "$W/sgid/file")" 4321
want "set-group-ID directory: the subdirectory" "$(stat -c '%g %a' "$W/sgid/sub")" "4321 2755"

# far offsets: a write at 100 GiB (a hole before it), truncate to 1 TiB
printf x | dd of="$W/far" bs=1 seek=107374182400 status=none || fail "a write at 100 GiB"
want "a write at 100 GiB: size" "$(stat -c %s "$W/far")" 107374182401
want "a write at 100 GiB: the byte" "$(dd if="$W/far" bs=1 skip=107374182400 count=1 status=none)" x
cmp -n 8192 -i 107374174208:0 "$W/far" /dev/zero || fail "a write at 100 GiB: the hole before it is not zero"
[ "$(stat -c %b "$W/far")" -le 64 ] || fail "a write at 100 GiB takes $(stat -c %b "$W/far") blocks"
truncate -s 1T "$W/far" && want "truncate -s 1T" "$(stat -c %s "$W/far")" 1099511627776
rm "$W/far"

# symlink targets: inline (120 bytes) and not (121, 4095)
for n in 120 121 4095; do
	t=$(printf "%0${n}d" 0 | tr 0 t)
	ln -s "$t" "$W/sl$n" || fail "a symlink with a $n-byte target"
	[ "$(readlink "$W/sl$n")" = "$t" ] || fail "readlink of a $n-byte target"
done

# special files: a fifo works through the mount; device nodes keep their numbers
mkfifo "$W/fifo" && want "mkfifo" "$(stat -c %F "$W/fifo")" fifo
(echo "through the fifo" > "$W/fifo") &
want "a fifo on the mount" "$(timeout 10 cat "$W/fifo")" "through the fifo"
wait $!
mknod "$W/cdev" c 1 3 && want "mknod c" "$(stat -c '%F %t %T' "$W/cdev")" "character special file 1 3"
mknod "$W/bdev" b 7 0 && want "mknod b" "$(stat -c '%F %t %T' "$W/bdev")" "block special file 7 0"

# no extended attributes are stored: a clear EOPNOTSUPP, and cp -a copes
out=$(setfattr -n user.test -v 1 "$W/f" 2>&1) && fail "setfattr succeeded"
echo "$out" | grep -q "Operation not supported" || fail "setfattr: $out"
cp -a "$W/f" "$W/f_copy" || fail "cp -a on the mount"

# sync: fsync of a file and a directory, syncfs
sync "$W/f" "$W" && sync -f "$M" || fail "sync of a file, a directory, the file system"

# statfs follows the space in use
bsz=$(stat -f -c %S "$M")
free0=$(stat -f -c %f "$M")
head -c 10485760 /dev/urandom > "$W/ten"
free1=$(stat -f -c %f "$M")
[ $(((free0 - free1) * bsz)) -ge 10485760 ] || fail "statfs: free went from $free0 to $free1 blocks of $bsz after writing 10 MiB"
rm "$W/ten"
free2=$(stat -f -c %f "$M")
[ "$free2" -ge $((free0 - 8)) ] || fail "statfs: free is $free2 after rm, was $free0 before the write"

# concurrent writers: disjoint regions of one file (the regions share
# blocks: 1000003 bytes each), and separate files, in several rounds
say "6b. concurrent writers"
R=1000003
for k in 0 1 2 3; do head -c $R /dev/urandom > "$FL_SHM/c$k"; done
cat "$FL_SHM/c0" "$FL_SHM/c1" "$FL_SHM/c2" "$FL_SHM/c3" > "$FL_SHM/c_all"
for bs in 4096 65536 1000000 777; do
	pids=""
	for k in 3 1 0 2; do
		dd if="$FL_SHM/c$k" of="$W/shared" bs=$bs oflag=seek_bytes seek=$((k * R)) \
			conv=notrunc status=none &
		pids="$pids $!"
		dd if="$FL_SHM/c$k" of="$W/sep$k" bs=$bs status=none &
		pids="$pids $!"
	done
	for p in $pids; do wait "$p" || fail "concurrent writers (bs=$bs): a dd failed"; done
	cmp "$W/shared" "$FL_SHM/c_all" || fail "concurrent writers (bs=$bs): the shared file differs"
	for k in 0 1 2 3; do
		cmp "$W/sep$k" "$FL_SHM/c$k" || fail "concurrent writers (bs=$bs): sep$k differs"
	done
	rm "$W/shared" "$W/sep0" "$W/sep1" "$W/sep2" "$W/sep3"
done

# O_APPEND from several processes: every line whole, none lost
pids=""
for k in 1 2 3 4; do
	(for i in $(seq 1 300); do echo "writer $k line $i" >> "$W/appended"; done) &
	pids="$pids $!"
done
for p in $pids; do wait "$p" || fail "concurrent appends: a writer failed"; done
want "concurrent appends: lines" "$(wc -l < "$W/appended")" 1200
want "concurrent appends: distinct whole lines" "$(grep -cE '^writer [1-4] line [0-9]+$' "$W/appended")" 1200
want "concurrent appends: no duplicate" "$(sort -u "$W/appended" | wc -l)" 1200

# race_reads WHAT SECONDS: read $W/race (O_DIRECT, from the daemon, and
# through the page cache) again and again while writers run; every byte
# read must be A, B or zero, never another file's (C); the writers' pids
# are in $w1 $w2 and they stop when $FL_SHM/stop appears
race_reads() {
	_rr_end=$(($(date +%s) + $2))
	_rr_n=0
	while [ "$(date +%s)" -lt $_rr_end ]; do
		_rr_n=$((_rr_n + 1))
		_rr=$({ dd if="$W/race" bs=1M iflag=direct count=1 status=none || echo "(dd failed)"; } |
			tr -d 'AB\000' | wc -c)
		[ "$_rr" -eq 0 ] || { touch "$FL_SHM/stop"; fail "$1: read $_rr_n (O_DIRECT): $_rr bytes that are not this file's"; }
		_rr=$({ cat "$W/race" || echo "(cat failed)"; } | tr -d 'AB\000' | wc -c)
		[ "$_rr" -eq 0 ] || { touch "$FL_SHM/stop"; fail "$1: read $_rr_n (cached): $_rr bytes that are not this file's"; }
		fl_pid_gone "$MPID" && { touch "$FL_SHM/stop"; fail "$1: the daemon died: $(cat "$MLOG")"; }
	done
	touch "$FL_SHM/stop"
	for _rr in $w1 $w2; do wait "$_rr" || fail "$1: a writer failed"; done
	FL_BG=""
	echo "   $1: $_rr_n rounds of reads"
}

# reads racing truncate: the file shrinks and grows back (a hole) while
# another file's blocks are freed and reused: a read never shows them
say "6c. reads racing truncate, and racing writes"
for c in A B C; do head -c 1048576 /dev/zero | tr '\0' $c > "$FL_SHM/$c"; done
cp "$FL_SHM/A" "$W/race"
rm -f "$FL_SHM/stop"
(while [ ! -e "$FL_SHM/stop" ]; do
	truncate -s 100000 "$W/race" && truncate -s 1M "$W/race" || exit 1
done) &
w1=$!
(while [ ! -e "$FL_SHM/stop" ]; do cp "$FL_SHM/C" "$W/racer" && rm "$W/racer" || exit 1; done) &
w2=$!
FL_BG="$FL_BG $w1 $w2"
race_reads "reads racing truncate" 3

# reads racing writes over the same blocks (torn reads are allowed, other
# files' bytes are not); under ThreadSanitizer, a reply written from device
# memory while a write copies into it is a race report
rm -f "$FL_SHM/stop"
(while [ ! -e "$FL_SHM/stop" ]; do
	dd if="$FL_SHM/A" of="$W/race" bs=1M conv=notrunc status=none &&
		dd if="$FL_SHM/B" of="$W/race" bs=1M conv=notrunc status=none || exit 1
done) &
w1=$!
(while [ ! -e "$FL_SHM/stop" ]; do
	cp "$FL_SHM/C" "$W/race2" && truncate -s 100000 "$W/race2" && rm "$W/race2" || exit 1
done) &
w2=$!
FL_BG="$FL_BG $w1 $w2"
race_reads "reads racing writes" 2

# an unlinked file that is still open: readable, an orphan until closed
say "6d. an open file kept alive after rm"
cp "$FL_SHM/r64k" "$W/orphan"
want "orphans before" "$(fl_stat_value "$M" orphans)" 0
exec 3<"$W/orphan"
rm "$W/orphan" || fail "rm of an open file"
[ -e "$W/orphan" ] && fail "rm of an open file: the name is still there"
cat <&3 | cmp - "$FL_SHM/r64k" || fail "the unlinked open file does not read back"
st=$(fl_stats "$M")
echo "$st" | grep -qE '^orphans: +1$' || fail "while held: stats do not say 'orphans: 1': $st"
exec 3<&-
i=0
while [ "$(fl_stat_value "$M" orphans)" != 0 ]; do
	i=$((i + 1))
	[ $i -lt $((100 * FL_SLOW)) ] || fail "the orphan is still there 5 s after the close: $(fl_stats "$M")"
	sleep 0.05
done
lap

# ---- the remount: everything again, from the device ------------------------

say "6e. unmount, fsck, remount: inode numbers and all the data again"
(cd "$M" && find . -printf '%i %y %p\n') | LC_ALL=C sort > "$FL_SHM/inodes.before"
fl_umount "$M" "$MPID" "$MLOG"
fl_fsck_clean "$POOL" "after the tools"
fl_mount "$POOL" "$M"
MPID=$FL_PID MLOG=$FL_LOG
(cd "$M" && find . -printf '%i %y %p\n') | LC_ALL=C sort > "$FL_SHM/inodes.after"
same_lists "inode numbers across unmount and remount" "$FL_SHM/inodes.before" "$FL_SHM/inodes.after"
tree_sums "$M/untar" > "$FL_SHM/untar2.sums"
same_lists "after the remount: the tar extraction" "$FL_SHM/src.sums" "$FL_SHM/untar2.sums"
tree_meta "$M/untar" s > "$FL_SHM/untar2.meta_s"
same_lists "after the remount: the extraction's metadata" "$FL_SHM/src.meta_s" "$FL_SHM/untar2.meta_s"
git_ok fsck --full --no-progress
git_ok status --porcelain
[ -z "$_go" ] || fail "after the remount: git status --porcelain: $(echo "$_go" | head)"
want "after the remount: git HEAD" "$(cd "$G" && git rev-parse HEAD)" "$GIT_HEAD"
check_sqlite "after the remount: sqlite"
run_fio "after the remount: fio verify_only" --verify_only=1
cmp "$W/ph" "$FL_SHM/ph_want" || fail "after the remount: the file with punched holes"
cmp "$W/direct" "$FL_SHM/r1m" || fail "after the remount: the O_DIRECT file"
want "after the remount: orphans" "$(fl_stat_value "$M" orphans)" 0
fl_umount "$M" "$MPID" "$MLOG"
fl_fsck_clean "$POOL" "at the end"
lap
echo ok
