# shellcheck shell=sh
# Shared helpers for mkinitramfs.sh and boot.sh (sourced, not executed).

GVTG_RK_PACKAGES="linux-image-amd64 qemu-system-x86 busybox-static kmod cpio"

rk_die() {
    printf 'realkernel: error: %s\n' "$*" >&2
    exit 1
}

rk_missing() {
    printf 'realkernel: error: %s\n' "$*" >&2
    printf 'realkernel: the real-kernel test needs these Debian packages: %s\n' "$GVTG_RK_PACKAGES" >&2
    printf 'realkernel: install them with: apt-get install -y %s\n' "$GVTG_RK_PACKAGES" >&2
    exit 1
}

# Find a program on PATH or in the sbin dirs (which non-root PATHs often lack).
rk_find_prog() {
    for d in $(printf '%s' "$PATH" | tr ':' ' ') /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
        if [ -x "$d/$1" ] && [ ! -d "$d/$1" ]; then
            printf '%s\n' "$d/$1"
            return 0
        fi
    done
    return 1
}

# Kernel release: $GVTG_TEST_KERNEL_RELEASE, else the first /lib/modules/REL
# (sorted) with a modules.dep and a /boot/vmlinuz-REL.
rk_release() {
    if [ -n "${GVTG_TEST_KERNEL_RELEASE:-}" ]; then
        printf '%s\n' "$GVTG_TEST_KERNEL_RELEASE"
        return 0
    fi
    for d in /lib/modules/*/; do
        [ -d "$d" ] || continue
        r=$(basename "$d")
        if [ -f "/lib/modules/$r/modules.dep" ] && [ -f "/boot/vmlinuz-$r" ]; then
            printf '%s\n' "$r"
            return 0
        fi
    done
    return 1
}

rk_check_release() {
    r=$1
    [ -f "/lib/modules/$r/modules.dep" ] ||
        rk_missing "/lib/modules/$r/modules.dep not found (kernel release '$r')"
    [ -f "/boot/vmlinuz-$r" ] ||
        rk_missing "/boot/vmlinuz-$r not found (kernel release '$r')"
    [ -r "/boot/vmlinuz-$r" ] ||
        rk_die "/boot/vmlinuz-$r is not readable by uid $(id -u) (some distributions install it mode 0600: run as root)"
}
