//! Safe extraction of a zip code package.
//!
//! A code package comes from a user and is unpacked on the host, so every entry is checked
//! before anything is written: no absolute paths, no `..` components, no device files, and no
//! more than the unzipped-size limit in total. Symlinks are checked twice: each target
//! lexically as it is read, and, once the whole tree is written, every link resolved through
//! the links it passes (`x -> .` then `x/l -> ..` is lexically inside but really leads out),
//! the way the kernel will resolve it when the function follows it. Declared sizes are checked up front (cheap rejection of zip bombs) and actual
//! decompressed bytes are counted while writing (entries that lie about their size).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::RuntimeError;

const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// Unpacks `zip` into `dest` (which must exist and be empty), writing at most `max_unzipped`
/// bytes. Returns the total unzipped size.
pub fn extract_zip(zip: &[u8], dest: &Path, max_unzipped: u64) -> Result<u64, RuntimeError> {
    let invalid = |why: String| RuntimeError::InvalidPackage(why);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| invalid(format!("not a valid zip archive: {e}")))?;

    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| invalid(format!("entry {i}: {e}")))?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > max_unzipped {
        return Err(RuntimeError::PackageTooLarge { max: max_unzipped });
    }

    let mut written: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| invalid(format!("entry {i}: {e}")))?;
        let name = entry.name().to_string();
        let rel =
            relative_entry_path(&name).map_err(|why| invalid(format!("entry {name:?}: {why}")))?;
        let target = dest.join(&rel);
        let kind = entry.unix_mode().map(|m| m & S_IFMT);
        if entry.is_dir() || kind == Some(S_IFDIR) {
            create_dir_inside(dest, &target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            create_dir_inside(dest, parent)?;
        }
        match kind {
            Some(S_IFLNK) => {
                let mut link = String::new();
                entry
                    .read_to_string(&mut link)
                    .map_err(|e| invalid(format!("symlink {name:?}: {e}")))?;
                check_link_target(&rel, &link)
                    .map_err(|why| invalid(format!("symlink {name:?} -> {link:?}: {why}")))?;
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|e| invalid(format!("symlink {name:?}: {e}")))?;
            }
            None | Some(S_IFREG) | Some(0) => {
                let mode = entry.unix_mode().unwrap_or(0o644) & 0o777;
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|e| invalid(format!("entry {name:?}: {e}")))?;
                written += copy_limited(&mut entry, &mut out, max_unzipped - written)
                    .map_err(|e| match e {
                        CopyError::Limit => RuntimeError::PackageTooLarge { max: max_unzipped },
                        CopyError::Io(e) => invalid(format!("entry {name:?}: {e}")),
                    })?;
                // Readable by the unprivileged function user; never writable by it.
                fs::set_permissions(&target, fs::Permissions::from_mode((mode | 0o444) & 0o755))?;
            }
            Some(other) => {
                return Err(invalid(format!(
                    "entry {name:?} is a special file (mode {other:o}); only files, directories and symlinks are allowed"
                )))
            }
        }
    }
    check_links_resolve_inside(dest, Path::new(""))?;
    Ok(written)
}

/// Most symlinks followed while resolving one path (the kernel's own limit).
const MAX_LINKS_FOLLOWED: usize = 40;

/// Checks every symlink under `root/dir` (walked without following links) resolves, step by
/// step, without ever leaving `root`.
fn check_links_resolve_inside(root: &Path, dir: &Path) -> Result<(), RuntimeError> {
    for entry in fs::read_dir(root.join(dir))? {
        let entry = entry?;
        let rel = dir.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            check_links_resolve_inside(root, &rel)?;
        } else if kind.is_symlink() {
            resolve_in_root(root, &rel).map_err(|why| {
                RuntimeError::InvalidPackage(format!("symlink {:?}: {why}", rel.display()))
            })?;
        }
    }
    Ok(())
}

/// Resolves the relative path `rel` inside `root` as the kernel would, following symlinks,
/// and fails as soon as a step would leave `root`. A component that does not exist is taken
/// as written (a dangling link cannot lead anywhere yet, and the tree never changes).
fn resolve_in_root(root: &Path, rel: &Path) -> Result<PathBuf, &'static str> {
    enum Step {
        Up,
        Name(std::ffi::OsString),
    }
    fn steps(path: &Path) -> Result<Vec<Step>, &'static str> {
        let mut out = Vec::new();
        for comp in path.components() {
            match comp {
                Component::CurDir => {}
                Component::ParentDir => out.push(Step::Up),
                Component::Normal(part) => out.push(Step::Name(part.to_owned())),
                Component::RootDir | Component::Prefix(_) => {
                    return Err("leads to an absolute path")
                }
            }
        }
        Ok(out)
    }
    let mut at = PathBuf::new();
    let mut pending: std::collections::VecDeque<Step> = steps(rel)?.into();
    let mut followed = 0;
    while let Some(step) = pending.pop_front() {
        match step {
            Step::Up => {
                if !at.pop() {
                    return Err("leads outside the code directory");
                }
            }
            Step::Name(part) => {
                at.push(&part);
                let here = root.join(&at);
                let is_link = fs::symlink_metadata(&here)
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false);
                if is_link {
                    followed += 1;
                    if followed > MAX_LINKS_FOLLOWED {
                        return Err("too many levels of symbolic links");
                    }
                    at.pop();
                    let target = fs::read_link(&here).map_err(|_| "unreadable symlink")?;
                    for step in steps(&target)?.into_iter().rev() {
                        pending.push_front(step);
                    }
                }
            }
        }
    }
    Ok(at)
}

/// Validates an entry name and returns it as a relative path.
fn relative_entry_path(name: &str) -> Result<PathBuf, &'static str> {
    if name.contains('\0') {
        return Err("name contains NUL");
    }
    if name.starts_with('/') || name.starts_with('\\') || name.get(1..2) == Some(":") {
        return Err("absolute paths are not allowed");
    }
    let mut rel = PathBuf::new();
    for comp in Path::new(&name.replace('\\', "/")).components() {
        match comp {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("'..' components are not allowed"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not allowed")
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err("empty name");
    }
    Ok(rel)
}

/// A symlink at `link_path` (relative to the code root) may only point inside the code root.
fn check_link_target(link_path: &Path, target: &str) -> Result<(), &'static str> {
    if target.starts_with('/') {
        return Err("absolute symlink targets are not allowed");
    }
    let mut depth: i64 = link_path.components().count() as i64 - 1;
    for comp in Path::new(target).components() {
        match comp {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err("target escapes the code directory");
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute symlink targets are not allowed")
            }
        }
    }
    Ok(())
}

/// Creates `dir` and checks that, with symlinks resolved, it is still inside `root`.
fn create_dir_inside(root: &Path, dir: &Path) -> Result<(), RuntimeError> {
    fs::create_dir_all(dir).map_err(|e| {
        RuntimeError::InvalidPackage(format!("cannot create {}: {e}", dir.display()))
    })?;
    let real = fs::canonicalize(dir)?;
    if !real.starts_with(fs::canonicalize(root)?) {
        return Err(RuntimeError::InvalidPackage(format!(
            "{} leads outside the code directory through a symlink",
            dir.strip_prefix(root).unwrap_or(dir).display()
        )));
    }
    Ok(())
}

enum CopyError {
    Limit,
    Io(std::io::Error),
}

fn copy_limited(src: &mut impl Read, dst: &mut impl Write, budget: u64) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(CopyError::Io)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        if total > budget {
            return Err(CopyError::Limit);
        }
        dst.write_all(&buf[..n]).map_err(CopyError::Io)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn build(entries: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        for (name, target) in links {
            w.add_symlink(*name, *target, SimpleFileOptions::default())
                .unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn extract(zip: &[u8], max: u64) -> Result<(tempfile::TempDir, u64), RuntimeError> {
        let dir = tempfile::tempdir().unwrap();
        let n = extract_zip(zip, dir.path(), max)?;
        Ok((dir, n))
    }

    #[test]
    fn extracts_files_dirs_and_inner_links() {
        let zip = build(
            &[("index.py", b"x = 1\n"), ("lib/util.py", b"y")],
            &[("lib/alias.py", "util.py")],
        );
        let (dir, n) = extract(&zip, 1 << 20).unwrap();
        assert_eq!(n, 7);
        assert_eq!(fs::read(dir.path().join("lib/alias.py")).unwrap(), b"y");
    }

    #[test]
    fn refuses_traversal_absolute_and_escaping_links() {
        for zip in [
            build(&[("../evil", b"x")], &[]),
            build(&[("a/../../evil", b"x")], &[]),
            build(&[("/etc/evil", b"x")], &[]),
            build(&[], &[("link", "/etc/passwd")]),
            build(&[], &[("a/link", "../../outside")]),
            // Each link lexically inside, the chain leading out: x is the root, so x/l is
            // root/l, and its `..` is the code directory's parent.
            build(&[], &[("x", "."), ("x/l", "..")]),
            build(&[("a/b/f", b"")], &[("x", "."), ("y", "x/..")]),
            build(&[], &[("loop1", "loop2"), ("loop2", "loop1")]),
        ] {
            let err = extract(&zip, 1 << 20).unwrap_err();
            assert!(matches!(err, RuntimeError::InvalidPackage(_)), "{err}");
        }
    }

    #[test]
    fn refuses_oversized_and_garbage() {
        let zip = build(&[("big", &vec![0u8; 10_000])], &[]);
        assert!(matches!(
            extract(&zip, 9_999),
            Err(RuntimeError::PackageTooLarge { .. })
        ));
        assert!(matches!(
            extract(b"not a zip", 100),
            Err(RuntimeError::InvalidPackage(_))
        ));
    }
}
