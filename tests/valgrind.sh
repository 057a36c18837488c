#!/bin/sh
# make check-valgrind: the end-to-end tests with every pop3d process under
# valgrind memcheck, then the Check unit tests under it.
#
# The tests run a wrapper in place of pop3d that execs valgrind on the real
# binary (same pid, same arguments), one log per process, named after
# the test that started it.  Afterwards every log is read: any memcheck
# error fails the run (invalid reads and writes, use of uninitialised
# values, bad frees, bad syscall arguments), and so does memory definitely
# lost at exit, except in a process ended by a signal (the tests kill
# pop3d on purpose).  The errors are listed with their stacks and the
# tests that caused them.  Tests that measure pop3d's memory or time
# relax or skip that part under valgrind (pop3test.UNDER_VALGRIND).
#
# Usage: sh tests/valgrind.sh [e2e.py options, e.g. -k PATTERN]
# Environment: POP3D (the binary, default ./pop3d); VALGRIND_OPTS (more
# valgrind options); JOBS=1 (one e2e.py, not two halves at once);
# CHECK_UNIT=0 (no unit tests); VALGRIND_KEEP=1 (keep the logs).
set -e

top=$(cd "$(dirname "$0")/.." && pwd)
pop3d=$(cd "$top" && realpath "${POP3D:-pop3d}")
python=${PYTHON:-python3}
if ! valgrind=$(command -v valgrind); then
	echo "check-valgrind: valgrind is not installed" >&2
	exit 1
fi
if [ ! -x "$pop3d" ]; then
	echo "check-valgrind: no executable pop3d at $pop3d" >&2
	exit 1
fi

# memcheck: errors are fatal (status 99 on a normal exit, which the tests
# that check pop3d's exit status notice at once); leaks count when
# definite.  --track-origins=yes in VALGRIND_OPTS tells where an
# uninitialised value came from, at twice the cost.
opts="--tool=memcheck --vgdb=no --leak-check=full \
--show-leak-kinds=definite --errors-for-leak-kinds=definite \
--error-exitcode=99 --num-callers=30 ${VALGRIND_OPTS:-}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/pop3d-valgrind.XXXXXX")
chmod 755 "$dir"

# e2e NAME [e2e.py options]: e2e.py with the wrapper for pop3d, its logs
# in $dir/NAME.  pop3d also runs as the mail user (checkpassword's
# subprogram), and valgrind opens its log as whoever starts it: the
# directory is 1777.  e2e.py writes each test's name to NAME/test before
# the test starts.
e2e() {
	d=$dir/$1
	shift
	mkdir "$d"
	chmod 1777 "$d"
	echo none > "$d/test"
	chmod 644 "$d/test"
	# The pid is valgrind's %p; the log of a pop3d forked off may have
	# its name already (checkpassword's subprogram runs in the process
	# that pop3d forked), hence the number after it.
	cat > "$d/pop3d" <<-EOF
	#!/bin/sh
	t=
	read -r t < '$d/test' || :
	log='$d'/\${t:-none} n=1 x=
	while [ -e "\$log.\$\$\$x.log" ]; do
	    n=\$((n + 1)) x=-\$n
	done
	exec '$valgrind' $opts --log-file="\$log.%p\$x.log" '$pop3d' "\$@"
	EOF
	chmod 755 "$d/pop3d"
	POP3D_VALGRIND_DIR=$d "$python" "$top/tests/e2e.py" --pop3d "$d/pop3d" \
	    "$@"
}

# The unit tests in one process (CK_FORK=no: twice as fast, and no
# per-test timeout to trip); the processes they fork log on their own.
unit() {
	[ "${CHECK_UNIT:-1}" != 0 ] || return 0
	mkdir "$dir/unit"
	# shellcheck disable=SC2086
	(cd "$top/tests" && CK_FORK=no "$valgrind" $opts \
	    --log-file="$dir/unit/check_pop3d.%p.log" ./check_pop3d)
}

status=0
start=$(date +%s)
if [ $# -gt 0 ] || [ "${JOBS:-2}" = 1 ]; then
	e2e all "$@" || status=1
	if [ $# -eq 0 ]; then
		unit || status=1
	fi
else
	# Two halves at once, a core each (valgrind runs a process on one):
	# half of the e2e test classes and the unit tests; the other half.
	# The mail user is made first, not by both at once.
	"$python" -c 'import sys; sys.path.insert(0, sys.argv[1])
import pop3test; pop3test.mail_identity()' "$top/tests"
	(st=0
	e2e a --shard 1/2 || st=1
	unit || st=1
	exit $st) > "$dir/a.out" 2>&1 &
	a=$!
	e2e b --shard 2/2 > "$dir/b.out" 2>&1 &
	b=$!
	wait "$a" || status=1
	wait "$b" || status=1
	cat "$dir/a.out" "$dir/b.out"
fi
echo "check-valgrind: the tests took $(($(date +%s) - start)) s"

"$python" - "$dir" <<'EOF' || status=1
"""Read every valgrind log under the directory (one a process); list the
errors, grouped by stack, with the tests that caused them.  Exit 1 if
there is any."""
import collections
import glob
import os
import re
import sys

# Blocks that are no error: valgrind's own preamble and summaries.
INFO = re.compile(r'Memcheck, a memory error detector|HEAP SUMMARY:|'
                  r'LEAK SUMMARY:|All heap blocks were freed|For (lists|counts)'
                  r' of detected|ERROR SUMMARY:|Reachable blocks|To see them|'
                  r'Use --track-origins|Rerun with')
LEAK = re.compile(r'[\d,]+ (\([^)]*\) )?bytes in [\d,]+ blocks are '
                  r'definitely lost')
FATAL = re.compile(r'Process terminating with default action of signal '
                   r'\d+ \((\w+)\)')
# A process ended by one of these crashed: that is an error.
CRASHES = {'SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT', 'SIGSYS'}
SUMMARY = re.compile(r'ERROR SUMMARY: ([\d,]+) errors')

errors = collections.OrderedDict()
notes = collections.OrderedDict()
nlogs = 0


def report(block):
    """The block without addresses, as the key that groups errors."""
    out = []
    for line in block:
        line = re.sub(r'0x[0-9A-Fa-f]+: ', '', line)
        line = re.sub(r'\(in /\S*/([^/)]+)\)', r'(\1)', line)
        line = re.sub(r'Address 0x[0-9A-Fa-f]+', 'Address', line)
        out.append('  ' + line)
    return '\n'.join(out)


for path in sorted(glob.glob(os.path.join(sys.argv[1], '*', '*.log'))):
    nlogs += 1
    test, _, pid = os.path.basename(path)[:-len('.log')].rpartition('.')
    with open(path, errors='replace') as f:
        lines = [re.sub(r'^(==|--|\*\*)\d+(==|--|\*\*) ?', '', l.rstrip('\n'))
                 for l in f]
    blocks, cur = [], []
    for line in lines + ['']:
        if line.strip():
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    found, leaks, signalled, summary = [], [], False, 0
    for block in blocks:
        head = block[0]
        for line in block:
            m = SUMMARY.match(line)
            if m:
                summary = int(m.group(1).replace(',', ''))
        m = FATAL.match(head)
        if m:
            signalled = True
            if m.group(1) in CRASHES:
                found.append(block)
        elif LEAK.match(head):
            leaks.append([LEAK.sub('N bytes in N blocks are definitely lost',
                                   re.sub(r' in loss record.*', '', head))]
                         + block[1:])
        elif INFO.match(head):
            continue
        elif re.match(r'(?i)warning:', head):
            notes.setdefault(head, test)
        else:
            found.append(block)
    # Memory held when a signal ended the process is no leak.
    if not signalled:
        found += leaks
    if summary and not found and not signalled:
        found.append(['ERROR SUMMARY: %d errors, not understood here: see %s'
                      % (summary, path)])
    for block in found:
        errors.setdefault(report(block), []).append('%s (pid %s)'
                                                    % (test, pid))

for line, test in notes.items():
    print('check-valgrind: %s (%s)' % (line, test))
for key, where in errors.items():
    tests = sorted(set(where))
    print('\ncheck-valgrind: ERROR\n%s' % key)
    print('  in %d process(es): %s%s' % (len(where), ', '.join(tests[:8]),
                                         ' ...' if len(tests) > 8 else ''))
print('check-valgrind: %d processes checked, %d distinct errors'
      % (nlogs, len(errors)))
sys.exit(1 if errors else 0)
EOF

if [ "$status" -eq 0 ] && [ "${VALGRIND_KEEP:-0}" = 0 ]; then
	rm -rf "$dir"
else
	echo "check-valgrind: logs in $dir"
fi
exit "$status"
