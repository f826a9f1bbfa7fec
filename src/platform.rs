//! Intel platforms: which CPU models and iGPU PCI device ids belong to which generation, and
//! whether that generation has a GVT-g path.
//!
//! Sources (see `shared/knowledge/gvt-g.md` §1.4, §4):
//! - `is_supported_device()` in drivers/gpu/drm/i915/intel_gvt.c allows exactly BDW, SKL, KBL,
//!   BXT (Apollo Lake), CFL (which in i915 also covers Whiskey Lake and Amber Lake-CFL) and CML.
//! - CPU model numbers: arch/x86/include/asm/intel-family.h.
//! - iGPU ids: include/drm/intel/pciids.h (formerly i915_pciids.h).
//! - SR-IOV (`has_sriov`): tgl, adl_s (also RPL-S), adl_p (also ADL-N, RPL-P/U), mtl (also ARL)
//!   in the out-of-tree i915-sriov-dkms; *not* RKL, ICL, EHL/JSL.
//!
//! The PCI id is authoritative (it is what i915 matches); the CPU model is a hint, since one model
//! number covers several generations (0x8E: KBL-U, AML, CFL-U, WHL-U, CML-U).

use serde::Serialize;

/// An Intel client platform (or a class of parts), as far as GVT-g cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Platform {
    /// Sandy Bridge, Ivy Bridge and older Core parts.
    PreHaswell,
    /// Haswell (never supported by upstream KVMGT; only old XenGT).
    Haswell,
    /// Bay Trail / Braswell / Cherry Trail Atoms.
    AtomOld,
    /// Broadwell (Gen8, GVTg_V4 types).
    Broadwell,
    /// Skylake (Gen9).
    Skylake,
    /// Kaby Lake, including KBL-R and Amber Lake-KBL.
    KabyLake,
    /// Coffee Lake, including Whiskey Lake and Amber Lake-CFL.
    CoffeeLake,
    /// Comet Lake.
    CometLake,
    /// Apollo Lake (Broxton).
    ApolloLake,
    /// Gemini Lake.
    GeminiLake,
    /// Cannon Lake (iGPU fused off on every shipped part).
    CannonLake,
    /// Ice Lake (Gen11).
    IceLake,
    /// Elkhart Lake / Jasper Lake (Gen11 Atoms).
    JasperLake,
    /// Tiger Lake (Gen12).
    TigerLake,
    /// Rocket Lake (Gen12, no SR-IOV).
    RocketLake,
    /// Alder Lake S/P.
    AlderLake,
    /// Alder Lake-N / Twin Lake (N100…).
    AlderLakeN,
    /// Raptor Lake.
    RaptorLake,
    /// Meteor Lake.
    MeteorLake,
    /// Arrow Lake.
    ArrowLake,
    /// Lunar Lake.
    LunarLake,
    /// Server cores without integrated graphics (Xeon SP/W, X-series desktops).
    ServerNoIgpu,
    /// An Intel discrete GPU (DG1, Arc), not an iGPU.
    Discrete,
}

/// What a platform offers for sharing its GPU with VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// Upstream GVT-g (KVMGT). The value is the vGPU type version: 4 on Gen8, 5 on Gen9.
    GvtG(u8),
    /// No GVT-g; SR-IOV through the out-of-tree i915-sriov-dkms or the xe driver.
    SrIov,
    /// Neither GVT-g nor SR-IOV; only whole-GPU passthrough (GVT-d).
    None,
}

impl Platform {
    /// Human name.
    pub fn name(self) -> &'static str {
        use Platform::*;
        match self {
            PreHaswell => "Sandy/Ivy Bridge or older",
            Haswell => "Haswell",
            AtomOld => "Bay Trail/Braswell Atom",
            Broadwell => "Broadwell",
            Skylake => "Skylake",
            KabyLake => "Kaby Lake",
            CoffeeLake => "Coffee Lake",
            CometLake => "Comet Lake",
            ApolloLake => "Apollo Lake",
            GeminiLake => "Gemini Lake",
            CannonLake => "Cannon Lake",
            IceLake => "Ice Lake",
            JasperLake => "Jasper/Elkhart Lake",
            TigerLake => "Tiger Lake",
            RocketLake => "Rocket Lake",
            AlderLake => "Alder Lake",
            AlderLakeN => "Alder Lake-N",
            RaptorLake => "Raptor Lake",
            MeteorLake => "Meteor Lake",
            ArrowLake => "Arrow Lake",
            LunarLake => "Lunar Lake",
            ServerNoIgpu => "server part without integrated graphics",
            Discrete => "Intel discrete GPU",
        }
    }

    /// The sharing route the platform has.
    pub fn route(self) -> Route {
        use Platform::*;
        match self {
            Broadwell => Route::GvtG(4),
            Skylake | KabyLake | CoffeeLake | CometLake | ApolloLake => Route::GvtG(5),
            TigerLake | AlderLake | AlderLakeN | RaptorLake | MeteorLake | ArrowLake => {
                Route::SrIov
            }
            _ => Route::None,
        }
    }

    /// Whether parts of this platform may lack an iGPU altogether (so a CPU match proves little).
    pub fn is_server(self) -> bool {
        matches!(self, Platform::ServerNoIgpu)
    }
}

/// The platform of an Intel CPU from its family/model (and stepping for the ambiguous 0x8E/0x9E),
/// with a human label that names the ambiguity where there is one.
pub fn platform_from_cpu(
    family: u32,
    model: u32,
    model_name: Option<&str>,
) -> Option<(Platform, String)> {
    use Platform::*;
    if family != 6 {
        return None;
    }
    let gen_hint = model_name.and_then(core_generation);
    let p = match model {
        0x1A | 0x1E | 0x1F | 0x2E | 0x25 | 0x2C | 0x2F | 0x2A | 0x2D | 0x3A | 0x3E => {
            // Nehalem..Ivy Bridge. The -EP/-EX server parts among them have no iGPU either.
            if matches!(model, 0x2D | 0x3E | 0x2E | 0x2F | 0x2C | 0x1A) {
                ServerNoIgpu
            } else {
                PreHaswell
            }
        }
        0x3C | 0x45 | 0x46 => Haswell,
        0x3F => ServerNoIgpu,
        0x3D | 0x47 => Broadwell,
        0x4F | 0x56 => ServerNoIgpu,
        0x4E | 0x5E => Skylake,
        0x55 | 0x6A | 0x6C | 0x8F | 0xCF | 0xAD | 0xAE => ServerNoIgpu,
        0x8E | 0x9E => match gen_hint {
            Some(10) => CometLake,
            Some(8) | Some(9) if model == 0x9E => CoffeeLake,
            Some(8)
                if model_name.is_some_and(|n| {
                    n.contains("8265U")
                        || n.contains("8565U")
                        || n.contains("8665U")
                        || n.contains("8365U")
                        || n.contains("8145U")
                }) =>
            {
                CoffeeLake
            }
            _ => KabyLake,
        },
        0xA5 | 0xA6 => CometLake,
        0x66 => CannonLake,
        0x7D | 0x7E | 0x9D => IceLake,
        0x8C | 0x8D => TigerLake,
        0xA7 => RocketLake,
        0x97 | 0x9A => AlderLake,
        0xBE => AlderLakeN,
        0xB7 | 0xBA | 0xBF => RaptorLake,
        0xAA | 0xAC => MeteorLake,
        0xC5 | 0xC6 | 0xB5 => ArrowLake,
        0xBD => LunarLake,
        0x5C => ApolloLake,
        0x7A => GeminiLake,
        0x96 | 0x9C => JasperLake,
        0x37 | 0x4C | 0x4D | 0x5A | 0x5D => AtomOld,
        0x5F | 0x86 => ServerNoIgpu,
        _ => return None,
    };
    let label = match (model, p) {
        (0x8E, _) | (0x9E, _) => format!(
            "{} (model {model:#x} is shared by Kaby Lake, Amber/Whiskey/Coffee{} Lake; the iGPU id decides)",
            p.name(),
            if model == 0x8E { "/Comet" } else { "" }
        ),
        _ => p.name().to_string(),
    };
    Some((p, label))
}

/// "Intel(R) Core(TM) i7-10510U" → 10; "i5-8250U" → 8; "i7-4770" → 4. None for other names.
fn core_generation(name: &str) -> Option<u32> {
    let idx = name
        .find(" i3-")
        .or_else(|| name.find(" i5-"))
        .or_else(|| name.find(" i7-"))
        .or_else(|| name.find(" i9-"))?;
    let digits: String = name[idx + 4..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    match digits.len() {
        4 => digits[..1].parse().ok(),
        5 => digits[..2].parse().ok(),
        _ => None,
    }
}

/// True when the model name says the part has no integrated graphics: the "F"/"KF" Core parts,
/// and Xeon E3-12x0 (the models ending in 0 lack the iGPU; 12x5 have a P530/P630).
pub fn name_says_no_igpu(model_name: &str) -> bool {
    let n = model_name;
    let core_f = ["i3-", "i5-", "i7-", "i9-"].iter().any(|p| {
        n.split_whitespace().any(|w| {
            w.starts_with(p)
                && (w.ends_with('F') || w.ends_with("KF"))
                && w[3..].chars().next().is_some_and(|c| c.is_ascii_digit())
        })
    });
    let xeon_e3_no_gfx = n.contains("E3-12")
        && n.split_whitespace()
            .find(|w| w.starts_with("E3-12"))
            .is_some_and(|w| w.ends_with('0'));
    core_f || xeon_e3_no_gfx
}

/// The platform of an Intel iGPU from its PCI device id. `None` for ids we do not know (which a
/// newer kernel may: the caller then says so instead of guessing).
pub fn platform_from_pci_id(id: u16) -> Option<Platform> {
    use Platform::*;
    let hi = id & 0xFF00;
    let p = match id {
        0x0A84 | 0x1A84 | 0x1A85 | 0x5A84 | 0x5A85 => ApolloLake,
        0x87C0 => KabyLake,
        0x87CA => CoffeeLake,
        0x3E90..=0x3E9C | 0x3EA0..=0x3EA9 => CoffeeLake,
        0x3184 | 0x3185 => GeminiLake,
        0x22B0..=0x22B3 | 0x0F30..=0x0F33 | 0x0155 | 0x0157 => AtomOld,
        0x0102..=0x012A | 0x0152..=0x016A => PreHaswell,
        0x7D40 | 0x7D45 | 0x7D55 | 0x7D60 | 0x7DD5 => MeteorLake,
        0x7D41 | 0x7D51 | 0x7D67 | 0x7DD1 | 0xB640 => ArrowLake,
        0x46D0..=0x46D4 => AlderLakeN,
        0x4680..=0x469F => AlderLake,
        0x4620..=0x462F | 0x46A0..=0x46CF => AlderLake,
        0xA780..=0xA78F | 0xA720..=0xA72F | 0xA7A0..=0xA7AF => RaptorLake,
        0x4C80..=0x4C9F => RocketLake,
        0x4E50..=0x4E71 | 0x4500..=0x45FF => JasperLake,
        0x8A50..=0x8A7F => IceLake,
        0x4905..=0x4909 | 0x5690..=0x56FF | 0xE202..=0xE2FF => Discrete,
        _ => match hi {
            0x1600 => Broadwell,
            0x1900 => Skylake,
            0x5900 => KabyLake,
            0x9B00 => CometLake,
            0x9A00 => TigerLake,
            0x6400 => LunarLake,
            0x0400 | 0x0A00 | 0x0C00 | 0x0D00 => Haswell,
            0x5A00 => CannonLake,
            _ => return None,
        },
    };
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_ids_from_the_data_set() {
        // Each from shared/data/real-world/lspci with the INDEX verdict.
        for (id, p) in [
            (0x0412, Platform::Haswell),
            (0x1616, Platform::Broadwell),
            (0x193b, Platform::Skylake),
            (0x5912, Platform::KabyLake),
            (0x5917, Platform::KabyLake),
            (0x3e92, Platform::CoffeeLake),
            (0x3e9b, Platform::CoffeeLake),
            (0x3ea0, Platform::CoffeeLake),
            (0x9bc4, Platform::CometLake),
            (0x8a52, Platform::IceLake),
            (0x9a49, Platform::TigerLake),
            (0x9a70, Platform::TigerLake),
            (0x4c8a, Platform::RocketLake),
            (0x46a3, Platform::AlderLake),
            (0x46d4, Platform::AlderLakeN),
            (0xa780, Platform::RaptorLake),
            (0xa7a0, Platform::RaptorLake),
            (0x3185, Platform::GeminiLake),
            (0x22b1, Platform::AtomOld),
            (0x0102, Platform::PreHaswell),
            (0x5a85, Platform::ApolloLake),
            (0x4e61, Platform::JasperLake),
        ] {
            assert_eq!(platform_from_pci_id(id), Some(p), "{id:#06x}");
        }
        assert_eq!(platform_from_pci_id(0x1234), None);
    }

    #[test]
    fn routes() {
        assert_eq!(Platform::Broadwell.route(), Route::GvtG(4));
        assert_eq!(Platform::CometLake.route(), Route::GvtG(5));
        assert_eq!(Platform::ApolloLake.route(), Route::GvtG(5));
        assert_eq!(Platform::TigerLake.route(), Route::SrIov);
        assert_eq!(Platform::RocketLake.route(), Route::None);
        assert_eq!(Platform::GeminiLake.route(), Route::None);
        assert_eq!(Platform::IceLake.route(), Route::None);
    }

    #[test]
    fn cpu_models() {
        let p = |f, m, n| platform_from_cpu(f, m, n).map(|x| x.0);
        assert_eq!(
            p(6, 142, Some("Intel(R) Core(TM) i7-10510U CPU @ 1.80GHz")),
            Some(Platform::CometLake)
        );
        assert_eq!(
            p(6, 142, Some("Intel(R) Core(TM) i7-7500U CPU @ 2.70GHz")),
            Some(Platform::KabyLake)
        );
        assert_eq!(
            p(6, 158, Some("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz")),
            Some(Platform::CoffeeLake)
        );
        assert_eq!(p(6, 122, None), Some(Platform::GeminiLake));
        assert_eq!(p(6, 92, None), Some(Platform::ApolloLake));
        assert_eq!(p(23, 8, None), None);
        assert!(name_says_no_igpu(
            "11th Gen Intel(R) Core(TM) i7-11700F @ 2.50GHz"
        ));
        assert!(name_says_no_igpu(
            "Intel(R) Xeon(R) CPU E3-1230 v5 @ 3.40GHz"
        ));
        assert!(!name_says_no_igpu(
            "Intel(R) Xeon(R) CPU E3-1245 v5 @ 3.50GHz"
        ));
        assert!(!name_says_no_igpu(
            "Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz"
        ));
    }
}
