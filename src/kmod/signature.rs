//! The signature appended to a module, decoded into the lines kmod's `modinfo` prints
//! (`sig_id`, `signer`, `sig_key`, `sig_hashalgo`, `signature`).
//!
//! A signed module ends with (kernel scripts/sign-file.c, kmod
//! libkmod/libkmod-signature.c):
//!
//! ```text
//! [ module ][ signer's name ][ key id ][ signature data ][ struct module_signature ][ "~Module signature appended~\n" ]
//! ```
//!
//! `struct module_signature` is 12 bytes: `algo`, `hash`, `id_type`, `signer_len`,
//! `key_id_len` (one byte each), three pad bytes and a big-endian `u32 sig_len`. Modern
//! kernels use `id_type` 2 (PKCS#7) with empty signer and key id: everything is in the
//! signature data, a DER PKCS#7 `SignedData`. Like kmod 30 built with OpenSSL (Debian's),
//! the fields then come from its first `SignerInfo`: `signer` is the issuer's common name
//! (or, failing one, the issuer's last name entry, up to its first NUL byte), `sig_key`
//! the serial number's magnitude bytes, `sig_hashalgo` the digest algorithm's OpenSSL
//! long name (the dotted OID when OpenSSL has no name for it) and `signature` the
//! encrypted digest. When that blob does not decode, kmod prints no signature lines at
//! all; [`decode`] reports why instead. For `id_type` 0 (PGP) and 1 (X509) kmod prints the
//! raw signer, key id and signature from the trailer with the hash name from its table,
//! and so does [`decode`].
//!
//! Hex values are uppercase bytes joined by `:`, with a `:` newline and two tabs after
//! every 20 bytes but the last (kmod's `kmod_module_hex_to_str()`), so they can be printed
//! as they are.

use const_oid::ObjectIdentifier;
use der::{Decode, SliceReader};
use serde::Serialize;

/// `sizeof(struct module_signature)`.
pub const MODULE_SIGNATURE_SIZE: usize = 12;

/// kmod's `pkey_hash_algo[]` names, indexed by `module_signature.hash`.
const HASH_NAMES: [&str; 9] = [
    "md4", "md5", "sha1", "rmd160", "sha256", "sha384", "sha512", "sha224", "sm3",
];

/// kmod's `pkey_id_type[]` names, indexed by `module_signature.id_type`.
const ID_TYPES: [&str; 3] = ["PGP", "X509", "PKCS#7"];

/// `id_type` of a PKCS#7 signature.
const PKEY_ID_PKCS7: u8 = 2;

/// Bytes per line of a wrapped hex value (kmod's `line_limit`).
const HEX_LINE_BYTES: usize = 20;

/// The decoded `struct module_signature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleSignature {
    /// `enum pkey_algo`.
    pub algo: u8,
    /// `enum pkey_hash_algo`.
    pub hash: u8,
    /// `enum pkey_id_type`.
    pub id_type: u8,
    /// Length of the signer's name before the key id.
    pub signer_len: u8,
    /// Length of the key id before the signature data.
    pub key_id_len: u8,
    /// Length of the signature data.
    pub sig_len: u32,
}

impl ModuleSignature {
    /// Parses the 12 bytes before the magic string; `None` when they are not 12 bytes or
    /// fail kmod's range checks (`algo < 2`, `hash < 9`, `id_type < 3`, `sig_len != 0`).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let &[algo, hash, id_type, signer_len, key_id_len, _, _, _, a, b, c, d] = bytes else {
            return None;
        };
        let sig_len = u32::from_be_bytes([a, b, c, d]);
        if usize::from(algo) >= 2
            || usize::from(hash) >= HASH_NAMES.len()
            || usize::from(id_type) >= ID_TYPES.len()
            || sig_len == 0
        {
            return None;
        }
        Some(Self {
            algo,
            hash,
            id_type,
            signer_len,
            key_id_len,
            sig_len,
        })
    }

    /// Bytes before the struct that belong to the signature: signer, key id and data.
    pub fn region_len(&self) -> u64 {
        u64::from(self.signer_len) + u64::from(self.key_id_len) + u64::from(self.sig_len)
    }
}

/// What kmod's `modinfo` prints about a module's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// `sig_id`: `PKCS#7`, `X509` or `PGP`.
    pub id_type: &'static str,
    /// `signer`.
    pub signer: String,
    /// `sig_key` bytes.
    #[serde(serialize_with = "ser_hex")]
    pub key_id: Vec<u8>,
    /// `sig_hashalgo`.
    pub hash_algo: String,
    /// `signature` bytes.
    #[serde(serialize_with = "ser_hex")]
    pub signature: Vec<u8>,
}

fn ser_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex_bytes(bytes, usize::MAX))
}

impl Signature {
    /// The lines kmod appends after the `.modinfo` fields, as `(key, value)` in kmod's
    /// order; hex values carry their `\n\t\t` continuation lines.
    pub fn fields(&self) -> [(&'static str, String); 5] {
        [
            ("sig_id", self.id_type.to_string()),
            ("signer", self.signer.clone()),
            ("sig_key", hex_bytes(&self.key_id, HEX_LINE_BYTES)),
            ("sig_hashalgo", self.hash_algo.clone()),
            ("signature", hex_bytes(&self.signature, HEX_LINE_BYTES)),
        ]
    }
}

/// `AB:CD:…`, wrapped after every `per_line` bytes with `:\n\t\t`.
///
/// Written digit by digit: a signed Debian module's 512-byte signature went through `format!`
/// once per byte, which was three quarters of `gvtg modinfo`'s work on a list of modules.
fn hex_bytes(bytes: &[u8], per_line: usize) -> String {
    let digit = |n: u8| if n < 10 { b'0' + n } else { b'A' + n - 10 };
    let breaks = bytes.len().checked_div(per_line).unwrap_or(0);
    let mut out = Vec::with_capacity(bytes.len() * 3 + breaks * 3);
    for (i, &b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(b':');
            if i.checked_rem(per_line) == Some(0) {
                out.extend_from_slice(b"\n\t\t");
            }
        }
        out.extend_from_slice(&[digit(b >> 4), digit(b & 0x0f)]);
    }
    // Only ASCII was written.
    String::from_utf8(out).unwrap_or_default()
}

/// Decodes the signature given the struct and the `region_len()` bytes before it.
///
/// Errors (kmod then prints no signature lines) say what could not be decoded.
pub fn decode(modsig: &ModuleSignature, region: &[u8]) -> Result<Signature, String> {
    let sig_len = usize::try_from(modsig.sig_len).map_err(|_| "sig_len out of range")?;
    let signer_len = usize::from(modsig.signer_len);
    let key_id_len = usize::from(modsig.key_id_len);
    let total = signer_len + key_id_len + sig_len;
    if region.len() != total {
        return Err(format!(
            "signature region is {} bytes, the trailer says {total}",
            region.len()
        ));
    }
    let (signer, rest) = region.split_at_checked(signer_len).ok_or("short signer")?;
    let (key_id, data) = rest.split_at_checked(key_id_len).ok_or("short key id")?;
    let id_type = ID_TYPES
        .get(usize::from(modsig.id_type))
        .copied()
        .ok_or("unknown id_type")?;
    if modsig.id_type == PKEY_ID_PKCS7 {
        return decode_pkcs7(data).map_err(|e| format!("PKCS#7 signature: {e}"));
    }
    Ok(Signature {
        id_type,
        signer: String::from_utf8_lossy(signer).into_owned(),
        key_id: key_id.to_vec(),
        hash_algo: HASH_NAMES
            .get(usize::from(modsig.hash))
            .copied()
            .ok_or("unknown hash")?
            .to_string(),
        signature: data.to_vec(),
    })
}

/// Fields of a PKCS#7 `SignedData` blob, as kmod (OpenSSL) takes them.
fn decode_pkcs7(blob: &[u8]) -> Result<Signature, String> {
    use cms::content_info::ContentInfo;
    use cms::signed_data::{SignedData, SignerIdentifier};

    // OpenSSL's d2i reads one object and ignores what follows it.
    let mut reader = SliceReader::new(blob).map_err(|e| e.to_string())?;
    let info = ContentInfo::decode(&mut reader).map_err(|e| e.to_string())?;
    if info.content_type != const_oid::db::rfc5911::ID_SIGNED_DATA {
        return Err(format!(
            "content type {} is not signedData",
            info.content_type
        ));
    }
    let signed: SignedData = info.content.decode_as().map_err(|e| e.to_string())?;
    let si = signed.signer_infos.0.iter().next().ok_or("no SignerInfo")?;
    let SignerIdentifier::IssuerAndSerialNumber(ias) = &si.sid else {
        return Err("the SignerInfo has no issuerAndSerialNumber".into());
    };
    let entries: Vec<_> = ias.issuer.0.iter().flat_map(|rdn| rdn.0.iter()).collect();
    let entry = entries
        .iter()
        .find(|e| e.oid == const_oid::db::rfc4519::CN)
        .or(entries.last());
    let signer = entry.map_or_else(Vec::new, |e| {
        let v = e.value.value();
        v.split(|&b| b == 0).next().unwrap_or_default().to_vec()
    });
    Ok(Signature {
        id_type: "PKCS#7",
        signer: String::from_utf8_lossy(&signer).into_owned(),
        key_id: integer_magnitude(ias.serial_number.as_bytes()),
        hash_algo: digest_name(&si.digest_alg.oid),
        signature: si.signature.as_bytes().to_vec(),
    })
}

/// Big-endian magnitude of a DER INTEGER's content without leading zeros (OpenSSL's
/// `ASN1_INTEGER_to_BN` + `BN_bn2bin`).
fn integer_magnitude(content: &[u8]) -> Vec<u8> {
    let mut bytes = content.to_vec();
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        // Two's complement negation.
        for b in bytes.iter_mut() {
            *b = !*b;
        }
        for b in bytes.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
    }
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.split_off(start)
}

/// OpenSSL's long name for a digest OID (what `OBJ_obj2txt(…, 0)` gives), else the OID.
fn digest_name(oid: &ObjectIdentifier) -> String {
    const NAMES: &[(&str, &str)] = &[
        ("1.2.840.113549.2.2", "md2"),
        ("1.2.840.113549.2.4", "md4"),
        ("1.2.840.113549.2.5", "md5"),
        ("1.3.14.3.2.26", "sha1"),
        ("1.3.36.3.2.1", "ripemd160"),
        ("2.16.840.1.101.3.4.2.1", "sha256"),
        ("2.16.840.1.101.3.4.2.2", "sha384"),
        ("2.16.840.1.101.3.4.2.3", "sha512"),
        ("2.16.840.1.101.3.4.2.4", "sha224"),
        ("2.16.840.1.101.3.4.2.5", "sha512-224"),
        ("2.16.840.1.101.3.4.2.6", "sha512-256"),
        ("2.16.840.1.101.3.4.2.7", "sha3-224"),
        ("2.16.840.1.101.3.4.2.8", "sha3-256"),
        ("2.16.840.1.101.3.4.2.9", "sha3-384"),
        ("2.16.840.1.101.3.4.2.10", "sha3-512"),
        ("2.16.840.1.101.3.4.2.11", "shake128"),
        ("2.16.840.1.101.3.4.2.12", "shake256"),
        ("1.2.156.10197.1.401", "sm3"),
    ];
    let dotted = oid.to_string();
    NAMES
        .iter()
        .find(|(o, _)| *o == dotted)
        .map_or(dotted.clone(), |(_, n)| (*n).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_wraps_after_twenty_bytes() {
        let bytes: Vec<u8> = (0..41).collect();
        let h = hex_bytes(&bytes, HEX_LINE_BYTES);
        let lines: Vec<&str> = h.split('\n').collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("00:01:") && lines[0].ends_with(":13:"));
        assert!(lines[1].starts_with("\t\t14:") && lines[1].ends_with(":27:"));
        assert_eq!(lines[2], "\t\t28");
        assert_eq!(hex_bytes(&[0xab, 0x0c], 20), "AB:0C");
        assert_eq!(
            hex_bytes(&(0..20).collect::<Vec<u8>>(), 20)
                .matches('\n')
                .count(),
            0
        );
        assert_eq!(hex_bytes(&[], 20), "");
    }

    #[test]
    fn serial_magnitude_like_openssl() {
        assert_eq!(integer_magnitude(&[0x00, 0x80, 0x01]), vec![0x80, 0x01]);
        assert_eq!(integer_magnitude(&[0x66, 0xf5]), vec![0x66, 0xf5]);
        assert_eq!(integer_magnitude(&[0xff]), vec![0x01]);
        assert_eq!(integer_magnitude(&[0x80, 0x00]), vec![0x80, 0x00]);
        assert_eq!(integer_magnitude(&[0x00]), Vec::<u8>::new());
    }

    #[test]
    fn trailer_range_checks() {
        let ok = [1, 4, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0xa9];
        let m = ModuleSignature::parse(&ok).unwrap();
        assert_eq!((m.id_type, m.sig_len, m.region_len()), (2, 681, 681));
        for (i, v) in [(0, 2), (1, 9), (2, 3)] {
            let mut b = ok;
            b[i] = v;
            assert_eq!(ModuleSignature::parse(&b), None);
        }
        let mut zero = ok;
        zero[8..].copy_from_slice(&[0; 4]);
        assert_eq!(ModuleSignature::parse(&zero), None);
        assert_eq!(ModuleSignature::parse(&ok[..11]), None);
    }

    #[test]
    fn default_id_types_use_the_raw_trailer() {
        let m = ModuleSignature {
            algo: 1,
            hash: 2,
            id_type: 1,
            signer_len: 3,
            key_id_len: 2,
            sig_len: 21,
        };
        let mut region = b"Bob".to_vec();
        region.extend_from_slice(&[0xde, 0xad]);
        region.extend(0..21u8);
        let s = decode(&m, &region).unwrap();
        assert_eq!(s.id_type, "X509");
        let f = s.fields();
        assert_eq!(f[1].1, "Bob");
        assert_eq!(f[2].1, "DE:AD");
        assert_eq!(f[3].1, "sha1");
        assert!(f[4].1.ends_with(":13:\n\t\t14"), "{}", f[4].1);
        assert!(decode(&m, &region[1..]).is_err());
    }

    #[test]
    fn garbage_and_truncated_pkcs7_are_errors() {
        let m = |len: usize| ModuleSignature {
            algo: 0,
            hash: 0,
            id_type: PKEY_ID_PKCS7,
            signer_len: 0,
            key_id_len: 0,
            sig_len: len as u32,
        };
        for blob in [
            &b"not DER at all"[..],
            &[0x30, 0x82, 0x02, 0xa5, 0x06, 0x09][..],
            &[0x30, 0x00][..],
            &[0x30][..],
        ] {
            let e = decode(&m(blob.len()), blob).unwrap_err();
            assert!(e.starts_with("PKCS#7 signature: "), "{e}");
        }
    }
}
