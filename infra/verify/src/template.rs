//! Every `.bicep` file under the infra root, parsed, and how module paths resolve between them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::bicep::{self, Decl, DeclKind, File};

#[derive(Debug)]
pub struct Template {
    pub root: PathBuf,
    /// By path relative to the root, `/`-separated.
    pub files: BTreeMap<String, File>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0} has no main.bicep")]
    NoMain(PathBuf),
}

pub const MAIN: &str = "main.bicep";

impl Template {
    pub fn load(root: &Path) -> Result<Template, LoadError> {
        let mut files = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|source| LoadError::Io { path: dir.clone(), source })?;
            for entry in entries {
                let entry = entry.map_err(|source| LoadError::Io { path: dir.clone(), source })?;
                let path = entry.path();
                if path.is_dir() {
                    // The checker's own crate holds no templates, only its test data.
                    if path.file_name().is_some_and(|n| n != "verify" && n != "target") {
                        stack.push(path);
                    }
                } else if path.extension().is_some_and(|e| e == "bicep") {
                    let src = std::fs::read_to_string(&path)
                        .map_err(|source| LoadError::Io { path: path.clone(), source })?;
                    let rel = relative(root, &path);
                    files.insert(rel.clone(), bicep::parse(&rel, &src));
                }
            }
        }
        if !files.contains_key(MAIN) {
            return Err(LoadError::NoMain(root.to_path_buf()));
        }
        Ok(Template { root: root.to_path_buf(), files })
    }

    pub fn main(&self) -> &File {
        &self.files[MAIN]
    }

    /// The file a module declaration in `from` loads, when it is a local path.
    pub fn resolve(&self, from: &str, module_path: &str) -> Option<&File> {
        self.files.get(&join(from, module_path))
    }

    /// Every module call in every file, with the file it is in.
    pub fn module_calls(&self) -> impl Iterator<Item = (&File, &Decl)> {
        self.files.values().flat_map(|f| f.decls.iter().filter(|d| d.kind == DeclKind::Module).map(move |d| (f, d)))
    }
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// `modules/a.bicep` + `../b.bicep` → `b.bicep`.
pub fn join(from: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for seg in rel.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

impl File {
    pub fn decl(&self, name: &str) -> Option<&Decl> {
        self.decls.iter().find(|d| d.name == name && d.kind != DeclKind::Other)
    }

    pub fn of_kind(&self, kind: DeclKind) -> impl Iterator<Item = &Decl> {
        self.decls.iter().filter(move |d| d.kind == kind)
    }

    /// The symbols an expression depends on, seen through this file's variables.
    pub fn expand(&self, refs: Vec<String>) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        let mut todo = refs;
        while let Some(r) = todo.pop() {
            if seen.contains(&r) {
                continue;
            }
            if let Some(v) = self.decl(&r).filter(|d| d.kind == DeclKind::Var) {
                if let Some(e) = &v.value {
                    todo.extend(e.references());
                }
            }
            seen.push(r);
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn joins_relative_module_paths() {
        assert_eq!(super::join("main.bicep", "modules/a.bicep"), "modules/a.bicep");
        assert_eq!(super::join("modules/a.bicep", "b.bicep"), "modules/b.bicep");
        assert_eq!(super::join("modules/a.bicep", "../c.bicep"), "c.bicep");
    }
}
