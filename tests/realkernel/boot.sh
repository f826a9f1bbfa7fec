#!/bin/bash
# Boot a real kernel with the initramfs from mkinitramfs.sh under QEMU (TCG)
# and write the serial console to a log file.
#
# usage: boot.sh INITRAMFS [extra qemu args...]
#
# Environment:
#   GVTG_TEST_KERNEL_RELEASE  kernel release (default: discovered, see common.sh)
#   GVTG_BOOT_LOG             console log file (default: INITRAMFS with .log)
#   GVTG_BOOT_TIMEOUT         hard limit in seconds (default: 180)
#   GVTG_QEMU_CPU             QEMU -cpu model (default: Skylake-Client-v1)
#   GVTG_KERNEL_APPEND        extra kernel command-line words
#   GVTG_QEMU_IOMMU           on (default: -device intel-iommu, intel_iommu=on), off (no
#                             IOMMU device, intel_iommu=off), or the -device argument to use
#                             instead (intel-iommu,snoop-control=on; intel_iommu=on)
# Exit status: QEMU's (0 after the guest powers off), 124 on timeout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/common.sh
. "$here/common.sh"

if [ $# -lt 1 ]; then
    printf 'usage: %s INITRAMFS [extra qemu args...]\n' "$0" >&2
    exit 2
fi
initrd=$1
shift
[ -f "$initrd" ] || rk_die "initramfs '$initrd' not found"

rel=$(rk_release) || rk_missing "no kernel found: no /lib/modules/REL with modules.dep and /boot/vmlinuz-REL"
rk_check_release "$rel"
qemu=$(rk_find_prog qemu-system-x86_64) || rk_missing "qemu-system-x86_64 not found"
timeout_prog=$(rk_find_prog timeout) || rk_die "timeout (coreutils) not found"

log=${GVTG_BOOT_LOG:-${initrd%.gz}}
log=${GVTG_BOOT_LOG:-${log%.cpio}.log}
limit=${GVTG_BOOT_TIMEOUT:-180}
cpu=${GVTG_QEMU_CPU:-Skylake-Client-v1}
iommu=${GVTG_QEMU_IOMMU:-on}
case "$iommu" in
    on) iommu_args=(-device intel-iommu) iommu_param=intel_iommu=on ;;
    off) iommu_args=() iommu_param=intel_iommu=off ;;
    *) iommu_args=(-device "$iommu") iommu_param=intel_iommu=on ;;
esac
append="console=ttyS0 $iommu_param i915.enable_gvt=1 panic=-1 quiet loglevel=4${GVTG_KERNEL_APPEND:+ $GVTG_KERNEL_APPEND}"

start=$(date +%s)
set +e
# -nographic puts the serial console on stdio; stdin is closed so QEMU never
# waits on a terminal.
"$timeout_prog" -k 10 "$limit" "$qemu" \
    -accel tcg \
    -machine q35 \
    "${iommu_args[@]}" \
    -cpu "$cpu" \
    -m 1024 \
    -smp 1 \
    -nographic \
    -no-reboot \
    -kernel "/boot/vmlinuz-$rel" \
    -initrd "$initrd" \
    -append "$append" \
    "$@" </dev/null >"$log" 2>&1
rc=$?
set -e
end=$(date +%s)
printf 'realkernel: qemu exited %s after %ss (kernel %s, log %s)\n' "$rc" "$((end - start))" "$rel" "$log" >&2
if [ "$rc" = 124 ]; then
    printf 'realkernel: QEMU was killed after the %ss limit\n' "$limit" >&2
fi
exit "$rc"
