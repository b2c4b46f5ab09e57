#!/bin/sh
# Usage: check_exports.sh LIBRARY SONAME MIN
# Fails unless every dynamic symbol LIBRARY defines is public API (bl_ but
# not bl__), at least MIN of them are exported, its SONAME is SONAME and it
# does not ask for an executable stack.
set -eu
lib=$1 soname=$2 min=$3

syms=$(nm -D --defined-only "$lib" | awk '{print $NF}')
bad=$(printf '%s\n' "$syms" | grep -v -e '^bl_' -e '^$' || true)
internal=$(printf '%s\n' "$syms" | grep '^bl__' || true)
count=$(printf '%s\n' "$syms" | grep -c '^bl_[^_]' || true)
status=0
if [ -n "$bad" ]; then
    echo "exported, but not bl_ names:"
    printf '%s\n' "$bad" | sed 's/^/  /'
    status=1
fi
if [ -n "$internal" ]; then
    echo "internal bl__ names exported:"
    printf '%s\n' "$internal" | sed 's/^/  /'
    status=1
fi
if [ "$count" -lt "$min" ]; then
    echo "only $count bl_ symbols exported (expected at least $min)"
    status=1
fi
got=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
if [ "$got" != "$soname" ]; then
    echo "SONAME is '$got', expected '$soname'"
    status=1
fi
if readelf -lW "$lib" | grep -q 'GNU_STACK.* RWE'; then
    echo "asks for an executable stack"
    status=1
fi
[ "$status" = 0 ] && echo "$lib: $count bl_ symbols exported, nothing else; SONAME $got"
exit "$status"
