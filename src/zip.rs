//! A minimal, deterministic ZIP writer: the `context` of an AKS runCommand is a base64 zip.
//!
//! Members are stored (method 0): what goes in (a chart .tgz, small YAML and a script) is
//! already compressed or tiny, and a stored zip is byte-for-byte the same on every run, which
//! keeps the journal's member hashes comparable. Times are fixed (1980-01-01), as reproducible
//! build tools do. Format: PKWARE APPNOTE 6.3.10 §4.3 (local headers, central directory, end
//! record); no ZIP64, so each member and the whole archive stay under 4 GiB (checked).

use std::io::Write;

/// Why an archive could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    /// A member name is empty, absolute, climbs with `..`, or is too long for the format.
    #[error("zip member name {0:?} is not a relative path")]
    BadName(String),
    /// A member or the archive would need ZIP64.
    #[error("zip member {0:?} is too large for a plain zip")]
    TooLarge(String),
}

/// Builds `members` (name, bytes), in order, into one archive.
pub fn build(members: &[(&str, &[u8])]) -> Result<Vec<u8>, ZipError> {
    const DOS_TIME: u16 = 0;
    const DOS_DATE: u16 = (1 << 5) | 1; // 1980-01-01
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let bad = name.is_empty() || name.starts_with('/') || name.split('/').any(|p| p == "..") || name.len() > 0xFFFF;
        if bad {
            return Err(ZipError::BadName((*name).to_owned()));
        }
        let size = u32::try_from(data.len()).map_err(|_| ZipError::TooLarge((*name).to_owned()))?;
        let offset = u32::try_from(out.len()).map_err(|_| ZipError::TooLarge((*name).to_owned()))?;
        let crc = crc32fast::hash(data);
        let common = |buf: &mut Vec<u8>| {
            buf.extend_from_slice(&20u16.to_le_bytes()); // version needed: 2.0
            buf.extend_from_slice(&0u16.to_le_bytes()); // flags
            buf.extend_from_slice(&0u16.to_le_bytes()); // method: stored
            buf.extend_from_slice(&DOS_TIME.to_le_bytes());
            buf.extend_from_slice(&DOS_DATE.to_le_bytes());
            buf.extend_from_slice(&crc.to_le_bytes());
            buf.extend_from_slice(&size.to_le_bytes()); // compressed
            buf.extend_from_slice(&size.to_le_bytes()); // uncompressed
            buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.write_all(data).expect("writing to a Vec");

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&0x031Eu16.to_le_bytes()); // made by: Unix, spec 3.0
        common(&mut central);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk number
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&((0o100644u32) << 16).to_le_bytes()); // a regular file, 0644
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = u32::try_from(out.len()).map_err(|_| ZipError::TooLarge("the archive".into()))?;
    let count = u16::try_from(members.len()).map_err(|_| ZipError::TooLarge("the archive".into()))?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // this disk
    out.extend_from_slice(&0u16.to_le_bytes()); // disk with the central directory
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads an archive back from its central directory, as unzip does.
    fn read(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
        let u16_at = |i: usize| u16::from_le_bytes([zip[i], zip[i + 1]]) as usize;
        let u32_at = |i: usize| u32::from_le_bytes(zip[i..i + 4].try_into().unwrap()) as usize;
        let end = zip.len() - 22;
        assert_eq!(u32_at(end), 0x0605_4b50);
        let (count, mut at) = (u16_at(end + 10), u32_at(end + 16));
        let mut out = Vec::new();
        for _ in 0..count {
            assert_eq!(u32_at(at), 0x0201_4b50);
            let (crc, size, name_len) = (u32_at(at + 16), u32_at(at + 24), u16_at(at + 28));
            let local = u32_at(at + 42);
            let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap();
            let data_at = local + 30 + u16_at(local + 26) + u16_at(local + 28);
            let data = zip[data_at..data_at + size].to_vec();
            assert_eq!(crc32fast::hash(&data) as usize, crc, "{name}");
            out.push((name, data));
            at += 46 + name_len;
        }
        out
    }

    #[test]
    fn members_read_back_in_order_with_their_crc_and_the_bytes_are_deterministic() {
        let members: [(&str, &[u8]); 3] = [
            ("install.sh", b"#!/bin/bash\nhelm version\n"),
            ("values.yaml", b"a: 1\n"),
            ("charts/airbyte.tgz", &[0, 1, 2]),
        ];
        let zip = build(&members).unwrap();
        let back = read(&zip);
        assert_eq!(back.len(), 3);
        for ((n, d), (bn, bd)) in members.iter().zip(&back) {
            assert_eq!((*n, *d), (bn.as_str(), bd.as_slice()));
        }
        assert_eq!(zip, build(&members).unwrap());
    }

    #[test]
    fn names_that_escape_are_refused() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x"] {
            assert_eq!(build(&[(bad, b"x")]), Err(ZipError::BadName(bad.into())), "{bad:?}");
        }
    }
}
