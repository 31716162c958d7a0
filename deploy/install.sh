#!/usr/bin/env bash
# Install or uninstall chatd as a systemd service.
#
#   deploy/install.sh install   [--binary PATH] [--destdir DIR] [--enable] [--irc]
#   deploy/install.sh uninstall [--destdir DIR] [--purge]
#
# install: builds chatd in release mode (unless --binary names one already built), then installs
#   /usr/local/bin/chatd                     the daemon (the path chatd.service's ExecStart names)
#   /etc/systemd/system/chatd.{service,socket}, chatd-irc.socket (IRC on port 6667, enabled only with --irc)
#   /etc/chatd/chatd.conf                    the example config, only if there is none yet (else .new beside it)
#   /usr/local/share/doc/chatd/{README,IRC}.md  what the units' Documentation= points at
# and runs `systemctl daemon-reload`. With --enable it also enables and starts chatd.socket (port 12345),
# with --irc also chatd-irc.socket (port 6667); chatd itself starts on the first connection.
# uninstall: stops and disables the units, removes those files and daemon-reloads; the config stays
#   unless --purge.
# --destdir DIR installs into a staging tree (packaging) and touches no running systemd.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
action=${1:-}
[ $# -gt 0 ] && shift
binary= destdir= enable=no irc=no purge=no
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=$2; shift 2 ;;
        --destdir) destdir=${2%/}; shift 2 ;;
        --enable) enable=yes; shift ;;
        --irc) irc=yes; shift ;;
        --purge) purge=yes; shift ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

bin=$destdir/usr/local/bin/chatd
units=$destdir/etc/systemd/system
confdir=$destdir/etc/chatd
docdir=$destdir/usr/local/share/doc/chatd

# Talk to systemd only when installing into the live system and systemd is PID 1 (not in a chroot,
# a build container or a staging tree).
systemd_running() { [ -z "$destdir" ] && [ -d /run/systemd/system ]; }

case "$action" in
install)
    if [ -z "$binary" ]; then
        # The Swift runtime is linked statically: a self-contained binary, and ~3 MiB less RSS per chatd
        # (the shared runtime's pages; see Benchmarks/README.md). Its own build folder keeps .build dynamic.
        echo "== building chatd (release, static Swift runtime)"
        (cd "$repo" && swift build -c release --static-swift-stdlib --scratch-path .build-static --product chatd)
        binary="$(cd "$repo" && swift build -c release --static-swift-stdlib --scratch-path .build-static --show-bin-path)/chatd"
    fi
    [ -x "$binary" ] || { echo "install.sh: $binary is not an executable" >&2; exit 1; }
    echo "== installing into ${destdir:-/}"
    install -D -m 0755 "$binary" "$bin"
    install -D -m 0644 "$here/chatd.service" "$units/chatd.service"
    install -D -m 0644 "$here/chatd.socket" "$units/chatd.socket"
    install -D -m 0644 "$here/chatd-irc.socket" "$units/chatd-irc.socket"
    install -D -m 0644 "$repo/README.md" "$docdir/README.md"
    install -D -m 0644 "$repo/docs/IRC.md" "$docdir/IRC.md"
    # World-readable: the service runs as a dynamic user, which must be able to read it.
    if [ -e "$confdir/chatd.conf" ]; then
        install -D -m 0644 "$here/chatd.conf" "$confdir/chatd.conf.new"
        echo "   kept $confdir/chatd.conf; the example is $confdir/chatd.conf.new"
    else
        install -D -m 0644 "$here/chatd.conf" "$confdir/chatd.conf"
    fi
    if systemd_running; then
        systemctl daemon-reload
        if [ "$enable" = yes ]; then
            systemctl enable --now chatd.socket
            echo "   chatd.socket listens on port 12345; chatd starts on the first connection"
            if [ "$irc" = yes ]; then
                systemctl enable --now chatd-irc.socket
                echo "   chatd-irc.socket listens on port 6667 (IRC)"
            fi
        else
            echo "   start with: systemctl enable --now chatd.socket (and chatd-irc.socket for IRC on 6667)"
        fi
    fi
    ;;
uninstall)
    if systemd_running; then
        systemctl disable --now chatd-irc.socket chatd.socket chatd.service 2>/dev/null || true
    fi
    rm -f "$bin" "$units/chatd.service" "$units/chatd.socket" "$units/chatd-irc.socket"
    rm -rf "$docdir"
    if [ "$purge" = yes ]; then
        rm -rf "$confdir"
    else
        echo "   kept $confdir (remove it with --purge)"
    fi
    if systemd_running; then systemctl daemon-reload; fi
    ;;
*)
    sed -n '2,17s/^# \{0,1\}//p' "$0"
    exit 2
    ;;
esac
