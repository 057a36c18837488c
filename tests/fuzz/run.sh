#!/bin/sh
# Build the libFuzzer harnesses of pop3d with clang (ASan + UBSan) and run
# each for a while.
#
#	sh tests/fuzz/run.sh [SECONDS] [HARNESS ...]
#
# SECONDS defaults to 60 (0 runs each seed corpus once, as a regression
# test); the harnesses are session, stream, passwd, mbox, sasl and cache,
# all of them unless some are named (or listed in $FUZZ_ONLY).
# Everything is built into tests/fuzz/build/, where each harness works on
# a copy of its seed corpus (tests/fuzz/corpus/NAME/) that keeps what it
# finds between runs.  Prints the executions and coverage of each run, and
# exits 1 when a harness found a crash, a leak, a timeout or a mismatch,
# with the path of the input that caused it; 2 when the build failed.
# $FUZZ_CC is the compiler (default clang; libFuzzer comes with it, in
# Debian's libclang-rt-14-dev for clang 14), $FUZZ_TMPDIR where temporary
# files go (default /dev/shm, else /tmp).
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$here/build
secs=${1:-60}
[ $# -gt 0 ] && shift
harnesses=${*:-${FUZZ_ONLY:-session stream passwd mbox sasl cache}}
cc=${FUZZ_CC:-clang}

case $secs in
''|*[!0-9]*)
	echo "usage: sh tests/fuzz/run.sh [SECONDS] [HARNESS ...]" >&2
	exit 64 ;;
esac
for h in $harnesses; do
	if [ ! -f "$here/fuzz_$h.c" ]; then
		echo "run.sh: no harness $h (tests/fuzz/fuzz_$h.c)" >&2
		exit 64
	fi
done

# The project's warnings; -Werror for the harnesses only, as clang may
# warn where gcc, which the project is built with, does not.
warn="-std=c11 -Wall -Wextra -Wshadow -Wconversion -Wpointer-arith \
-Wcast-qual -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
-Wsign-compare -Werror=implicit-function-declaration"
cppflags="-D_DEFAULT_SOURCE -D_XOPEN_SOURCE=700"
san="-fsanitize=address,undefined -fno-sanitize-recover=all \
-fno-omit-frame-pointer"
cflags="-g -O1 $warn $cppflags $san"

mkdir -p "$build/obj" || exit 2

# libFuzzer comes with clang's runtime libraries.
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\n%s\n' \
    'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
    > "$build/obj/probe.c"
if ! $cc -fsanitize=fuzzer,address,undefined -o "$build/obj/probe" \
    "$build/obj/probe.c" >"$build/obj/probe.log" 2>&1; then
	cat "$build/obj/probe.log" >&2
	echo "run.sh: $cc cannot build a libFuzzer binary;" \
	    "on Debian 12: apt-get install clang libclang-rt-14-dev" >&2
	exit 2
fi

# Compile src into obj unless obj is newer than it and every header.
compile() {
	src=$1 obj=$2 extra=$3
	if [ -f "$obj" ] && [ -z "$(find "$src" "$top"/*.h "$here"/*.h \
	    "$here"/../*.h "$0" -newer "$obj" 2>/dev/null)" ]; then
		return 0
	fi
	echo "  CC $(basename "$src")"
	# shellcheck disable=SC2086
	$cc $cflags $extra -c -o "$obj" "$src"
}

# pop3d's objects: $(OBJS) of the Makefile, which the unit tests link too
# (all but pop3d.o, which holds main()).
names=$(awk '/^OBJS[ \t]*=/ { f = 1; sub(/^OBJS[ \t]*=/, "") }
    f { c = sub(/\\$/, ""); printf "%s ", $0; if (!c) exit }' \
    "$top/Makefile")
if [ -z "$names" ]; then
	echo "run.sh: no OBJS in $top/Makefile" >&2
	exit 2
fi

echo "building in $build"
objs=""
for o in $names; do
	name=$(basename "$o" .o)
	compile "$top/$name.c" "$build/obj/$name.o" -fsanitize=fuzzer-no-link ||
	    exit 2
	objs="$objs $build/obj/$name.o"
done
# The harnesses and their references are not instrumented for coverage:
# libFuzzer is guided by pop3d's code alone, and the references run at
# full speed.
compile "$here/fuzz_common.c" "$build/obj/fuzz_common.o" -Werror || exit 2
compile "$here/../ref.c" "$build/obj/ref.o" -Werror || exit 2
for h in $harnesses; do
	compile "$here/fuzz_$h.c" "$build/obj/fuzz_$h.o" -Werror || exit 2
	# shellcheck disable=SC2086
	$cc $san -fsanitize=fuzzer -o "$build/fuzz_$h" "$build/obj/fuzz_$h.o" \
	    "$build/obj/fuzz_common.o" "$build/obj/ref.o" $objs -lcrypt || exit 2
done

# Temporary files (the session's Maildir among them) go to a directory
# made for this run, on tmpfs where there is one, as the session harness
# creates and removes files for each input; it is removed at the end,
# also what a crashed harness left.  As root, that harness serves as
# "nobody" (see fuzz_session.c), so its files, and a crash report written
# meanwhile, must be where "nobody" can write: the reports are moved into
# build/artifacts/NAME/ afterwards.
if [ -z "${FUZZ_TMPDIR:-}" ]; then
	FUZZ_TMPDIR=/tmp
	[ -d /dev/shm ] && [ -w /dev/shm ] && FUZZ_TMPDIR=/dev/shm
fi
run_tmp=$(mktemp -d "$FUZZ_TMPDIR/pop3d-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$run_tmp"' EXIT
trap 'exit 130' INT TERM
chmod 1777 "$run_tmp"
export TMPDIR="$run_tmp"

# Stack traces with function names need llvm-symbolizer (Debian: llvm-14).
if ! command -v llvm-symbolizer >/dev/null 2>&1; then
	for f in /usr/lib/llvm-*/bin/llvm-symbolizer; do
		[ -x "$f" ] && export ASAN_SYMBOLIZER_PATH="$f"
	done
fi

# 0 seconds: run each seed corpus once, as a regression test.
limit="-max_total_time=$secs"
[ "$secs" -eq 0 ] && limit="-runs=0"

failed=0
for h in $harnesses; do
	work=$build/corpus/$h
	art=$build/artifacts/$h
	log=$build/$h.log
	mkdir -p "$work" "$art" || exit 2
	tmpart=$run_tmp/artifacts-$h
	mkdir "$tmpart" && chmod 1777 "$tmpart" || exit 2
	cp "$here/corpus/$h"/* "$work"/ 2>/dev/null
	dict=""
	[ -f "$here/$h.dict" ] && dict="-dict=$here/$h.dict"
	echo "fuzz_$h: $limit"
	# shellcheck disable=SC2086
	(cd "$build" && "./fuzz_$h" $limit -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$tmpart/" $dict "$work") >"$log" 2>&1
	rc=$?
	runs=$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)
	cov=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 |
	    sed -e 's/^#[0-9]*[[:space:]]*[A-Z]*[[:space:]]*//')
	echo "  ${runs:-no final count}"
	echo "  ${cov:-no coverage line}"
	if [ $rc -ne 0 ]; then
		failed=1
		echo "  FAILED (exit $rc); log: $log"
		grep -E 'ERROR: |SUMMARY: |check failed: ' "$log" |
		    sed 's/^/  /'
	fi
	for f in "$tmpart"/*; do
		[ -f "$f" ] || continue
		mv "$f" "$art/" && echo "  input: $art/$(basename "$f")"
	done
done
exit $failed
