# shellcheck shell=sh
# Sourced by the initramfs's /init when scripts/bench runs its in-VM part (GVTG_RK_TESTS):
# creates mdevs on the kernel's sample mdev parents (mtty, mdpy, mbochs), checks that gvtg and
# mdevctl list the same number of types and devices, then times N runs of each listing.
# Busybox's date has no %N, so each loop is timed with /proc/uptime (10 ms ticks) over N runs.
# Output: one `BENCH NAME RUNS CENTISECONDS` line per command.
N=${GVTG_BENCH_RUNS:-10}
# The directories Debian's mdevctl package creates (mdevctl refuses to run without them).
mkdir -p /etc/mdevctl.d/scripts.d/callouts /etc/mdevctl.d/scripts.d/notifiers \
    /usr/lib/mdevctl/scripts.d/callouts /usr/lib/mdevctl/scripts.d/notifiers
i=0
for t in mtty-1 mtty-1 mtty-1 mtty-1 mtty-2 mtty-2 mtty-2 mtty-2; do
    gvtg vgpu create "$t" --parent mtty >/dev/null 2>&1 && i=$((i + 1))
done
for p in $(ls /sys/class/mdev_bus); do
    for t in $(ls "/sys/class/mdev_bus/$p/mdev_supported_types"); do
        case "$p" in mtty) continue ;; esac
        gvtg vgpu create "$t" --parent "$p" >/dev/null 2>&1 && i=$((i + 1))
    done
done
printf 'BENCHINFO created %s mdevs\n' "$i"
printf 'BENCHCOUNT gvtg-types %s\n' "$(gvtg vgpu types --json | grep -c '"short_name"')"
printf 'BENCHCOUNT mdevctl-types %s\n' "$(mdevctl types --dumpjson | grep -c '"device_api"')"
printf 'BENCHCOUNT gvtg-list %s\n' "$(gvtg vgpu list --json | grep -c '"uuid"')"
printf 'BENCHCOUNT mdevctl-list %s\n' "$(mdevctl list --dumpjson | grep -c '"mdev_type"')"
bench() {
    name=$1; shift
    "$@" >/dev/null 2>&1
    t0=$(cut -d' ' -f1 /proc/uptime | tr -d .)
    k=0
    while [ $k -lt "$N" ]; do
        "$@" >/dev/null 2>&1
        k=$((k + 1))
    done
    t1=$(cut -d' ' -f1 /proc/uptime | tr -d .)
    printf 'BENCH %s %s %s\n' "$name" "$N" "$((t1 - t0))"
}
bench gvtg-types gvtg vgpu types --json
bench mdevctl-types mdevctl types --dumpjson
bench gvtg-list gvtg vgpu list --json
bench mdevctl-list mdevctl list --dumpjson
bench gvtg-types gvtg vgpu types --json
bench mdevctl-types mdevctl types --dumpjson
bench gvtg-list gvtg vgpu list --json
bench mdevctl-list mdevctl list --dumpjson
