# shellcheck shell=sh
# Sourced by the test initramfs's /init (GVTG_RK_TESTS): drives `gvtg vgpu` against the
# kernel's sample mdev drivers (mtty: 24 ports; type mtty-1 takes one, mtty-2 two).
# `run NAME CMD...` (from /init) prints the output between =====GVTG-NAME-…===== markers.
U1=11111111-2222-4333-8444-555555555555
U2=22222222-3333-4444-8555-666666666666
U3=33333333-4444-4555-8666-777777777777

run TYPES gvtg vgpu types --json
run TYPESTEXT gvtg vgpu types --parent mtty
run CREATE gvtg vgpu create mtty-2 --parent mtty --uuid $U1
run DEVDIR sh -c "test -d /sys/bus/mdev/devices/$U1 && readlink /sys/bus/mdev/devices/$U1/mdev_type"
run LIST gvtg vgpu list --json
run DUP gvtg vgpu create mtty-2 --parent mtty --uuid $U1
run DUPKERNEL gvtg vgpu create mtty-1 --parent mtty --uuid $U1 --no-precheck
run PERSIST gvtg vgpu create mtty-1 --parent mtty --uuid $U2 --persist
run PERSISTED sh -c "cat /etc/mdevctl.d/mtty/$U2"
run LIST2 gvtg vgpu list --json
# Fill mtty-2 up: 24 ports - 2 (U1) - 1 (U2) = 21 → 10 more mtty-2, one port left over.
n=0
while [ "$(cat /sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/available_instances)" -gt 0 ] && [ $n -lt 30 ]; do
    gvtg vgpu create mtty-2 --parent mtty >/dev/null 2>&1 || break
    n=$((n + 1))
done
printf 'filled %s more mtty-2\n' "$n"
run EXHAUSTED gvtg vgpu create mtty-2 --parent mtty --uuid $U3
run RAWKERNEL gvtg vgpu create mtty-2 --parent mtty --uuid $U3 --no-precheck
run U3GONE sh -c "if test -e /sys/bus/mdev/devices/$U3; then echo present; else echo absent; fi"
# A process holding the VFIO group node makes the mdev "in use": list says so, remove refuses.
g=$(basename "$(readlink /sys/bus/mdev/devices/$U1/iommu_group)")
sleep 60 5<"/dev/vfio/$g" &
holder=$!
sleep 1
run HELDLIST gvtg vgpu list --json
run HELDREMOVE gvtg vgpu remove $U1
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
run REMOVE gvtg vgpu remove $U1
run U1GONE sh -c "if test -e /sys/bus/mdev/devices/$U1; then echo present; else echo absent; fi"
run REMOVEPERSIST gvtg vgpu remove $U2 --persist
run U2DEF sh -c "if test -e /etc/mdevctl.d/mtty/$U2; then echo present; else echo absent; fi"
# A persist step that fails takes the new device away again: a file where mdevctl's parent
# directory should be makes writing the definition fail.
U4=44444444-5555-4666-8777-888888888888
: >/etc/mdevctl.d/mbochs
run PERSISTFAIL gvtg vgpu create mbochs-small --parent mbochs --uuid $U4 --persist
run U4GONE sh -c "if test -e /sys/bus/mdev/devices/$U4; then echo present; else echo absent; fi"
run QEMUARGS gvtg vgpu qemu-args $U1
