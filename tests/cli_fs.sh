#!/bin/sh
# udaxfs mkfs, info and fsck on a pool file: output, exit codes, errors.
set -u
UDAXFS=$1
DIR=$(mktemp -d "${TMPDIR:-/tmp}/udx-cli-XXXXXX")
trap 'rm -rf "$DIR"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
POOL=$DIR/pool

out=$("$UDAXFS" mkfs "$POOL" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "give a size" || fail "mkfs without size: $rc $out"
out=$("$UDAXFS" mkfs "$POOL" --size 64M --label test-label \
	--uuid 11111111-2222-4333-8444-555555555555 2>&1) || fail "mkfs: $out"
echo "$out" | grep -q "11111111-2222-4333-8444-555555555555" || fail "mkfs output: $out"
[ "$(stat -c %s "$POOL")" -eq 67108864 ] || fail "pool size"
[ "$(stat -c %b "$POOL")" -lt 65536 ] || fail "pool not sparse"

out=$("$UDAXFS" mkfs "$POOL" --size 64M 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "already holds udaxfs" || fail "re-mkfs: $rc $out"
"$UDAXFS" mkfs --force "$POOL" -L again >/dev/null || fail "mkfs --force"

out=$("$UDAXFS" info "$POOL") || fail "info"
echo "$out" | grep -q "label: *again" || fail "info label: $out"
echo "$out" | grep -q "state: *clean" || fail "info state: $out"

out=$("$UDAXFS" fsck "$POOL"); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "clean" || fail "fsck clean: $rc $out"

# damage the primary superblock: fsck reports it (4, problems left), fsck
# --repair restores it from the backup (1, all repaired), then clean (0)
printf '\377' | dd of="$POOL" bs=1 seek=200 conv=notrunc 2>/dev/null
out=$("$UDAXFS" fsck "$POOL"); rc=$?
[ $rc -eq 4 ] && echo "$out" | grep -q "primary superblock is damaged" || fail "fsck damaged: $rc $out"
out=$("$UDAXFS" fsck --repair "$POOL"); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "repaired" || fail "fsck repair: $rc $out"
out=$("$UDAXFS" fsck "$POOL"); rc=$?
[ $rc -eq 0 ] || fail "fsck after repair: $rc $out"

# stats: the counters of a mounted (read-only) file system
out=$("$UDAXFS" stats "$POOL") || fail "stats: $out"
echo "$out" | grep -q "^pins: *0 on 0 inodes" || fail "stats pins: $out"
echo "$out" | grep -q "^pgmap references: *1 " || fail "stats pgmap: $out"
"$UDAXFS" stats >/dev/null 2>&1; [ $? -eq 2 ] || fail "stats usage"
"$UDAXFS" stats --help | grep -q "exit codes" || fail "stats --help"

# not udaxfs, missing, bad options
head -c 33554432 /dev/zero > "$DIR/zero"
out=$("$UDAXFS" fsck "$DIR/zero" 2>&1); rc=$?
[ $rc -eq 8 ] && echo "$out" | grep -q "not udaxfs" || fail "fsck foreign: $rc $out"
out=$("$UDAXFS" info "$DIR/zero" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "not udaxfs" || fail "info foreign: $rc $out"
out=$("$UDAXFS" stats "$DIR/zero" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "not udaxfs" || fail "stats foreign: $rc $out"
out=$("$UDAXFS" fsck "$DIR/missing" 2>&1); rc=$?
[ $rc -eq 8 ] && echo "$out" | grep -q "no such file" || fail "fsck missing: $rc $out"
"$UDAXFS" fsck >/dev/null 2>&1; [ $? -eq 16 ] || fail "fsck usage"
"$UDAXFS" mkfs "$POOL" --size nonsense >/dev/null 2>&1; [ $? -eq 2 ] || fail "mkfs bad size"
"$UDAXFS" mkfs "$DIR/p2" --size 4M >/dev/null 2>&1; [ $? -eq 1 ] || fail "mkfs too small"
"$UDAXFS" mkfs "$DIR/p3" --size 64M --uuid xyz >/dev/null 2>&1; [ $? -eq 2 ] || fail "mkfs bad uuid"
"$UDAXFS" info >/dev/null 2>&1; [ $? -eq 2 ] || fail "info usage"
"$UDAXFS" mkfs --help | grep -q "exit codes" || fail "mkfs --help"
"$UDAXFS" fsck --help | grep -q "exit codes" || fail "fsck --help"
echo ok
