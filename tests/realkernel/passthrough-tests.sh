# shellcheck shell=sh disable=SC2016
# Sourced by the test initramfs's /init (GVTG_RK_TESTS): drives `gvtg passthrough bind|unbind`
# and `gvtg doctor --passthrough` against QEMU's emulated PCI devices. GVTG_PT_MODE (a word on
# the kernel command line) is `on` (emulated VT-d) or `off` (no IOMMU).
# `run NAME CMD...` (from /init) prints the output between =====GVTG-NAME-…===== markers.

# `run` executes programs (under timeout), so the helpers are small scripts.
# /tmp/lspci: the PCI functions, one line each:
# "ADDR VENDOR DEVICE CLASS DRIVER GROUP BOOT_VGA" ("-" for none).
cat >/tmp/lspci <<'EOS'
#!/bin/sh
for d in /sys/bus/pci/devices/*; do
    a=$(basename "$d")
    drv=-
    [ -L "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
    grp=-
    [ -L "$d/iommu_group" ] && grp=$(basename "$(readlink "$d/iommu_group")")
    bv=-
    [ -f "$d/boot_vga" ] && bv=$(cat "$d/boot_vga")
    printf '%s %s %s %s %s %s %s\n' "$a" "$(cat "$d/vendor")" "$(cat "$d/device")" \
        "$(cat "$d/class")" "$drv" "$grp" "$bv"
done
EOS
# /tmp/drv ADDR: the bound driver's name, or "none".
cat >/tmp/drv <<'EOS'
#!/bin/sh
if [ -L "/sys/bus/pci/devices/$1/driver" ]; then
    basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
else
    echo none
fi
EOS
chmod 755 /tmp/lspci /tmp/drv
# first_where AWK-CONDITION: the first address whose table line matches (the
# conditions are awk programs: their $N stay unexpanded, hence SC2016 off).
first_where() {
    /tmp/lspci | awk "$1 { print \$1; exit }"
}

run LSPCI /tmp/lspci
VGA2=$(first_where '$4 ~ /^0x03/ && $7 != "1"')
BOOTVGA=$(first_where '$7 == "1"')
NIC=$(first_where '$4 ~ /^0x02/')
AUDIO=$(first_where '$4 ~ /^0x0403/')
AHCI=$(first_where '$4 ~ /^0x0106/')
SMBUS=$(first_where '$4 ~ /^0x0c05/')
printf 'devices: VGA2=%s BOOTVGA=%s NIC=%s AUDIO=%s AHCI=%s SMBUS=%s\n' \
    "$VGA2" "$BOOTVGA" "$NIC" "$AUDIO" "$AHCI" "$SMBUS"
run GROUPS sh -c 'for g in /sys/kernel/iommu_groups/*/devices/*; do [ -e "$g" ] && echo "$g"; done'

if [ "${GVTG_PT_MODE:-on}" = off ]; then
    run OFFDOCTOR gvtg doctor --passthrough "$VGA2" --json
    run OFFBIND gvtg passthrough bind "$VGA2" --json
    run OFFFORCE gvtg passthrough bind "$VGA2" --force
    run OFFDRIVER /tmp/drv "$VGA2"
else
    run LIST gvtg doctor --passthrough --color never
    run DOCTOR1 gvtg doctor --passthrough "$VGA2" --json
    run VFIOBEFORE sh -c 'if [ -d /sys/bus/pci/drivers/vfio-pci ]; then echo loaded; else echo absent; fi'
    run DRYRUN gvtg passthrough bind "$VGA2" --dry-run
    run DRYDRIVER /tmp/drv "$VGA2"
    run BIND gvtg passthrough bind "$VGA2" --json
    G=$(basename "$(readlink "/sys/bus/pci/devices/$VGA2/iommu_group")")
    run BOUND sh -c "readlink /sys/bus/pci/devices/$VGA2/driver; cat /sys/bus/pci/devices/$VGA2/driver_override; ls -l /dev/vfio/$G"
    run DOCTOR2 gvtg doctor --passthrough "$VGA2" --json
    run UNBIND gvtg passthrough unbind "$VGA2" --json
    run UNBOUND sh -c "echo driver=\$(basename \$(readlink /sys/bus/pci/devices/$VGA2/driver)); echo override=\$(cat /sys/bus/pci/devices/$VGA2/driver_override); if [ -e /dev/vfio/$G ]; then echo node=present; else echo node=absent; fi"
    run AUDIOBIND gvtg passthrough bind "$AUDIO" --json
    run AUDIODRIVER /tmp/drv "$AUDIO"
    run AUDIOUNBIND gvtg passthrough unbind "$AUDIO"
    run AUDIOAFTER /tmp/drv "$AUDIO"
    run NIC gvtg passthrough bind "$NIC"
    run NICJSON gvtg passthrough bind "$NIC" --json
    run NICFORCEDRY gvtg passthrough bind "$NIC" --force --dry-run
    run NICDRIVER /tmp/drv "$NIC"
    run STORAGE gvtg passthrough bind "$SMBUS" --json
    run STORAGEDRIVER /tmp/drv "$AHCI"
    run BOOTVGA gvtg passthrough bind "$BOOTVGA" --json
    run BOOTVGADRIVER /tmp/drv "$BOOTVGA"
fi
