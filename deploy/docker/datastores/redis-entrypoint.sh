#!/bin/sh
# SPDX-License-Identifier: MIT
# redis-entrypoint.sh — entrypoint of the TEST STAND-IN for the official redis image
# (Dockerfile.redis; used only where Docker Hub is unreachable).
# Like the official docker-entrypoint.sh: a first argument that is an option or a .conf file
# means redis-server; umask 0077 when the default 0022 is in effect. The official image's
# redis-server is built with protected-mode off by default, Debian's is not: protected mode
# would refuse every client from another container (the ACL file's default user has no
# password), so `--protected-mode no` is put in front of the given options, which can still
# turn it on again.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
    shift
    if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then # a config file first: it stays first
        conf=$1
        shift
        set -- redis-server "$conf" --protected-mode no "$@"
    else
        set -- redis-server --protected-mode no "$@"
    fi
fi
if [ "$(umask)" = 0022 ]; then
    umask 0077
fi
exec "$@"
