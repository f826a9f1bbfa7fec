# shellcheck shell=sh
# Sourced by the initramfs's /init when scripts/bench runs its in-VM part (GVTG_RK_TESTS):
# creates mdevs on the kernel's sample mdev parents (mtty, mdpy, mbochs), checks that gvtg and
# mdevctl list the same number of types and devices, then times each listing with hyperfine
# (copied in with GVTG_RK_EXTRA_BIN) in two rounds, gvtg first and then mdevctl first, so a
# drift of the emulated machine's speed falls on both tools alike.
# Output: BENCHINFO/BENCHCOUNT lines, and one `BENCHCSV ROUND <hyperfine CSV row>` line per
# command and round (command,mean,stddev,median,user,system,min,max; seconds).
N=${GVTG_BENCH_RUNS:-40}
# The directories Debian's mdevctl package creates (mdevctl refuses to run without them).
mkdir -p /etc/mdevctl.d/scripts.d/callouts /etc/mdevctl.d/scripts.d/notifiers \
    /usr/lib/mdevctl/scripts.d/callouts /usr/lib/mdevctl/scripts.d/notifiers
i=0
for t in mtty-1 mtty-1 mtty-1 mtty-1 mtty-2 mtty-2 mtty-2 mtty-2; do
    gvtg vgpu create "$t" --parent mtty >/dev/null 2>&1 && i=$((i + 1))
done
for pd in /sys/class/mdev_bus/*; do
    p=${pd##*/}
    case "$p" in mtty) continue ;; esac
    for td in "$pd"/mdev_supported_types/*; do
        gvtg vgpu create "${td##*/}" --parent "$p" >/dev/null 2>&1 && i=$((i + 1))
    done
done
printf 'BENCHINFO created %s mdevs\n' "$i"
printf 'BENCHCOUNT gvtg-types %s\n' "$(gvtg vgpu types --json | grep -c '"short_name"')"
printf 'BENCHCOUNT mdevctl-types %s\n' "$(mdevctl types --dumpjson | grep -c '"device_api"')"
printf 'BENCHCOUNT gvtg-list %s\n' "$(gvtg vgpu list --json | grep -c '"uuid"')"
printf 'BENCHCOUNT mdevctl-list %s\n' "$(mdevctl list --dumpjson | grep -c '"mdev_type"')"
# bench ROUND NAME1 CMD1 NAME2 CMD2: one hyperfine run of two commands, in that order.
bench() {
    round=$1
    hyperfine -N --style none --warmup 5 --runs "$N" --export-csv /tmp/bench.csv \
        -n "$2" "$3" -n "$4" "$5" >/dev/null 2>&1 || {
        printf 'BENCHINFO hyperfine failed in round %s (%s, %s)\n' "$round" "$2" "$4"
        return
    }
    tail -n +2 /tmp/bench.csv | sed "s/^/BENCHCSV $round /"
}
bench 1 gvtg-types "gvtg vgpu types --json" mdevctl-types "mdevctl types --dumpjson"
bench 1 gvtg-list "gvtg vgpu list --json" mdevctl-list "mdevctl list --dumpjson"
bench 2 mdevctl-types "mdevctl types --dumpjson" gvtg-types "gvtg vgpu types --json"
bench 2 mdevctl-list "mdevctl list --dumpjson" gvtg-list "gvtg vgpu list --json"
