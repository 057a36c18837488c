#!/bin/sh
# make demo: seed a fresh demo Maildir (user demo, password demo) and
# serve it on 127.0.0.1:1110 with the first launcher found: tcpserver,
# socat or systemd-socket-activate.  Without one, the session runs right
# here in the terminal: type USER demo, PASS demo, LIST, RETR 1, QUIT.
set -e

top=$(cd "$(dirname "$0")/.." && pwd)
pop3d="$top/pop3d"
dir=${DEMO_DIR:-/tmp/pop3d-demo}
port=${DEMO_PORT:-1110}

# pop3d never serves mail as root: as root, the demo mail belongs to a
# system user made for it.
if [ "$(id -u)" -eq 0 ]; then
	id pop3demo >/dev/null 2>&1 ||
	    useradd --system --no-create-home --shell /usr/sbin/nologin pop3demo
	uid=$(id -u pop3demo)
	gid=$(id -g pop3demo)
else
	uid=$(id -u)
	gid=$(id -g)
fi

rm -rf "$dir"
mkdir -p "$dir/Maildir/cur" "$dir/Maildir/new" "$dir/Maildir/tmp"
chmod 755 "$dir"
printf 'demo:{PLAIN}demo:%s:%s::%s::\n' "$uid" "$gid" "$dir" > "$dir/users"
chmod 600 "$dir/users"

n=0
for subject in "Welcome to pop3d" "Lunch on Friday?" "Your weekly report"; do
	n=$((n + 1))
	cat > "$dir/Maildir/new/170000000$n.M${n}P100.demo" <<MSG
From: pop3d demo <demo@example.org>
To: demo@example.org
Subject: $subject
Date: Tue, 14 Nov 2023 22:13:2$n +0000
Message-ID: <demo$n@example.org>

This is demo message $n.
.A line that starts with a dot is sent as "..A" and read back as ".A".

Try: LIST, UIDL, TOP $n 0, RETR $n, DELE $n, RSET, QUIT.
MSG
done
[ "$(id -u)" -eq 0 ] && chown -R "$uid:$gid" "$dir/Maildir"

set -- "$pop3d" -u "$dir/users" -m "maildir:%h/Maildir" --log stderr \
    --fail-delay 200
echo "demo mailbox: $dir/Maildir (user demo, password demo)"
if command -v tcpserver >/dev/null 2>&1; then
	echo "serving on 127.0.0.1:$port with tcpserver; Ctrl-C stops."
	echo "try: curl -u demo:demo pop3://127.0.0.1:$port/1"
	echo " or: telnet 127.0.0.1 $port"
	exec tcpserver -v -R -H 127.0.0.1 "$port" "$@"
elif command -v socat >/dev/null 2>&1; then
	echo "serving on 127.0.0.1:$port with socat; Ctrl-C stops."
	echo "try: curl -u demo:demo pop3://127.0.0.1:$port/1"
	exec socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
	    "EXEC:$pop3d -u $dir/users -m maildir:%h/Maildir --log stderr"
elif command -v systemd-socket-activate >/dev/null 2>&1; then
	echo "serving on 127.0.0.1:$port with systemd-socket-activate;" \
	    "Ctrl-C stops."
	echo "try: curl -u demo:demo pop3://127.0.0.1:$port/1"
	exec systemd-socket-activate --inetd -a -l "127.0.0.1:$port" "$@"
fi
echo "no launcher found: this terminal is the POP3 session."
echo "type: USER demo, PASS demo, LIST, RETR 1, QUIT"
exec "$@"
