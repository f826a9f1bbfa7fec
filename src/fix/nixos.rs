//! NixOS: nothing under /etc is ours to edit (it is generated from configuration.nix), so the fix
//! is a `configuration.nix` snippet, using the options nixpkgs has for this
//! (nixos/modules/virtualisation/kvmgt.nix, libvirtd.nix, boot and udev options).

use std::fmt::Write as _;

/// What the snippet must configure.
#[derive(Debug, Clone, Default)]
pub struct Wants {
    /// `virtualisation.kvmgt.enable = true;` (kernel parameter, kvmgt module, vfio udev rule).
    pub gvt: bool,
    /// `boot.kernelParams` and `boot.extraModprobeConfig` for enable_gvt.
    pub params: bool,
    /// `boot.kernelModules`.
    pub modules: Vec<String>,
    /// `services.udev.extraRules` for /dev/vfio.
    pub udev: bool,
    /// `virtualisation.libvirtd.qemu.verbatimConfig` with this ACL.
    pub acl: Option<Vec<String>>,
    /// `virtualisation.kvmgt.vgpus` for this type.
    pub vgpu: Option<String>,
    /// Passthrough: `boot.kernelParams` (`intel_iommu=on`, `iommu=pt`).
    pub pt_params: Vec<String>,
    /// Passthrough: the vfio modules in `boot.initrd.kernelModules`.
    pub pt_initrd: bool,
    /// Passthrough: `boot.extraModprobeConfig` lines (vfio-pci ids, softdeps, kvm ignore_msrs).
    pub pt_modprobe: Vec<String>,
    /// Looking Glass: `systemd.tmpfiles.rules`.
    pub lg_tmpfiles: Vec<String>,
    /// Looking Glass: kvmfr from `config.boot.kernelPackages.kvmfr`, loaded at boot.
    pub lg_kvmfr: bool,
    /// Looking Glass: `services.udev.extraRules` lines (the kvmfr rule).
    pub lg_udev: Vec<String>,
    /// Looking Glass: the whole ACL it needs (the host's list, libvirt's defaults and
    /// `/dev/kvmfr0`); merged into `acl` when the GVT-g fix sets one too.
    pub lg_acl: Vec<String>,
}

/// A Nix string literal (double-quoted, `\`, `"` and `${` escaped).
pub fn nix_str(s: &str) -> String {
    let mut o = String::from("\"");
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '$' if chars.peek() == Some(&'{') => o.push_str("\\$"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A stable UUID for a vGPU of `ty` (name-based: FNV-1a of the type, version 4 bits set), so the
/// snippet is the same on every run.
fn uuid_for(ty: &str) -> String {
    let mut h1: u64 = 0xcbf2_9ce4_8422_2325;
    let mut h2: u64 = 0x8422_2325_cbf2_9ce4;
    for b in ty.bytes() {
        h1 = (h1 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        h2 = (h2 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3 ^ 0x5bd1_e995);
    }
    let b: Vec<u8> = h1
        .to_be_bytes()
        .iter()
        .chain(h2.to_be_bytes().iter())
        .copied()
        .collect();
    let mut b: [u8; 16] = b.try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The snippet (a whole NixOS module, so it can be imported as is), or None when nothing is wanted.
pub fn snippet(w: &Wants) -> Option<String> {
    let gvt =
        w.gvt || w.params || !w.modules.is_empty() || w.udev || w.acl.is_some() || w.vgpu.is_some();
    let pt = !w.pt_params.is_empty()
        || w.pt_initrd
        || !w.pt_modprobe.is_empty()
        || !w.lg_tmpfiles.is_empty()
        || w.lg_kvmfr
        || !w.lg_udev.is_empty()
        || !w.lg_acl.is_empty();
    if !gvt && !pt {
        return None;
    }
    let mut o = format!(
        "# gvtg fix: {}\n{{ config, pkgs, lib, ... }}:\n{{\n",
        match (gvt, pt) {
            (true, true) => "Intel GVT-g, VFIO passthrough",
            (true, false) => "Intel GVT-g",
            _ => "VFIO passthrough",
        }
    );
    if w.gvt || w.vgpu.is_some() {
        o.push_str("  virtualisation.kvmgt.enable = true;\n");
    }
    if let Some(t) = &w.vgpu {
        // The attribute name is the type as sysfs spells it (i915-GVTg_V5_4).
        let _ = writeln!(
            o,
            "  virtualisation.kvmgt.vgpus = {{\n    {} = {{\n      uuid = [ {} ];\n    }};\n  }};",
            nix_str(t),
            nix_str(&uuid_for(t))
        );
    }
    // Each option once: the GVT-g and passthrough values merged.
    let mut params: Vec<String> = Vec::new();
    let mut modprobe: Vec<String> = Vec::new();
    if w.params {
        params.push("i915.enable_gvt=1".into());
        modprobe.push("options i915 enable_gvt=1".into());
    }
    params.extend(w.pt_params.iter().cloned());
    modprobe.extend(w.pt_modprobe.iter().cloned());
    if !params.is_empty() {
        let p: Vec<String> = params.iter().map(|p| nix_str(p)).collect();
        let _ = writeln!(o, "  boot.kernelParams = [ {} ];", p.join(" "));
    }
    if !modprobe.is_empty() {
        let _ = writeln!(
            o,
            "  boot.extraModprobeConfig = ''\n{}  '';",
            modprobe
                .iter()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        );
    }
    if w.pt_initrd {
        o.push_str(
            "  boot.initrd.kernelModules = [ \"vfio_pci\" \"vfio\" \"vfio_iommu_type1\" ];\n",
        );
    }
    let mut modules: Vec<String> = w.modules.clone();
    if w.lg_kvmfr {
        o.push_str("  boot.extraModulePackages = [ config.boot.kernelPackages.kvmfr ];\n");
        modules.push("kvmfr".into());
    }
    if !modules.is_empty() {
        let m: Vec<String> = modules.iter().map(|m| nix_str(m)).collect();
        let _ = writeln!(o, "  boot.kernelModules = [ {} ];", m.join(" "));
    }
    let mut udev: Vec<String> = Vec::new();
    if w.udev {
        udev.push(super::UDEV_RULE.to_string());
    }
    udev.extend(w.lg_udev.iter().cloned());
    if !udev.is_empty() {
        let _ = writeln!(
            o,
            "  services.udev.extraRules = ''\n{}  '';",
            udev.iter()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        );
    }
    if !w.lg_tmpfiles.is_empty() {
        let r: Vec<String> = w.lg_tmpfiles.iter().map(|l| nix_str(l)).collect();
        let _ = writeln!(o, "  systemd.tmpfiles.rules = [ {} ];", r.join(" "));
    }
    let acl: Option<Vec<String>> = match (&w.acl, w.lg_acl.is_empty()) {
        (a, true) => a.clone(),
        (a, false) => {
            let mut l: Vec<String> = a.clone().unwrap_or_default();
            for e in &w.lg_acl {
                if !l.contains(e) {
                    l.push(e.clone());
                }
            }
            Some(l)
        }
    };
    if let Some(acl) = &acl {
        let items: Vec<String> = acl.iter().map(|a| format!("      \"{a}\",")).collect();
        let _ = writeln!(
            o,
            "  # Replaces nixpkgs' default verbatimConfig, whose `namespaces = []` is kept here.\n  virtualisation.libvirtd.qemu.verbatimConfig = ''\n    namespaces = []\n    cgroup_device_acl = [\n{}\n    ]\n  '';",
            items.join("\n")
        );
    }
    o.push_str("}\n");
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_stable_and_v4_shaped() {
        let u = uuid_for("i915-GVTg_V5_4");
        assert_eq!(u, uuid_for("i915-GVTg_V5_4"));
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, uuid_for("i915-GVTg_V5_8"));
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(nix_str("a\"b${c}"), "\"a\\\"b\\${c}\"");
    }

    #[test]
    fn nothing_wanted_is_none() {
        assert!(snippet(&Wants::default()).is_none());
    }
}
