//! Safe extraction of one runbook artifact layer (DESIGN §4): a gzip tar holding exactly one
//! regular file at its root, `<name>.ps1` or `<name>.py`, matching the manifest entry.
//!
//! Nothing is written to disk: the script is read into memory, bounded, and validated as UTF-8
//! text, because all we do with it is send it to Automation as a request body. So a hostile tar
//! cannot place files anywhere, but we still refuse every shape that a disk extractor would
//! have to defend against (traversal, absolute paths, links, devices, oversize): the artifact is
//! not what the format promises, and publishing something else than what was reviewed is worse
//! than stopping.

use std::io::{self, Read};

use flate2::read::GzDecoder;

use crate::release::RunbookEntry;

/// Tar framing around one script: its header, padding, the end-of-archive blocks, and room for
/// a pax or GNU long-name header. Decompressed bytes beyond `limit + FRAMING` are refused.
pub(super) const FRAMING: u64 = 64 * 1024;

/// A runbook script, extracted and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The file name inside the tar, `<name>.<ext>`.
    pub file_name: String,
    pub text: String,
    /// `sha256:<hex>` of the script bytes: what idempotency compares with the published content.
    pub digest: String,
}

/// Why a runbook layer was refused. Every variant is bad input: nothing is published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The layer is not a readable gzip tar (bad gzip header or checksum, truncated tar).
    #[error("the layer is not a valid gzip tar: {0}")]
    Corrupt(String),

    /// The tar has no entries at all.
    #[error("the tar holds no script; expected {expected}")]
    Empty { expected: String },

    /// An entry's path climbs out of the root with a `..` component.
    #[error("entry {path:?} escapes the archive root (path traversal)")]
    PathTraversal { path: String },

    /// An entry's path is absolute (`/x`, `\x`, `C:...`).
    #[error("entry {path:?} has an absolute path")]
    AbsolutePath { path: String },

    /// An entry is a symbolic or hard link.
    #[error("entry {path:?} is a link to {target:?}; only a regular file is allowed")]
    Link { path: String, target: String },

    /// An entry is a character or block device or a FIFO.
    #[error("entry {path:?} is a device or FIFO; only a regular file is allowed")]
    Device { path: String },

    /// An entry is a directory, a sparse file, a global pax header, or another non-file type.
    #[error("entry {path:?} is not a regular file (tar type {kind:?})")]
    NotRegular { path: String, kind: char },

    /// The tar holds more than the one script.
    #[error("the tar holds more than one entry ({first:?}, then {extra:?}); expected only {expected}")]
    ExtraEntry { first: String, extra: String, expected: String },

    /// The script is not at the root or its name or extension does not match the manifest's
    /// `name` and `runbookType`.
    #[error("the tar holds {path:?}; the manifest's name and runbookType call for {expected}")]
    NameMismatch { path: String, expected: String },

    /// One entry declares more bytes than the configured limit.
    #[error("entry {path:?} is {size} bytes, over the {limit}-byte limit (VIBEDATA_RUNBOOK_MAX_BYTES)")]
    EntryTooLarge { path: String, size: u64, limit: u64 },

    /// The decompressed layer (a gzip bomb, or entries that never end) outgrows the limit.
    #[error("the decompressed layer exceeds {limit} bytes")]
    TotalTooLarge { limit: u64 },

    /// The script is empty: Automation refuses empty draft content, so it could never publish.
    #[error("{path:?} is empty")]
    EmptyScript { path: String },

    /// The script bytes are not UTF-8 text.
    #[error("{path:?} is not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { path: String, offset: usize },

    /// The manifest's `runbookType` is not one this format knows.
    #[error("runbookType {0:?} is not PowerShell or Python")]
    UnknownType(String),
}

/// The file name a runbook's script must have in its tar.
pub fn expected_file_name(entry: &RunbookEntry) -> Result<String, ExtractError> {
    let ext = match entry.runbook_type.as_str() {
        "PowerShell" => "ps1",
        "Python" => "py",
        other => return Err(ExtractError::UnknownType(other.to_owned())),
    };
    Ok(format!("{}.{ext}", entry.name))
}

/// Extracts and validates the script of `entry` from its layer bytes (gzip tar). `limit` bounds
/// the script; the decompressed stream is bounded by `limit` plus tar framing.
pub fn extract(layer: &[u8], entry: &RunbookEntry, limit: u64) -> Result<Script, ExtractError> {
    let expected = expected_file_name(entry)?;
    let total_limit = limit.saturating_add(FRAMING);
    let stream = Bounded { inner: GzDecoder::new(layer), left: total_limit };
    let mut archive = tar::Archive::new(stream);
    let io_err = |e: io::Error| classify_io(e, total_limit);

    let entries = archive.entries().map_err(io_err)?;
    let mut script: Option<Script> = None;
    for item in entries {
        let mut item = item.map_err(io_err)?;
        let raw_path = String::from_utf8_lossy(&item.path_bytes()).into_owned();
        check_path(&raw_path)?;
        check_kind(&item, &raw_path)?;
        if let Some(first) = &script {
            return Err(ExtractError::ExtraEntry { first: first.file_name.clone(), extra: raw_path, expected });
        }
        // One leading `./` is how `tar -C dir .`-style tools name root files; anything else
        // (a directory prefix, another name or extension) is not the script we were promised.
        let name = raw_path.strip_prefix("./").unwrap_or(&raw_path);
        if name != expected {
            return Err(ExtractError::NameMismatch { path: raw_path, expected });
        }
        let size = item.size();
        if size > limit {
            return Err(ExtractError::EntryTooLarge { path: raw_path, size, limit });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        // `take` guards against a header that understates what follows.
        (&mut item).take(limit + 1).read_to_end(&mut bytes).map_err(io_err)?;
        if bytes.len() as u64 > limit {
            return Err(ExtractError::EntryTooLarge { path: raw_path, size: bytes.len() as u64, limit });
        }
        if bytes.is_empty() {
            return Err(ExtractError::EmptyScript { path: raw_path });
        }
        let digest = crate::oci::sha256_digest(&bytes);
        let text = String::from_utf8(bytes)
            .map_err(|e| ExtractError::NotUtf8 { path: raw_path.clone(), offset: e.utf8_error().valid_up_to() })?;
        script = Some(Script { file_name: name.to_owned(), text, digest });
    }
    script.ok_or(ExtractError::Empty { expected })
}

/// Refuses absolute paths and `..` components. Backslashes count as separators: a Windows-made
/// tar means them as such, and no legitimate script name contains one.
fn check_path(path: &str) -> Result<(), ExtractError> {
    let absolute = path.starts_with('/') || path.starts_with('\\') || path.as_bytes().get(1) == Some(&b':');
    if absolute {
        return Err(ExtractError::AbsolutePath { path: path.to_owned() });
    }
    if path.split(['/', '\\']).any(|c| c == "..") {
        return Err(ExtractError::PathTraversal { path: path.to_owned() });
    }
    Ok(())
}

fn check_kind<R: Read>(item: &tar::Entry<'_, R>, path: &str) -> Result<(), ExtractError> {
    let kind = item.header().entry_type();
    if kind.is_file() {
        return Ok(());
    }
    let target = || item.link_name_bytes().map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default();
    Err(if kind.is_symlink() || kind.is_hard_link() {
        ExtractError::Link { path: path.to_owned(), target: target() }
    } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
        ExtractError::Device { path: path.to_owned() }
    } else {
        ExtractError::NotRegular { path: path.to_owned(), kind: kind.as_byte() as char }
    })
}

/// The marker [`Bounded`] puts in the `io::Error` it returns when the limit is hit, so the error
/// can be told apart from a corrupt stream after `tar` has passed it through.
const OVER_LIMIT: &str = "decompressed layer over its limit";

fn classify_io(e: io::Error, limit: u64) -> ExtractError {
    if e.to_string().contains(OVER_LIMIT) {
        ExtractError::TotalTooLarge { limit }
    } else {
        ExtractError::Corrupt(e.to_string())
    }
}

/// A reader that fails once more than `left` bytes have come through: the decompressed size is
/// what a gzip bomb inflates, so it is bounded where it is produced.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more decides whether the stream really goes on or ended exactly here.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(OVER_LIMIT)),
            };
        }
        let max = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
