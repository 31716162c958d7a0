#!/usr/bin/env bash
# Real IRC clients against chatd's IRC front: irssi 1.4 (in tmux) and weechat-headless 3.8 talk with a native
# `chat`-protocol client in #lobby; every step is checked on what the receiving side shows, and the screens
# and logs are printed. The script lives with its helpers in scripts/irc/ (README.md there); bounded in time.
exec bash "$(dirname "$0")/../irc/clients.sh" "$@"
