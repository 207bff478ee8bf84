//! Writing a report's SVG charts into `charts/` next to it: each file atomically, and any
//! `.svg` an earlier report left there that this one no longer draws removed, so the folder
//! always matches the report that links it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::report::svg::{CHART_DIR, SvgFile};
use crate::store;

/// Writes `files` into `<dir>/charts/` and removes the other `.svg` files there; the folder
/// itself goes when nothing is left in it. Returns the paths written.
pub(super) fn write(dir: &Path, files: &[SvgFile]) -> anyhow::Result<Vec<PathBuf>> {
    let folder = dir.join(CHART_DIR);
    if !files.is_empty() {
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    let mut written = Vec::new();
    for f in files {
        let path = folder.join(&f.name);
        store::write_atomic(&path, f.text.as_bytes())?;
        written.push(path);
    }
    let keep: BTreeSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(written),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", folder.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.extension().is_some_and(|e| e == "svg") && !keep.contains(name) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove stale chart {}", path.display()))?;
        }
    }
    // Only succeeds when empty: a folder holding anything else is the user's.
    if files.is_empty() {
        let _ = std::fs::remove_dir(&folder);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svg(name: &str) -> SvgFile {
        SvgFile {
            name: name.into(),
            text: format!("<svg id=\"{name}\"/>"),
        }
    }

    #[test]
    fn charts_no_longer_drawn_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join(CHART_DIR);
        write(dir.path(), &[svg("a.svg"), svg("b.svg")]).unwrap();
        std::fs::write(folder.join("notes.txt"), "mine").unwrap();
        write(dir.path(), &[svg("b.svg")]).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["b.svg", "notes.txt"]);
        assert_eq!(
            std::fs::read_to_string(folder.join("b.svg")).unwrap(),
            "<svg id=\"b.svg\"/>"
        );
        write(dir.path(), &[]).unwrap();
        assert!(folder.join("notes.txt").exists() && !folder.join("b.svg").exists());
        std::fs::remove_file(folder.join("notes.txt")).unwrap();
        write(dir.path(), &[]).unwrap();
        assert!(!folder.exists(), "an empty charts/ folder is removed");
    }
}
