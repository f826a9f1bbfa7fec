#!/bin/bash
# Build the kernel's sample mdev drivers (samples/vfio-mdev: mtty, mdpy, mbochs) out of tree
# for kernel RELEASE, from Debian's linux-source-6.1 tarball and linux-headers-amd64.
# Debian's config leaves CONFIG_SAMPLE_VFIO_MDEV_* unset, so our own Kbuild names the objects.
#
# usage: build-mdev-samples.sh OUTDIR RELEASE
# Writes OUTDIR/{mtty,mdpy,mbochs}.ko; a second run with the .ko files present does nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/common.sh
. "$here/common.sh"
GVTG_RK_PACKAGES="$GVTG_RK_PACKAGES linux-headers-amd64 linux-source-6.1 make xz-utils"

[ $# -eq 2 ] || { printf 'usage: %s OUTDIR RELEASE\n' "$0" >&2; exit 2; }
out=$1
rel=$2
mods="mtty mdpy mbochs"

done_all=1
for m in $mods; do [ -f "$out/$m.ko" ] || done_all=0; done
if [ "$done_all" = 1 ]; then
    printf 'realkernel: sample mdev drivers cached in %s\n' "$out" >&2
    exit 0
fi

tarball=/usr/src/linux-source-6.1.tar.xz
[ -f "$tarball" ] || rk_missing "$tarball not found (package linux-source-6.1)"
[ -d "/lib/modules/$rel/build" ] || rk_missing "/lib/modules/$rel/build not found (package linux-headers-amd64 for kernel $rel)"
make=$(rk_find_prog make) || rk_missing "make not found (package make)"
rk_find_prog xz >/dev/null || rk_missing "xz not found (package xz-utils)"

work="$out/src"
rm -rf "$work"
mkdir -p "$work"
tar -xJf "$tarball" -C "$work" linux-source-6.1/samples/vfio-mdev/
src="$work/linux-source-6.1/samples/vfio-mdev"
printf 'obj-m := mtty.o mdpy.o mbochs.o\n' >"$src/Kbuild"
rm -f "$src/Makefile"
"$make" -s -C "/lib/modules/$rel/build" M="$src" modules >"$out/build.log" 2>&1 ||
    rk_die "building the sample mdev drivers failed; see $out/build.log"
for m in $mods; do
    cp "$src/$m.ko" "$out/$m.ko"
done
printf 'realkernel: built %s for %s in %s\n' "$mods" "$rel" "$out" >&2
