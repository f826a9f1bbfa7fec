#!/bin/bash
# Build the busybox initramfs that boots a real Debian kernel under QEMU and
# runs `gvtg doctor` / `gvtg modinfo kvmgt` inside it.
#
# usage: mkinitramfs.sh OUT.cpio.gz GVTG_BINARY [RELEASE]
#
# RELEASE defaults to $GVTG_TEST_KERNEL_RELEASE, else the first /lib/modules/REL
# that has modules.dep and a matching /boot/vmlinuz-REL.
#
# Optional environment (all unset for the doctor test):
#   GVTG_RK_MODULES    modules to load instead of the default list (their
#                      dependencies come from modprobe --show-depends)
#   GVTG_RK_SHIP       modules copied with their dependencies but not loaded
#                      (for modprobe inside the guest: busybox's reads modules.dep)
#   GVTG_RK_EXTRA_KO   space-separated out-of-tree .ko files, insmod'ed after
#                      the modules, in the order given (kmod does not know them)
#   GVTG_RK_EXTRA_BIN  space-separated extra programs copied to /usr/bin with
#                      their shared libraries (scripts/bench: mdevctl, hyperfine)
#   GVTG_RK_TESTS      a shell fragment that /init sources instead of running
#                      the doctor/modinfo commands; it may use run NAME CMD...
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/common.sh
. "$here/common.sh"

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    printf 'usage: %s OUT.cpio.gz GVTG_BINARY [RELEASE]\n' "$0" >&2
    exit 2
fi
out=$1
gvtg_bin=$2
rel=${3:-}
if [ -z "$rel" ]; then
    rel=$(rk_release) || rk_missing "no kernel found: no /lib/modules/REL with modules.dep and /boot/vmlinuz-REL"
fi
rk_check_release "$rel"

if [ ! -f "$gvtg_bin" ] || [ ! -x "$gvtg_bin" ]; then
    rk_die "gvtg binary '$gvtg_bin' is not an executable file"
fi

busybox=/bin/busybox
[ -x "$busybox" ] || busybox=$(rk_find_prog busybox) || rk_missing "busybox not found (/bin/busybox)"
modprobe=$(rk_find_prog modprobe) || rk_missing "modprobe (kmod) not found"
cpio=$(rk_find_prog cpio) || rk_missing "cpio not found"
gzip=$(rk_find_prog gzip) || rk_die "gzip not found"
ldd=$(rk_find_prog ldd) || rk_die "ldd (libc-bin) not found"

# Modules the test loads, in this order; kvm_intel is expected to fail under TCG.
modules=${GVTG_RK_MODULES:-"kvm kvm_intel vfio vfio_iommu_type1 mdev i915 kvmgt"}

stage=$(mktemp -d "${TMPDIR:-/tmp}/gvtg-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc/libvirt/qemu,etc/gvtg-test,boot,var/log}
chmod 1777 "$stage/tmp"

# Copy FILE to the same absolute path inside the staging root.
copy_same_path() {
    local src=$1 dst
    dst="$stage$src"
    mkdir -p "$(dirname "$dst")"
    cp -L "$src" "$dst"
}

# Copy the shared libraries (and the dynamic loader) a program needs, at the
# paths ldd reports. A static program needs none.
copy_libs() {
    local prog=$1 line lib
    if ! "$ldd" "$prog" >/dev/null 2>&1; then
        return 0 # "not a dynamic executable"
    fi
    while IFS= read -r line; do
        lib=
        case "$line" in
            *'=> not found'*) rk_die "$prog needs a library that is not installed: $line" ;;
            *'=> /'*) lib=${line#*=> }; lib=${lib%% (*} ;;
            [[:space:]]/*) lib=${line#"${line%%[![:space:]]*}"}; lib=${lib%% (*} ;;
        esac
        if [ -n "$lib" ] && [ -e "$lib" ]; then
            copy_same_path "$lib"
        fi
    done < <("$ldd" "$prog")
}

# --- busybox ---------------------------------------------------------------
cp -L "$busybox" "$stage/bin/busybox"
chmod 755 "$stage/bin/busybox"
copy_libs "$busybox"

# --- gvtg ------------------------------------------------------------------
cp -L "$gvtg_bin" "$stage/usr/bin/gvtg"
chmod 755 "$stage/usr/bin/gvtg"
# A debug build carries hundreds of MB of DWARF; strip the copy (not the
# original) so the guest unpacks it quickly under TCG.
if strip=$(rk_find_prog strip); then
    "$strip" --strip-debug "$stage/usr/bin/gvtg" 2>/dev/null || true
fi
copy_libs "$gvtg_bin"

# --- kernel modules (dependency order computed on the host by kmod) --------
moddir=/lib/modules/$rel
: >"$stage/etc/gvtg-test/modules.list"
seen=" "
for m in $modules; do
    deps=$("$modprobe" --show-depends -S "$rel" "$m" 2>&1) ||
        rk_missing "modprobe --show-depends -S $rel $m failed: $deps"
    while read -r verb path _rest; do
        case "$verb" in
            insmod) ;;
            builtin) continue ;;
            *) continue ;;
        esac
        case "$seen" in *" $path "*) continue ;; esac
        seen="$seen$path "
        [ -f "$path" ] || rk_missing "module file $path is missing"
        copy_same_path "$path"
        printf '%s\n' "$path" >>"$stage/etc/gvtg-test/modules.list"
    done <<<"$deps"
done
# Shipped only: the files, and no modules.list line; a later modprobe loads them.
for m in ${GVTG_RK_SHIP:-}; do
    deps=$("$modprobe" --show-depends -S "$rel" "$m" 2>&1) ||
        rk_missing "modprobe --show-depends -S $rel $m failed: $deps"
    while read -r verb path _rest; do
        [ "$verb" = insmod ] || continue
        [ -f "$path" ] || rk_missing "module file $path is missing"
        [ -f "$stage$path" ] || copy_same_path "$path"
    done <<<"$deps"
done
for ko in ${GVTG_RK_EXTRA_KO:-}; do
    [ -f "$ko" ] || rk_die "extra module $ko not found"
    mkdir -p "$stage$moddir/extra"
    cp -L "$ko" "$stage$moddir/extra/"
    printf '%s\n' "$moddir/extra/$(basename "$ko")" >>"$stage/etc/gvtg-test/modules.list"
done
# Extra programs (GVTG_RK_EXTRA_BIN, space-separated paths, e.g. mdevctl and hyperfine for scripts/bench),
# copied to /usr/bin with their shared libraries.
for prog in ${GVTG_RK_EXTRA_BIN:-}; do
    [ -x "$prog" ] || rk_die "extra program $prog not found"
    cp -L "$prog" "$stage/usr/bin/$(basename "$prog")"
    copy_libs "$prog"
done
if [ -n "${GVTG_RK_TESTS:-}" ]; then
    [ -f "$GVTG_RK_TESTS" ] || rk_die "test fragment $GVTG_RK_TESTS not found"
    cp "$GVTG_RK_TESTS" "$stage/etc/gvtg-test/tests.sh"
fi
for f in modules.dep modules.builtin modules.builtin.modinfo modules.alias modules.order modules.softdep modules.devname; do
    if [ -f "$moddir/$f" ]; then
        copy_same_path "$moddir/$f"
    fi
done
for f in modules.dep modules.builtin; do
    [ -f "$stage$moddir/$f" ] || rk_missing "$moddir/$f is missing"
done
if [ -f "/boot/config-$rel" ]; then
    copy_same_path "/boot/config-$rel"
fi
printf '%s\n' "$rel" >"$stage/etc/gvtg-test/release"

# --- /etc ------------------------------------------------------------------
if [ -f /etc/os-release ]; then
    cp -L /etc/os-release "$stage/etc/os-release"
elif [ -f /usr/lib/os-release ]; then
    cp -L /usr/lib/os-release "$stage/etc/os-release"
fi
cat >"$stage/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
libvirt-qemu:x:64055:108:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin
PASSWD
cat >"$stage/etc/group" <<'GROUP'
root:x:0:
kvm:x:108:libvirt-qemu
libvirt:x:109:
libvirt-qemu:x:64055:libvirt-qemu
GROUP
cat >"$stage/etc/libvirt/qemu.conf" <<'QEMUCONF'
# Master configuration file for the QEMU driver.
# All settings described here are optional - if omitted, sensible
# defaults are used.
#
# The user for QEMU processes run by the system instance. It can be
# specified as a user name or as a user id.
#
#user = "libvirt-qemu"
#group = "libvirt-qemu"
#
# Whether libvirt should dynamically change file ownership
#dynamic_ownership = 1
#
# If you need to allow access to additional devices:
#cgroup_device_acl = [
#    "/dev/null", "/dev/full", "/dev/zero",
#    "/dev/random", "/dev/urandom",
#    "/dev/ptmx", "/dev/kvm",
#    "/dev/rtc","/dev/hpet"
#]
#
# Use seccomp syscall sandbox in QEMU.
#seccomp_sandbox = 1
QEMUCONF
printf 'gvtg-realkernel\n' >"$stage/etc/hostname"

# --- /init -----------------------------------------------------------------
cat >"$stage/init" <<'INIT'
#!/bin/busybox sh
# /init of the gvtg real-kernel test initramfs. Whatever fails, it prints
# every marker pair and powers the VM off.
/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C
umask 022

# Last-resort watchdog: never leave the VM running.
(sleep "${GVTG_WATCHDOG:-150}"; printf '\n=====GVTG-WATCHDOG-FIRED=====\n'; poweroff -f) &

printf '=====GVTG-INIT-START=====\n'
printf 'kernel %s\n' "$(uname -r)"

# Parameters given on the kernel command line as MOD.param=value (as kmod's
# modprobe applies them; busybox insmod does not).
cmdline_params() {
    want=$1
    # shellcheck disable=SC2013 # the command line is one line of words
    for w in $(cat /proc/cmdline); do
        case "$w" in
            *.*=*)
                m=${w%%.*}
                m=$(printf '%s' "$m" | tr '-' '_')
                if [ "$m" = "$want" ]; then
                    printf '%s ' "${w#*.}"
                fi
                ;;
        esac
    done
}

printf '=====GVTG-INSMOD-BEGIN=====\n'
while read -r path; do
    [ -n "$path" ] || continue
    name=$(basename "$path" .ko | tr '-' '_')
    if [ -d "/sys/module/$name/sections" ] || grep -q "^$name " /proc/modules 2>/dev/null; then
        printf 'insmod %s: already loaded\n' "$name"
        continue
    fi
    params=$(cmdline_params "$name")
    # shellcheck disable=SC2086
    if err=$(insmod "$path" $params 2>&1); then
        printf 'insmod %s %s: ok\n' "$name" "$params"
    else
        printf 'insmod %s %s: FAILED: %s\n' "$name" "$params" "$err"
    fi
done </etc/gvtg-test/modules.list
printf '=====GVTG-INSMOD-END===== (uptime %s)\n' "$(cut -d' ' -f1 /proc/uptime)"
printf 'lsmod: %s\n' "$(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
printf 'iommu units: %s\n' "$(cd /sys/class/iommu 2>/dev/null && echo *)"
for n in /dev/kvm /dev/vfio/vfio; do
    if [ -e "$n" ]; then printf '%s: present\n' "$n"; else printf '%s: absent\n' "$n"; fi
done

# Keep kernel messages off the console while the JSON is printed.
echo 1 >/proc/sys/kernel/printk 2>/dev/null

# run NAME CMD...: run CMD with a time limit, then print its stdout
# between NAME markers, then its stderr and exit code.
run() {
    name=$1; shift
    outf=/tmp/$name.out
    errf=/tmp/$name.err
    : >"$outf"; : >"$errf"
    timeout "${GVTG_CMD_TIMEOUT:-45}" "$@" >"$outf" 2>"$errf"
    rc=$?
    printf 'rc=%s (uptime %s)\n' "$rc" "$(cut -d' ' -f1 /proc/uptime)"
    printf '=====GVTG-%s-BEGIN=====\n' "$name"
    cat "$outf"
    printf '\n=====GVTG-%s-END=====\n' "$name"
    printf '=====GVTG-%s-RC=%s=====\n' "$name" "$rc"
    printf '=====GVTG-%s-STDERR-BEGIN=====\n' "$name"
    cat "$errf"
    printf '\n=====GVTG-%s-STDERR-END=====\n' "$name"
}

if [ ! -x /usr/bin/gvtg ]; then
    printf 'gvtg binary missing from the initramfs\n'
fi
if [ -f /etc/gvtg-test/tests.sh ]; then
    . /etc/gvtg-test/tests.sh
else
    run JSON gvtg doctor --json
    cp /tmp/JSON.out /tmp/doctor.json 2>/dev/null
    run TEXT gvtg doctor --color never -v
    run MODINFO gvtg modinfo kvmgt
    run REPORT gvtg report -o /tmp/report.tar.gz
    run FROM gvtg doctor --json --from /tmp/report.tar.gz
fi

printf '=====GVTG-INIT-DONE=====\n'
sync
poweroff -f
# poweroff should not return; if it does, exiting init panics the kernel and
# panic=-1 plus QEMU's -no-reboot end the VM.
sleep 5
exit 1
INIT
chmod 755 "$stage/init"

# /dev/console lets the very first lines of /init reach the console; /init
# re-opens it from devtmpfs anyway, so this is best effort (needs root).
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -print0 | LC_ALL=C sort -z | "$cpio" --null -o -H newc -R 0:0 --quiet) |
    "$gzip" -1 >"$out.tmp"
mv "$out.tmp" "$out"
printf 'realkernel: wrote %s (%s bytes) for kernel %s\n' "$out" "$(wc -c <"$out")" "$rel" >&2
