# Shared helpers of the FUSE mount tests (tests/fuse_*.sh), sourced by them:
#
#   . "$(dirname "$0")/fuse_lib.sh"
#   fl_init NAME UDAXFS_BINARY
#
# fl_init makes the private temp dirs ($FL_SHM under /dev/shm for pools,
# logs and source trees; $FL_TMP under /tmp for mount points), sets a trap
# that unmounts only the mounts made here and ends only the daemons started
# here, and exits 77 with "SKIP: ..." when FUSE cannot be used at all.
#
# Daemons run in the foreground mode as children of the script (fl_mount),
# so their pid and exit status are known and their stderr is kept in a log
# that is searched for sanitizer reports; the forking mode is used where it
# is the thing under test (fl_find_daemon finds that daemon's pid).
#
# POSIX sh only (no local, no arrays): helper variables start with _ and the
# name of their function.

fail() { echo "FAIL: $*" >&2; exit 1; }
# A check that fails for a known bug (named in the message): it prints
# FAIL-KNOWN and the script goes on; it never passes silently.
fail_known() { echo "FAIL-KNOWN: $*" >&2; FL_KNOWN=$((FL_KNOWN + 1)); }
say() { echo "-- $*"; }
now_ms() { date +%s%3N; }

fl_skip() { echo "SKIP: $* (the FUSE mount tests cannot run here)" >&2; exit 77; }

# fl_is_mounted DIR: DIR is a mount point in /proc/mounts (no stat of DIR,
# which would hang on a dead FUSE mount)
fl_is_mounted() {
	awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}

# fl_mount_line DIR: DIR's line in /proc/mounts (the last one)
fl_mount_line() {
	awk -v m="$1" '$2 == m { line = $0 } END { if (line != "") print line }' /proc/mounts
}

# fl_pid_gone PID: the process has exited (gone, or a zombie not yet waited for)
fl_pid_gone() {
	[ -e "/proc/$1" ] || return 0
	_fpg=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
	[ "$_fpg" = Z ] || [ -z "$_fpg" ]
}

# fl_wait_gone PID SECONDS: wait for PID to exit; 1 when it is still there
fl_wait_gone() {
	_fwg_end=$(($(date +%s) + $2))
	while ! fl_pid_gone "$1"; do
		[ "$(date +%s)" -ge "$_fwg_end" ] && return 1
		sleep 0.05
	done
	return 0
}

# fl_pid_serves PID MNT: PID is a udaxfs process with MNT on its command line
fl_pid_serves() {
	[ -r "/proc/$1/cmdline" ] || return 1
	tr '\0' '\n' < "/proc/$1/cmdline" 2>/dev/null | awk -v m="$2" '
		NR == 1 { if ($0 !~ /udaxfs/) exit 1 }
		$0 == m { found = 1 }
		END { exit !found }'
}

# fl_find_daemon MNT: print the pid of the udaxfs daemon serving MNT (a
# forking mount, started by `udaxfs mount`, mount(8) or the helper)
fl_find_daemon() {
	_ffd=""
	for _ffd_p in /proc/[0-9]*; do
		_ffd_p=${_ffd_p#/proc/}
		[ "$_ffd_p" = "$$" ] && continue
		fl_pid_serves "$_ffd_p" "$1" && _ffd="$_ffd $_ffd_p"
	done
	set -- $_ffd
	[ $# -eq 1 ] || { echo "daemons for $1: '$_ffd'" >&2; return 1; }
	echo "$1"
}

# fl_track MNT [PID]: clean these up at exit (PID: a daemon serving MNT)
fl_track() {
	FL_MOUNTS="$FL_MOUNTS $1"
	[ -n "${2:-}" ] && FL_PIDS="$FL_PIDS $2:$1"
	return 0
}

# fl_untrack MNT: MNT and its daemon are gone; stop tracking them
fl_untrack() {
	_fu_m=""
	for _fu in $FL_MOUNTS; do [ "$_fu" = "$1" ] || _fu_m="$_fu_m $_fu"; done
	FL_MOUNTS=$_fu_m
	_fu_m=""
	for _fu in $FL_PIDS; do [ "${_fu#*:}" = "$1" ] || _fu_m="$_fu_m $_fu"; done
	FL_PIDS=$_fu_m
}

fl_cleanup() {
	_fc_rc=$?
	trap - EXIT INT TERM HUP
	for _fc in $FL_MOUNTS; do
		if fl_is_mounted "$_fc"; then
			echo "cleanup: unmounting $_fc" >&2
			fusermount3 -u -z "$_fc" 2>/dev/null || umount -l "$_fc" 2>/dev/null
		fi
	done
	for _fc in $FL_PIDS; do
		_fc_pid=${_fc%%:*}
		# after the unmount the daemon ends by itself; if not, TERM
		fl_wait_gone "$_fc_pid" $((15 * FL_SLOW))
		if ! fl_pid_gone "$_fc_pid" && fl_pid_serves "$_fc_pid" "${_fc#*:}"; then
			echo "cleanup: ending daemon $_fc_pid (${_fc#*:})" >&2
			kill -TERM "$_fc_pid" 2>/dev/null
			fl_wait_gone "$_fc_pid" 10 || kill -KILL "$_fc_pid" 2>/dev/null
		fi
	done
	for _fc in $FL_BG; do
		kill -KILL "$_fc" 2>/dev/null
	done
	if [ -n "${FL_SHM:-}" ] && ls "$FL_SHM"/sanitizer.* >/dev/null 2>&1; then
		cat "$FL_SHM"/sanitizer.* >&2
		echo "FAIL: a sanitizer report (above)" >&2
		_fc_rc=1
	fi
	[ -n "${FL_SHM:-}" ] && rm -rf --one-file-system "$FL_SHM"
	[ -n "${FL_TMP:-}" ] && rm -rf --one-file-system "$FL_TMP"
	if [ "$_fc_rc" -eq 0 ] && [ "${FL_KNOWN:-0}" -gt 0 ]; then
		echo "ok, with $FL_KNOWN known failure(s) (FAIL-KNOWN above)"
	fi
	exit "$_fc_rc"
}

# fl_san_check WHAT: no sanitizer report from any udaxfs process so far
fl_san_check() {
	for _fsc in "$FL_SHM"/sanitizer.*; do
		[ -e "$_fsc" ] || continue
		cat "$FL_SHM"/sanitizer.* >&2
		fail "$1: a sanitizer report (above)"
	done
}

# fl_daemon_log_check LOG WHAT: no sanitizer report in a daemon's stderr
# (nor in the sanitizer's own files)
fl_daemon_log_check() {
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|runtime error:' "$1"; then
		cat "$1" >&2
		fail "$2: the daemon's log has a sanitizer report (above)"
	fi
	fl_san_check "$2"
}

# fl_mkfs POOL [ARGS]: make a file system on a new pool file
fl_mkfs() {
	_fm_pool=$1
	shift
	_fm_out=$("$UDAXFS" mkfs "$_fm_pool" "$@" 2>&1) || fail "mkfs $_fm_pool $*: $_fm_out"
}

# fl_fsck_clean POOL WHAT: fsck exits 0 and says clean
fl_fsck_clean() {
	_ffc_out=$(timeout $((60 * FL_SLOW)) "$UDAXFS" fsck "$1" 2>&1)
	_ffc_rc=$?
	[ $_ffc_rc -eq 0 ] && echo "$_ffc_out" | grep -q ": clean$" ||
		fail "$2: fsck $1 exit $_ffc_rc (want 0, clean): $_ffc_out"
}

# fl_wait_mounted MNT PID SECONDS: wait until MNT is mounted; 1 if PID ends
# first or the time runs out
fl_wait_mounted() {
	_fwm_end=$(($(date +%s) + $3))
	while ! fl_is_mounted "$1"; do
		[ -n "$2" ] && fl_pid_gone "$2" && return 1
		[ "$(date +%s)" -ge "$_fwm_end" ] && return 1
		sleep 0.02
	done
	return 0
}

# fl_mount POOL MNT [OPTIONS...]: `udaxfs mount -f POOL MNT OPTIONS` as a
# background child (SIGINT restored to the default, which a non-interactive
# shell ignores for `&` lists: libfuse only catches signals that are not
# ignored); waits for the mount.  Sets FL_PID (the daemon) and FL_LOG (its
# stderr).
fl_mount() {
	_fmt_pool=$1 _fmt_mnt=$2
	shift 2
	FL_NLOG=$((FL_NLOG + 1))
	FL_LOG=$FL_SHM/daemon.$FL_NLOG.log
	env --default-signal=INT "$UDAXFS" mount -f "$_fmt_pool" "$_fmt_mnt" "$@" 2>"$FL_LOG" &
	FL_PID=$!
	fl_track "$_fmt_mnt" "$FL_PID"
	if ! fl_wait_mounted "$_fmt_mnt" "$FL_PID" $((30 * FL_SLOW)); then
		cat "$FL_LOG" >&2
		fail "mount -f $_fmt_pool $_fmt_mnt $*: not mounted (daemon $FL_PID: $(fl_pid_gone "$FL_PID" && echo exited || echo running))"
	fi
}

# fl_wait_daemon PID LOG WHAT: wait for a daemon started by fl_mount to end
# and check it ended with 0 and without sanitizer reports
fl_wait_daemon() {
	fl_wait_gone "$1" $((60 * FL_SLOW)) || fail "$3: daemon $1 still runs $((60 * FL_SLOW)) s after the unmount"
	wait "$1"
	_fwd_rc=$?
	if [ $_fwd_rc -ne 0 ]; then
		cat "$2" >&2
		fail "$3: daemon $1 exited $_fwd_rc (want 0)"
	fi
	fl_daemon_log_check "$2" "$3"
}

# fl_umount MNT PID LOG: umount, the daemon exits 0, the mount is gone
fl_umount() {
	_fum_out=$(timeout $((60 * FL_SLOW)) umount "$1" 2>&1) || fail "umount $1: $_fum_out"
	fl_wait_daemon "$2" "$3" "umount $1"
	fl_is_mounted "$1" && fail "umount $1: still in /proc/mounts"
	fl_untrack "$1"
}

# fl_stats MNT: the counters of a mounted file system (`udaxfs stats
# MOUNTPOINT`, which asks the daemon through an ioctl on the root)
fl_stats() {
	"$UDAXFS" stats "$1" 2>&1
}

# fl_stat_value MNT NAME: one counter ("orphans" -> its first number)
fl_stat_value() {
	fl_stats "$1" | awk -v n="$2:" '$1 == n { print $2 }'
}

fl_init() {
	FL_NAME=$1
	UDAXFS=$2
	FL_MOUNTS="" FL_PIDS="" FL_BG="" FL_NLOG=0 FL_KNOWN=0 FL_SHM="" FL_TMP=""
	[ -x "$UDAXFS" ] || fail "usage: $0 PATH/TO/udaxfs ('$UDAXFS' is not executable)"
	case $UDAXFS in /*) ;; *) UDAXFS=$(pwd)/$UDAXFS ;; esac
	# a sanitized build is several times slower: smaller runs, longer waits
	FL_SAN=""
	grep -qa __asan_init "$UDAXFS" && FL_SAN=asan
	grep -qa __tsan_init "$UDAXFS" && FL_SAN=tsan
	FL_SLOW=1
	[ -n "$FL_SAN" ] && FL_SLOW=4

	[ -e /dev/fuse ] || fl_skip "/dev/fuse is missing"
	[ -c /dev/fuse ] || fl_skip "/dev/fuse is not a character device"
	(: <>/dev/fuse) 2>/dev/null || fl_skip "/dev/fuse cannot be opened"
	if [ "$(id -u)" -ne 0 ] && ! command -v fusermount3 >/dev/null; then
		fl_skip "not root and no fusermount3"
	fi
	env --default-signal=INT true 2>/dev/null || fail "env --default-signal is missing (coreutils 8.31 or later)"

	trap fl_cleanup EXIT
	trap 'exit 1' INT TERM HUP
	FL_SHM=$(mktemp -d /dev/shm/udx-"$FL_NAME"-XXXXXX) || fail "mktemp in /dev/shm"
	FL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/udx-$FL_NAME-XXXXXX") || fail "mktemp in /tmp"
	FL_TMP=$(realpath "$FL_TMP")
	FL_SHM=$(realpath "$FL_SHM")
	# sanitizer reports of every udaxfs process, the forked daemons (whose
	# stderr is /dev/null) included, go to files: fl_san_check looks
	if [ -n "$FL_SAN" ]; then
		export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$FL_SHM/sanitizer"
		export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$FL_SHM/sanitizer"
		export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$FL_SHM/sanitizer"
	fi

	# can this process mount FUSE at all?  (a container without the
	# capability, a kernel without fuse: skip; anything else is a failure)
	fl_mkfs "$FL_SHM/probe.pool" --size 16M
	mkdir "$FL_TMP/probe"
	env --default-signal=INT "$UDAXFS" mount -f "$FL_SHM/probe.pool" "$FL_TMP/probe" \
		2>"$FL_SHM/probe.log" &
	_fi_pid=$!
	fl_track "$FL_TMP/probe" "$_fi_pid"
	if ! fl_wait_mounted "$FL_TMP/probe" "$_fi_pid" $((30 * FL_SLOW)); then
		if grep -qiE "not permitted|permission denied|no such device|fusermount" "$FL_SHM/probe.log"; then
			fl_skip "mounting is not permitted: $(cat "$FL_SHM/probe.log")"
		fi
		cat "$FL_SHM/probe.log" >&2
		fail "the first mount failed"
	fi
	fl_umount "$FL_TMP/probe" "$_fi_pid" "$FL_SHM/probe.log"
	rm -f "$FL_SHM/probe.pool" "$FL_SHM/probe.log"
	rmdir "$FL_TMP/probe"
	echo "$FL_NAME: $UDAXFS${FL_SAN:+ ($FL_SAN build: smaller runs)}; pools in $FL_SHM, mounts in $FL_TMP"
}
