#!/bin/sh
# The udaxfs command: the demo runs on the default device, and bad devices
# and bad command lines get a message and the documented exit code.
set -u
UDAXFS=$1
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$UDAXFS" demo 2>&1) || fail "demo on the default device: $out"
echo "$out" | grep -q "teardown returned after" || fail "demo output: $out"
# part two: pins and the inode as arbiter
for want in "open by name: gone (ENOENT); through the pin: \"stored through the pin\"" \
	    "unmount while pinned: refused (EBUSY)" \
	    "the waiting unmount returned after the unpin: ok" \
	    "truncate that may not wait: refused (EBUSY)" \
	    "truncate that waits: done" \
	    "recall callback\] device removal" \
	    "a read now: refused (ENXIO)" \
	    "unmount: ok; recalls: 2"; do
	echo "$out" | grep -q "$want" || fail "demo: no '$want' in: $out"
done

out=$("$UDAXFS" demo /nonexistent/pool 2>&1); rc=$?
[ $rc -eq 1 ] || fail "missing device: exit $rc"
echo "$out" | grep -q "no such file" || fail "missing device message: $out"

out=$("$UDAXFS" demo anon:0 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "zero" || fail "anon:0: exit $rc: $out"

out=$("$UDAXFS" demo / 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "directory" || fail "directory: exit $rc: $out"

out=$("$UDAXFS" nosuchcommand 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "unknown command" || fail "bad command: exit $rc"
"$UDAXFS" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no command: not exit 2"
"$UDAXFS" demo a b >/dev/null 2>&1; [ $? -eq 2 ] || fail "too many args: not exit 2"
"$UDAXFS" help demo | grep -q "usage: udaxfs demo" || fail "help demo"
"$UDAXFS" demo --help | grep -q "exit codes" || fail "demo --help"
echo ok
