#!/bin/sh
# percpu-info: the kernel's boot report to the byte, --help, and bad values.
# Usage: test_percpu_info.sh [EMULATOR ARGS...] PATH-TO-percpu-info
set -u
bin="$*"	# word-split on use: an emulator prefix (qemu) may come first
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

err() { echo "FAIL: $*" >&2; fail=1; }

# expect_output NAME EXPECTED-FILE ARGS...: exit 0, exact stdout, empty stderr
expect_output() {
	name=$1 want=$2
	shift 2
	$bin "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc -eq 0 ] || err "$name: exit $rc"
	cmp -s "$tmp/out" "$want" || { err "$name: output differs"; diff "$want" "$tmp/out" >&2; }
	[ -s "$tmp/err" ] && err "$name: unexpected stderr: $(cat "$tmp/err")"
}

# expect_usage_error NAME PREFIX ARGS...: exit 2, one stderr line starting with PREFIX, no stdout
expect_usage_error() {
	name=$1 prefix=$2
	shift 2
	$bin "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc -eq 2 ] || err "$name: exit $rc, want 2"
	[ "$(wc -l <"$tmp/err")" -eq 1 ] || err "$name: stderr is not one line: $(cat "$tmp/err")"
	case $(cat "$tmp/err") in
	"$prefix"*) ;;
	*) err "$name: stderr '$(cat "$tmp/err")' does not start with '$prefix'" ;;
	esac
	[ -s "$tmp/out" ] && err "$name: unexpected stdout"
}

cat >"$tmp/boot16" <<'END'
percpu: Embedded 55 pages/cpu s185048 r8192 d32040 u262144
pcpu-alloc: s185048 r8192 d32040 u262144 alloc=1*2097152
pcpu-alloc: [0] 00 01 02 03 04 05 06 07 [0] 08 09 10 11 12 13 14 15
END
expect_output "16 cpus" "$tmp/boot16" --cpus 16 --static 185048 --reserved 8192 --dynamic 28672 --atom 2M
expect_output "16 cpus, K suffix" "$tmp/boot16" --cpus 0-15 --static 185048 --reserved 8K --dynamic 28K --atom 2048K

cat >"$tmp/up" <<'END'
pcpu-alloc: s0 r0 d32768 u32768 alloc=1*32768
pcpu-alloc: [0] 0
END
expect_output "up" "$tmp/up" --up

# 10 CPUs on 3 uneven nodes: the padding units print as dashes.
cat >"$tmp/nodes3" <<'END'
percpu: Embedded 9 pages/cpu s0 r8192 d28672 u524288
pcpu-alloc: s0 r8192 d28672 u524288 alloc=1*2097152
pcpu-alloc: [0] 00 01 02 03 [1] 04 05 06 07
pcpu-alloc: [2] 08 09 -- --
END
expect_output "3 nodes" "$tmp/nodes3" --cpus 10 --nodes '0-3;4-7;8-9' --reserved 8192 --dynamic 28672 --atom 2M

$bin --help >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || err "--help: exit $rc"
for opt in --cpus --nodes --static --reserved --dynamic --atom --up --stats --help; do
	grep -q -- "$opt" "$tmp/out" || err "--help does not document $opt"
done
[ -s "$tmp/err" ] && err "--help wrote to stderr"

expect_usage_error "bad atom" "percpu-info: invalid value for --atom: '3000': " --atom 3000
expect_usage_error "bad size" "percpu-info: invalid value for --static: '12Q': " --static 12Q
expect_usage_error "bad reserved" "percpu-info: invalid value for --reserved: '6': " --reserved 6
expect_usage_error "bad cpus" "percpu-info: invalid value for --cpus: '3-1': " --cpus 3-1
expect_usage_error "bad nodes" "percpu-info: invalid value for --nodes: '0-3': " --cpus 8 --nodes 0-3
expect_usage_error "unknown option" "percpu-info: " --no-such-option
expect_usage_error "missing value" "percpu-info: " --cpus

[ $fail -eq 0 ] && echo "test_percpu_info: ok"
exit $fail
