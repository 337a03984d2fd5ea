//! Crafted runbook layers, good and hostile, for tests. The extraction unit tests and the
//! integration tests (`tests/runbooks.rs`, which includes this file by path) share one list of
//! bad cases, so both check the same shapes.
//!
//! Headers are written by hand where `tar::Builder` would refuse the shape (`..`, absolute paths):
//! refusing them is exactly what the extractor must do on its own.
#![allow(dead_code)]

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{EntryType, Header};

/// One tar entry as written, unchecked.
pub struct Raw {
    pub path: String,
    pub kind: EntryType,
    pub data: Vec<u8>,
    pub link: Option<String>,
}

impl Raw {
    pub fn file(path: &str, data: &[u8]) -> Raw {
        Raw { path: path.to_owned(), kind: EntryType::Regular, data: data.to_vec(), link: None }
    }

    fn special(path: &str, kind: EntryType, link: Option<&str>) -> Raw {
        Raw { path: path.to_owned(), kind, data: Vec::new(), link: link.map(str::to_owned) }
    }
}

/// A gzip tar of `entries`, exactly as given.
pub fn layer(entries: &[Raw]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = Header::new_gnu();
        let gnu = h.as_gnu_mut().expect("a GNU header");
        gnu.name[..e.path.len()].copy_from_slice(e.path.as_bytes());
        if let Some(link) = &e.link {
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append(&h, e.data.as_slice()).expect("append to a Vec");
    }
    gzip(&tar.into_inner().expect("finish the tar"))
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).expect("write to a Vec");
    gz.finish().expect("finish gzip")
}

/// A good PowerShell layer for runbook `name`.
pub fn powershell(name: &str, script: &str) -> Vec<u8> {
    layer(&[Raw::file(&format!("{name}.ps1"), script.as_bytes())])
}

/// One hostile or malformed layer for a PowerShell runbook, and a fragment of the error it must
/// produce.
pub struct BadCase {
    pub id: &'static str,
    pub layer: Vec<u8>,
    pub expect: &'static str,
}

/// Every bad layer shape for a PowerShell runbook named `name`, with the script limit `limit`.
pub fn bad_cases(name: &str, limit: u64) -> Vec<BadCase> {
    let ps1 = format!("{name}.ps1");
    let ok = b"Write-Output 'hi'\n";
    let case = |id, entries: Vec<Raw>, expect| BadCase { id, layer: layer(&entries), expect };
    vec![
        case("traversal", vec![Raw::file(&format!("../{ps1}"), ok)], "path traversal"),
        case("nested-traversal", vec![Raw::file(&format!("a/../../{ps1}"), ok)], "path traversal"),
        case("absolute", vec![Raw::file(&format!("/{ps1}"), ok)], "absolute path"),
        case("symlink", vec![Raw::special(&ps1, EntryType::Symlink, Some("/etc/passwd"))], "is a link"),
        case("hardlink", vec![Raw::special(&ps1, EntryType::Link, Some("other.ps1"))], "is a link"),
        case("char-device", vec![Raw::special(&ps1, EntryType::Char, None)], "device"),
        case("block-device", vec![Raw::special(&ps1, EntryType::Block, None)], "device"),
        case("fifo", vec![Raw::special(&ps1, EntryType::Fifo, None)], "device"),
        case("directory", vec![Raw::special("scripts/", EntryType::Directory, None)], "not a regular file"),
        case("entry-oversize", vec![Raw::file(&ps1, &vec![b'#'; limit as usize + 1])], "over the"),
        // A GNU long-name record that inflates past the limit before any file is seen: a bomb.
        case(
            "total-oversize",
            vec![
                Raw {
                    path: "././@LongLink".into(),
                    kind: EntryType::GNULongName,
                    data: vec![0; limit as usize + 70_000],
                    link: None,
                },
                Raw::file(&ps1, ok),
            ],
            "exceeds",
        ),
        case("empty-script", vec![Raw::file(&ps1, b"")], "is empty"),
        case("not-utf8", vec![Raw::file(&ps1, b"Write-Output '\xff\xfe'\n")], "not UTF-8"),
        case("two-files", vec![Raw::file(&ps1, ok), Raw::file("extra.txt", b"x")], "more than one entry"),
        case("wrong-extension", vec![Raw::file(&format!("{name}.py"), ok)], "call for"),
        case("wrong-name", vec![Raw::file("Something-Else.ps1", ok)], "call for"),
        case("not-at-root", vec![Raw::file(&format!("dir/{ps1}"), ok)], "call for"),
        case("empty", vec![], "no script"),
        BadCase { id: "not-gzip", layer: b"plain text, not gzip".to_vec(), expect: "not a valid gzip tar" },
    ]
}
