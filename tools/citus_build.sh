#!/usr/bin/env bash
# Builds and installs Citus from ../shared/vendor/ (source tarball + PostgreSQL 15.18 patch) when
# the server has no citus.so. No registry reachable here packages Citus for PostgreSQL 15, hence
# the build from source; the recipe is the vendor README's. Takes ~8 minutes on 2 cores.
#
#   tools/citus_build.sh [VENDOR_DIR]     (make citus; VENDOR_DIR defaults to ../shared/vendor)
#
# Does nothing when citus.so is installed already. Must run as root (apt-get, make install).
set -euo pipefail

version=13.2.2
pg_config=${PG_CONFIG:-pg_config}
here=$(cd "$(dirname "$0")/.." && pwd)
vendor=$(cd "${1:-${CITUS_VENDOR:-$here/../shared/vendor}}" && pwd)
pkglibdir=$("$pg_config" --pkglibdir)
major=$("$pg_config" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')

if [ -e "$pkglibdir/citus.so" ]; then
    echo "Citus is installed already ($pkglibdir/citus.so)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "Citus is not installed ($pkglibdir/citus.so is missing) and building it needs root" >&2
    echo "(apt-get for the build dependencies, make install into $pkglibdir)." >&2
    echo "Run: sudo make citus" >&2
    exit 1
fi
tarball=$vendor/citus-$version.tar.gz
patchfile=$vendor/citus-$version-pg15.18.patch
for f in "$tarball" "$patchfile"; do
    [ -r "$f" ] || { echo "Citus source missing: $f" >&2; exit 1; }
done

packages=(postgresql-server-dev-"$major" libcurl4-openssl-dev liblz4-dev libzstd-dev
    libkrb5-dev libssl-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

# A fresh directory each time: a half-finished earlier build must not leak into this one.
build=$(mktemp -d /tmp/citus-build-XXXXXX)
trap 'rm -rf "$build"' EXIT
echo "Building Citus $version in $build (minutes; log in $build/build.log until it ends)"
start=$(date +%s)
tar xzf "$tarball" -C "$build"
cd "$build/citus-$version"
# The patch replaces Citus's own copy of have_createdb_privilege() by the server's declaration,
# which only some PostgreSQL 15 builds have (Debian's 15.18 does not): apply it where the
# server's header declares the function, or the build fails either way.
if grep -q have_createdb_privilege "$("$pg_config" --includedir-server)/commands/dbcommands.h"; then
    patch -s -p1 < "$patchfile"
else
    echo "Not applying $(basename "$patchfile"): this server's commands/dbcommands.h does not declare have_createdb_privilege()"
fi
# The build shares the machine: nice keeps it from starving benchmarks and tests running beside it.
{
    ./configure --without-libcurl PG_CONFIG="$pg_config"
    nice -n 10 make -j"$(nproc)"
    make install
} > "$build/build.log" 2>&1 || { tail -n 40 "$build/build.log" >&2; exit 1; }
echo "Installed Citus $version into $pkglibdir in $(( $(date +%s) - start ))s"
