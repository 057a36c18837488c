#!/bin/sh
# Install what "make check" needs when it is missing (Debian, as root):
# a C compiler, Check and pkg-config for the unit tests, libcrypt, and
# python3, curl and the launchers (tcpserver, socat, xinetd, s6,
# systemd-socket-activate, stunnel, haproxy) and fail2ban-regex for the
# end-to-end tests.
set -e

missing=""
pkg-config --exists check 2>/dev/null || missing="$missing check pkg-config"
[ -e /usr/include/crypt.h ] || missing="$missing libcrypt-dev"
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
command -v make >/dev/null 2>&1 || missing="$missing make"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
command -v tcpserver >/dev/null 2>&1 || missing="$missing ucspi-tcp-ipv6"
command -v socat >/dev/null 2>&1 || missing="$missing socat"
command -v useradd >/dev/null 2>&1 || missing="$missing passwd"
command -v xinetd >/dev/null 2>&1 || missing="$missing xinetd"
command -v stunnel >/dev/null 2>&1 || missing="$missing stunnel4"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v s6-supervise >/dev/null 2>&1 || missing="$missing s6"
command -v haproxy >/dev/null 2>&1 || missing="$missing haproxy"
command -v systemd-socket-activate >/dev/null 2>&1 || missing="$missing systemd"
command -v fail2ban-regex >/dev/null 2>&1 || missing="$missing fail2ban"

[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "make check needs:$missing (install them, e.g. with apt-get)" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
