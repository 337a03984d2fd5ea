//! The `context` of a runCommand: base64 (standard alphabet; `az` sends Python's
//! `base64.encodebytes`, MIME-wrapped at 76 characters, others send it unwrapped) of a zip file
//! whose members the command finds in its working directory.
//!
//! A small reader of our own rather than a zip crate: contexts are small, only `stored` and
//! `deflate` members occur (Python's `zipfile`, Go's `archive/zip`, `zip -r`), and unpacking has
//! to refuse what a command pod would never see (absolute paths, `..`, encrypted members).

use std::io::Read;
use std::path::{Component, Path};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Unpacked size above which a context is refused (a zip bomb, not a command's files).
const MAX_UNPACKED: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Member {
    /// The path inside the zip (`/`-separated, relative).
    pub name: String,
    pub data: Vec<u8>,
    /// The Unix mode bits recorded by the zipper, when it recorded any.
    pub mode: Option<u32>,
}

impl Member {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

/// Decodes the base64, tolerating whitespace anywhere (MIME line breaks).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact.as_bytes()).map_err(|e| format!("it is not base64: {e}"))
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or_else(|| "it is truncated".to_owned())
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok_or_else(|| "it is truncated".to_owned())
}

/// The members of a zip file, in central-directory order.
pub fn read_zip(bytes: &[u8]) -> Result<Vec<Member>, String> {
    const EOCD: u32 = 0x0605_4b50;
    const CENTRAL: u32 = 0x0201_4b50;
    const LOCAL: u32 = 0x0403_4b50;
    if bytes.len() < 22 {
        return Err("it is not a zip file (too short)".into());
    }
    // The end-of-central-directory record is in the last 22 + 65535 (comment) bytes.
    let lowest = bytes.len().saturating_sub(22 + 0xFFFF);
    let eocd = (lowest..=bytes.len() - 22)
        .rev()
        .find(|&i| u32_at(bytes, i).ok() == Some(EOCD))
        .ok_or("it is not a zip file (no end of central directory)")?;
    let entries = u16_at(bytes, eocd + 10)? as usize;
    let cd_size = u32_at(bytes, eocd + 12)? as usize;
    let cd_offset = u32_at(bytes, eocd + 16)? as usize;
    if entries == 0xFFFF || cd_offset == 0xFFFF_FFFF || cd_size == 0xFFFF_FFFF {
        return Err("ZIP64 archives are not supported".into());
    }
    let mut members = Vec::with_capacity(entries);
    let mut at = cd_offset;
    let mut total: u64 = 0;
    for _ in 0..entries {
        if u32_at(bytes, at)? != CENTRAL {
            return Err("its central directory is corrupt".into());
        }
        let made_by = u16_at(bytes, at + 4)?;
        let flags = u16_at(bytes, at + 8)?;
        let method = u16_at(bytes, at + 10)?;
        let crc = u32_at(bytes, at + 16)?;
        let csize = u32_at(bytes, at + 20)? as usize;
        let usize_ = u32_at(bytes, at + 24)? as usize;
        let name_len = u16_at(bytes, at + 28)? as usize;
        let extra_len = u16_at(bytes, at + 30)? as usize;
        let comment_len = u16_at(bytes, at + 32)? as usize;
        let external = u32_at(bytes, at + 38)?;
        let local = u32_at(bytes, at + 42)? as usize;
        let name_bytes = bytes.get(at + 46..at + 46 + name_len).ok_or("its central directory is truncated")?;
        let name = String::from_utf8(name_bytes.to_vec()).map_err(|_| "a member name is not UTF-8".to_owned())?;
        at += 46 + name_len + extra_len + comment_len;
        if flags & 1 != 0 {
            return Err(format!("member '{name}' is encrypted"));
        }
        check_name(&name)?;
        total += usize_ as u64;
        if total > MAX_UNPACKED {
            return Err(format!("it unpacks to more than {MAX_UNPACKED} bytes"));
        }
        if u32_at(bytes, local)? != LOCAL {
            return Err(format!("member '{name}' has no local header"));
        }
        let data_at = local + 30 + u16_at(bytes, local + 26)? as usize + u16_at(bytes, local + 28)? as usize;
        let raw = bytes.get(data_at..data_at + csize).ok_or_else(|| format!("member '{name}' is truncated"))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => {
                let mut out = Vec::with_capacity(usize_);
                flate2::read::DeflateDecoder::new(raw)
                    .take(usize_ as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("member '{name}' does not inflate: {e}"))?;
                out
            }
            m => return Err(format!("member '{name}' uses compression method {m} (only stored and deflate)")),
        };
        if data.len() != usize_ {
            return Err(format!("member '{name}' has the wrong size"));
        }
        let mut sum = flate2::Crc::new();
        sum.update(&data);
        if sum.sum() != crc {
            return Err(format!("member '{name}' fails its CRC-32 check"));
        }
        // Unix zippers (Python's zipfile, Info-ZIP, Go) keep the file mode in the high bits.
        let mode = (made_by >> 8 == 3 && external >> 16 != 0).then_some(external >> 16);
        members.push(Member { name, data, mode });
    }
    Ok(members)
}

fn check_name(name: &str) -> Result<(), String> {
    let path = Path::new(name);
    let bad = name.is_empty()
        || name.contains('\0')
        || name.contains('\\')
        || path.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if bad {
        return Err(format!("member name '{name}' is not a relative path inside the context"));
    }
    Ok(())
}

/// Writes the members below `dir` (directories created as needed; files keep an executable bit).
pub fn unpack(members: &[Member], dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for m in members {
        let target = dir.join(m.name.trim_end_matches('/'));
        if m.is_dir() {
            std::fs::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, &m.data)?;
        let exec = m.mode.is_some_and(|mode| mode & 0o111 != 0);
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 }))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A zip of (name, data, deflate?) members, written the way Python's `zipfile` does.
    pub(crate) fn zip(files: &[(&str, &[u8], bool)]) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data, deflate) in files {
            let mut crc = flate2::Crc::new();
            crc.update(data);
            let body = if *deflate {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            } else {
                data.to_vec()
            };
            let method: u16 = if *deflate { 8 } else { 0 };
            let offset = out.len() as u32;
            let header = |sig: u32, central_extra: bool| {
                let mut h = Vec::new();
                h.extend(sig.to_le_bytes());
                if central_extra {
                    h.extend((0x0314u16).to_le_bytes());
                }
                h.extend(20u16.to_le_bytes());
                h.extend(0u16.to_le_bytes());
                h.extend(method.to_le_bytes());
                h.extend([0, 0, 0x21, 0]);
                h.extend(crc.sum().to_le_bytes());
                h.extend((body.len() as u32).to_le_bytes());
                h.extend((data.len() as u32).to_le_bytes());
                h.extend((name.len() as u16).to_le_bytes());
                h.extend(0u16.to_le_bytes());
                if central_extra {
                    h.extend([0, 0, 0, 0, 0, 0]);
                    let mode: u32 = if name.ends_with(".sh") { 0o100755 } else { 0o100644 };
                    h.extend((mode << 16).to_le_bytes());
                    h.extend(offset.to_le_bytes());
                }
                h.extend(name.as_bytes());
                h
            };
            out.extend(header(0x0403_4b50, false));
            out.extend(&body);
            central.extend(header(0x0201_4b50, true));
        }
        let cd_offset = out.len() as u32;
        out.extend(&central);
        out.extend(0x0605_4b50u32.to_le_bytes());
        out.extend([0, 0, 0, 0]);
        out.extend((files.len() as u16).to_le_bytes());
        out.extend((files.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    #[test]
    fn reads_stored_and_deflated_members_and_their_modes() {
        let bytes = zip(&[("install.sh", b"echo hi\n", false), ("chart/values.yaml", &[b'a'; 5000], true)]);
        let members = read_zip(&bytes).unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!((members[0].name.as_str(), members[0].data.as_slice()), ("install.sh", &b"echo hi\n"[..]));
        assert_eq!(members[0].mode.map(|m| m & 0o777), Some(0o755));
        assert_eq!(members[1].data.len(), 5000);
    }

    #[test]
    fn accepts_wrapped_and_unwrapped_base64() {
        let bytes = zip(&[("a.txt", &[7u8; 300], false)]);
        let flat = STANDARD.encode(&bytes);
        let wrapped: String =
            flat.as_bytes().chunks(76).map(|c| format!("{}\n", std::str::from_utf8(c).unwrap())).collect();
        assert_eq!(decode_base64(&flat).unwrap(), bytes);
        assert_eq!(decode_base64(&wrapped).unwrap(), bytes);
        assert!(decode_base64("not base64!").is_err());
    }

    #[test]
    fn refuses_escaping_names_corruption_and_non_zips() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "a\\b"] {
            let err = read_zip(&zip(&[(bad, b"x", false)])).unwrap_err();
            assert!(err.contains("not a relative path"), "{bad}: {err}");
        }
        let mut bytes = zip(&[("a", b"hello", false)]);
        let at = bytes.windows(5).position(|w| w == b"hello").unwrap();
        bytes[at] = b'j';
        assert!(read_zip(&bytes).unwrap_err().contains("CRC-32"));
        assert!(read_zip(b"PK but not really a zip archive").unwrap_err().contains("not a zip"));
    }
}
