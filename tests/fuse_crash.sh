#!/bin/sh
# The mount's daemon dies or is told to stop:
#   7. kill -9 of the daemon in the middle of a write load (files written and
#      fsynced, written and renamed into place, appends, removals, each
#      acknowledged operation logged outside the mount), in several rounds
#      on one pool, with unlogged churn (cp -r, mv, rm -r, fs_mark) to keep
#      transactions in flight: the dead mount is unmounted lazily, fsck
#      (read-only) sees only what recovery repairs and does not write the
#      pool, the remount recovers, every acknowledged operation is there,
#      and after a clean unmount fsck is clean
#   10. the foreground mode: SIGINT, SIGTERM and SIGHUP end it with 0, leave
#      no mount behind and a clean file system, also while a file on the
#      mount is open (and unlinked: an orphan the exit frees)
# usage: fuse_crash.sh PATH/TO/udaxfs
set -u
. "$(dirname "$0")/fuse_lib.sh"
fl_init crash "${1:-}"

POOL=$FL_SHM/pool
M=$FL_TMP/mnt
ACK=$FL_SHM/acked.log           # outside the mount
RND=$FL_SHM/random
mkdir "$M"
if [ -n "$FL_SAN" ]; then ROUNDS=1 MIN_ACKS=20; else ROUNDS=3 MIN_ACKS=60; fi

fl_mkfs "$POOL" --size 256M --inodes 131072
head -c 4194304 /dev/urandom > "$RND"
mkdir "$FL_SHM/small"
head -c 200000 /dev/urandom | split -b 2000 - "$FL_SHM/small/f"
: > "$ACK"

# The load: each operation is logged only after it returned success.
#   "f NAME SHA256"  NAME holds these bytes (written with conv=fsync; every
#                    fourth one written to a temporary name, fsynced, then
#                    renamed into place)
#   "rm? NAME"       NAME is being removed (may be there or not)
#   "rm NAME"        NAME was removed
#   "app N"          the append file holds lines 1..N (at least)
writer() {
	_i=$1
	_app=$2
	while [ ! -e "$FL_SHM/stop" ]; do
		_i=$((_i + 1))
		_off=$(((_i * 7919) % 3000000))
		_len=$(((_i * 104729) % 150000 + 1))
		_f=w/f$_i
		if [ $((_i % 4)) -eq 0 ]; then
			dd if="$RND" of="$M/w/tmp.$_i" bs=65536 iflag=skip_bytes,count_bytes \
				skip=$_off count=$_len conv=fsync status=none 2>/dev/null || break
			mv "$M/w/tmp.$_i" "$M/$_f" 2>/dev/null || break
		else
			dd if="$RND" of="$M/$_f" bs=65536 iflag=skip_bytes,count_bytes \
				skip=$_off count=$_len conv=fsync status=none 2>/dev/null || break
		fi
		_sum=$(dd if="$RND" bs=65536 iflag=skip_bytes,count_bytes skip=$_off \
			count=$_len status=none | sha256sum)
		echo "f $_f ${_sum%% *}" >> "$ACK"
		if [ $((_i % 5)) -eq 0 ] && [ -e "$M/w/f$((_i - 3))" ]; then
			echo "rm? w/f$((_i - 3))" >> "$ACK"
			rm "$M/w/f$((_i - 3))" 2>/dev/null || break
			echo "rm w/f$((_i - 3))" >> "$ACK"
		fi
		_app=$((_app + 1))
		echo "line $_app" | dd of="$M/w/append" oflag=append conv=notrunc,fsync \
			status=none 2>/dev/null || break
		echo "app $_app" >> "$ACK"
	done
}

# churn: metadata and data operations that are not logged, so that the kill
# finds transactions in flight (copies of a small tree, renames, removals)
churn() {
	_c=0
	while [ ! -e "$FL_SHM/stop" ]; do
		_c=$((_c + 1))
		cp -r "$FL_SHM/small" "$M/churn/n$_c" 2>/dev/null || break
		mv "$M/churn/n$_c" "$M/churn/m$_c" 2>/dev/null || break
		rm -rf "$M/churn/m$((_c - 2))" 2>/dev/null || break
	done
}

# check_acked: every acknowledged operation is on the mount
check_acked() {
	# the last word on each name wins: a checksum, "-" (removed), or
	# "?checksum" (a removal that was not acknowledged: either way)
	awk '$1 == "f" { state[$2] = $3 } $1 == "rm?" { state[$2] = "?" state[$2] }
	     $1 == "rm" { state[$2] = "-" }
	     END { for (n in state) print n, state[n] }' "$ACK" | LC_ALL=C sort > "$FL_SHM/state"
	awk '$2 != "-" && $2 !~ /^\?/ { print $2 "  " $1 }' "$FL_SHM/state" > "$FL_SHM/want.sums"
	awk '$2 ~ /^\?/ { print substr($2, 2) "  " $1 }' "$FL_SHM/state" | while read -r _s _n; do
		[ -e "$M/$_n" ] || continue
		[ "$(sha256sum < "$M/$_n")" = "$_s  -" ] || echo "$_n"
	done > "$FL_SHM/maybe.bad"
	[ -s "$FL_SHM/maybe.bad" ] && fail "$1: files whose removal was cut short differ: $(cat "$FL_SHM/maybe.bad")"
	_ca=$(cd "$M" && sha256sum -c --quiet "$FL_SHM/want.sums" 2>&1) ||
		fail "$1: acknowledged files are missing or differ:
$(echo "$_ca" | head -20)"
	for _n in $(awk '$2 == "-" { print $1 }' "$FL_SHM/state"); do
		[ -e "$M/$_n" ] && fail "$1: $_n was removed (acknowledged) but is there"
	done
	_app=$(awk '$1 == "app" { n = $2 } END { print n + 0 }' "$ACK")
	if [ "$_app" -gt 0 ]; then
		_have=$(wc -l < "$M/w/append")
		[ "$_have" -ge "$_app" ] || fail "$1: the append file has $_have lines, $_app were acknowledged"
		seq 1 "$_have" | sed 's/^/line /' | cmp -s - "$M/w/append" ||
			fail "$1: the append file is not the lines 1..$_have; its end: $(tail -c 64 "$M/w/append" | od -c)"
	fi
	echo "   $1: $(wc -l < "$FL_SHM/want.sums") files and $_app appends acknowledged, all there"
}

# ---- 7. kill -9 in the middle of the load --------------------------------

next=0
round=1
while [ $round -le $ROUNDS ]; do
	say "7. round $round: kill -9 of the daemon under a write load"
	fl_mount "$POOL" "$M"
	DPID=$FL_PID DLOG=$FL_LOG
	[ $round -eq 1 ] && mkdir "$M/w" "$M/churn"
	[ $round -gt 1 ] && check_acked "round $round, before the load"
	rm -f "$FL_SHM/stop"
	app=0
	[ -e "$M/w/append" ] && app=$(wc -l < "$M/w/append")
	writer "$next" "$app" &
	WPID=$!
	churn &
	CPID=$!
	# and many small creates, writes and unlinks in threads (not logged)
	mkdir -p "$M/fsm$round"
	(cd "$FL_SHM" && exec fs_mark -d "$M/fsm$round" -n 1000 -s 512 -t 2 -S 0 -L 100000) >/dev/null 2>&1 &
	FPID=$!
	FL_BG="$FL_BG $WPID $CPID $FPID"
	# wait for some acknowledged operations (a few more each round, so
	# that the kill lands at different points)
	start=$(wc -l < "$ACK")
	i=0
	while [ $(($(wc -l < "$ACK") - start)) -lt $((MIN_ACKS + 7 * round)) ]; do
		i=$((i + 1))
		[ $i -lt $((600 * FL_SLOW)) ] || fail "round $round: the writer acknowledged only $(($(wc -l < "$ACK") - start)) operations in $((30 * FL_SLOW)) s"
		fl_pid_gone "$WPID" && fail "round $round: the writer stopped early (an operation failed)"
		sleep 0.05
	done
	kill -KILL "$DPID" || fail "kill -9 $DPID"
	fl_wait_gone "$DPID" 10 || fail "the killed daemon $DPID is still there"
	wait "$DPID" 2>/dev/null
	rc=$?
	[ $rc -eq 137 ] || fail "the killed daemon exited $rc (want 137, SIGKILL)"
	fl_daemon_log_check "$DLOG" "round $round (before the kill)"
	# the writer's next operation fails (ENOTCONN) and it stops
	fl_wait_gone "$WPID" 10 || { kill -KILL "$WPID"; fail "the writer did not stop after the kill"; }
	wait "$WPID"
	fl_wait_gone "$CPID" 10 || { kill -KILL "$CPID"; fail "the churn did not stop after the kill"; }
	wait "$CPID"
	fl_wait_gone "$FPID" 10 || { kill -KILL "$FPID"; fail "fs_mark did not stop after the kill"; }
	wait "$FPID"
	FL_BG=""
	next=$(awk '$1 == "f" { sub("w/f", "", $2); if ($2 + 0 > n) n = $2 + 0 } END { print n + 1000 }' "$ACK")
	out=$(fusermount3 -u -z "$M" 2>&1) || fail "fusermount3 -u -z of the dead mount: $out"
	fl_is_mounted "$M" && fail "the dead mount is still in /proc/mounts"
	fl_untrack "$M"

	# fsck before the remount (read-only, for information): it may find
	# what recovery repairs (unfinished transactions and what they half
	# changed; orphans: files unlinked while the kernel still held them),
	# nothing else when no transaction was in flight; it must not write
	# the pool, nor say it repaired anything
	sum_before=$(sha256sum < "$POOL")
	out=$(timeout $((120 * FL_SLOW)) "$UDAXFS" fsck "$POOL" 2>&1)
	rc=$?
	echo "   fsck after the kill: exit $rc: $(echo "$out" | tr '\n' ';' | cut -c1-300)"
	case $rc in
	0) ;;
	4)
		# with transactions in flight, fsck sees their half-made changes
		# (recovery rolls them back); without, only orphans may be left
		if ! echo "$out" | grep -q "unfinished transactions"; then
			other=$(echo "$out" | grep '^  ' | grep -vE "an orphan")
			[ -z "$other" ] || fail "round $round: fsck after the kill, with no transaction in flight, finds damage: $other"
		fi
		;;
	1) fail "round $round: fsck without --repair says it repaired: $out" ;;
	*) fail "round $round: fsck after the kill: exit $rc: $out" ;;
	esac
	[ "$(sha256sum < "$POOL")" = "$sum_before" ] || fail "round $round: fsck without --repair changed the pool"
	info=$("$UDAXFS" info "$POOL" 2>&1) || fail "info after the kill: $info"

	# the remount recovers; everything acknowledged is there
	fl_mount "$POOL" "$M"
	DPID=$FL_PID DLOG=$FL_LOG
	check_acked "round $round, after the remount"
	o=$(fl_stat_value "$M" orphans)
	[ "$o" = 0 ] || fail "round $round: $o orphans after the remount"
	# what the unlogged load left: it goes (and the space with it)
	rm -rf "$M/fsm$round" "$M/churn" && mkdir "$M/churn" || fail "round $round: rm -rf of the load's files"
	# the file system works: write, read, remove
	head -c 300000 /dev/urandom > "$FL_SHM/after"
	cp "$FL_SHM/after" "$M/after" && cmp "$M/after" "$FL_SHM/after" && rm "$M/after" ||
		fail "round $round: I/O after the recovery"
	fl_umount "$M" "$DPID" "$DLOG"
	fl_fsck_clean "$POOL" "round $round: after the recovery and a clean unmount"
	round=$((round + 1))
done

# ---- 10. foreground mode and signals ---------------------------------------

for sig in INT TERM HUP; do
	say "10. udaxfs mount -f, then SIG$sig"
	fl_mount "$POOL" "$M"
	DPID=$FL_PID DLOG=$FL_LOG
	echo "before SIG$sig" > "$M/sig.$sig" || fail "write before SIG$sig"
	kill -"$sig" "$DPID"
	fl_wait_daemon "$DPID" "$DLOG" "SIG$sig to the foreground daemon"
	fl_is_mounted "$M" && fail "SIG$sig: the mount is still in /proc/mounts"
	fl_untrack "$M"
	fl_fsck_clean "$POOL" "after SIG$sig"
done

say "10. SIGINT while an unlinked file on the mount is open"
fl_mount "$POOL" "$M"
DPID=$FL_PID DLOG=$FL_LOG
head -c 100000 /dev/urandom > "$M/held"
cat "$M/sig.INT" | grep -q "before SIGINT" || fail "a file written before SIGINT is gone"
exec 4<"$M/held"                # held open by this shell
rm "$M/held"
i=0
until [ "$(fl_stat_value "$M" orphans)" = 1 ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "no orphan while an unlinked file is held: $(fl_stats "$M")"
	sleep 0.05
done
kill -INT "$DPID"
fl_wait_daemon "$DPID" "$DLOG" "SIGINT with an open unlinked file"
fl_is_mounted "$M" && fail "SIGINT with an open file: the mount is still in /proc/mounts"
fl_untrack "$M"
exec 4<&-
fl_fsck_clean "$POOL" "after SIGINT with an open unlinked file (the orphan is freed)"
echo ok
