//! Reading user inputs: manifests, templates, values, scenarios, series, event payloads.
//!
//! Every file the tool reads on a user's behalf goes through here, so that none of them can
//! hang it or exhaust memory: only regular files are read (a device, FIFO or socket is refused
//! before it is opened, so `/dev/zero` or a FIFO with no writer cannot block or fill memory),
//! each file is capped at [`MAX_FILE_BYTES`] and everything one command reads at
//! [`MAX_TOTAL_BYTES`], and directory walks stay inside their root (a symbolic link is followed
//! only when it resolves inside the root, and each directory is entered once, so link loops
//! and links to `/` cannot make a walk endless).

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest file read (8 MiB): far beyond any manifest, small enough to keep memory bounded.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// The most one process reads from inputs in all (64 MiB).
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// The most files a directory walk collects.
pub const MAX_WALK_FILES: usize = 10_000;

/// The deepest a directory walk goes.
pub const MAX_WALK_DEPTH: usize = 64;

/// How `-` names standard input among the inputs.
pub const STDIN: &str = "-";

static TOTAL_READ: AtomicU64 = AtomicU64::new(0);

/// Why an input could not be read. Each message names the path and says what to do.
#[derive(Debug)]
pub struct InputError {
    pub path: PathBuf,
    pub kind: InputErrorKind,
}

#[derive(Debug)]
pub enum InputErrorKind {
    /// Not a regular file or directory: a device, FIFO, socket.
    NotRegular(&'static str),
    TooLarge(u64),
    TotalTooLarge(u64),
    NotUtf8(usize),
    /// A symbolic link inside a walked directory that resolves outside it.
    Escapes {
        target: PathBuf,
        root: PathBuf,
    },
    /// A symbolic link that cannot be resolved (dangling, or a loop).
    BrokenLink(String),
    TooManyFiles(usize),
    TooDeep(usize),
    Io(std::io::Error),
}

impl InputError {
    fn new(path: &Path, kind: InputErrorKind) -> Self {
        InputError {
            path: path.to_path_buf(),
            kind,
        }
    }

    /// The message without the hint.
    pub fn reason(&self) -> String {
        let path = display(&self.path);
        match &self.kind {
            InputErrorKind::NotRegular(what) => {
                format!("`{path}` is {what}, not a regular file")
            }
            InputErrorKind::TooLarge(limit) => {
                format!("`{path}` is larger than {}", size(*limit))
            }
            InputErrorKind::TotalTooLarge(limit) => format!(
                "reading `{path}` would take the inputs beyond {} in all",
                size(*limit)
            ),
            InputErrorKind::NotUtf8(offset) => {
                format!("`{path}` is not UTF-8 (invalid byte at offset {offset})")
            }
            InputErrorKind::Escapes { target, root } => format!(
                "`{path}` is a symbolic link to `{}`, outside `{}`",
                target.display(),
                root.display()
            ),
            InputErrorKind::BrokenLink(reason) => {
                format!("`{path}` is a symbolic link that cannot be followed: {reason}")
            }
            InputErrorKind::TooManyFiles(limit) => {
                format!("`{path}` holds more than {limit} files")
            }
            InputErrorKind::TooDeep(limit) => {
                format!("`{path}` nests directories more than {limit} deep")
            }
            InputErrorKind::Io(error) => format!("cannot read `{path}`: {}", io_reason(error)),
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match &self.kind {
            InputErrorKind::NotRegular(_) => {
                "name a regular file; to read a stream, pipe it to standard input with `-`"
            }
            InputErrorKind::TooLarge(_) | InputErrorKind::TotalTooLarge(_) => {
                "inputs are capped at 8 MiB per file and 64 MiB in all; split the manifests or name fewer inputs"
            }
            InputErrorKind::NotUtf8(_) => "save the file as UTF-8",
            InputErrorKind::Escapes { .. } => {
                "symbolic links are followed only inside the directory given; name the target as an input of its own"
            }
            InputErrorKind::BrokenLink(_) => "fix or remove the link",
            InputErrorKind::TooManyFiles(_) | InputErrorKind::TooDeep(_) => {
                "name the directories that hold the manifests"
            }
            InputErrorKind::Io(error) if error.kind() == std::io::ErrorKind::NotFound => {
                "check the path"
            }
            InputErrorKind::Io(_) => "check the path and its permissions",
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n\nhint: {}", self.reason(), self.hint())
    }
}

impl std::error::Error for InputError {}

fn display(path: &Path) -> String {
    if path == Path::new(STDIN) {
        "standard input".to_string()
    } else {
        path.display().to_string()
    }
}

fn size(bytes: u64) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

/// An I/O error in the user's words (no `(os error 2)`).
pub fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "is a directory".to_string(),
        _ => {
            let text = error.to_string();
            let text = match text.find(" (os error") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            text.to_lowercase()
        }
    }
}

fn file_type_name(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Read a regular file as UTF-8, bounded. `-` reads standard input.
pub fn read_text(path: &Path) -> Result<String, InputError> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|error| {
        InputError::new(
            path,
            InputErrorKind::NotUtf8(error.utf8_error().valid_up_to()),
        )
    })
}

/// Read a regular file, bounded. `-` reads standard input.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, InputError> {
    if path == Path::new(STDIN) {
        return read_bounded(path, std::io::stdin().lock());
    }
    // Checked before opening: opening a FIFO blocks until a writer comes.
    let metadata =
        std::fs::metadata(path).map_err(|e| InputError::new(path, InputErrorKind::Io(e)))?;
    if !metadata.is_file() {
        return Err(InputError::new(
            path,
            InputErrorKind::NotRegular(file_type_name(&metadata.file_type())),
        ));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(InputError::new(
            path,
            InputErrorKind::TooLarge(MAX_FILE_BYTES),
        ));
    }
    let file =
        std::fs::File::open(path).map_err(|e| InputError::new(path, InputErrorKind::Io(e)))?;
    read_bounded(path, file)
}

/// Read at most [`MAX_FILE_BYTES`] (files under `/proc` say they are empty and are not).
fn read_bounded(path: &Path, reader: impl Read) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| InputError::new(path, InputErrorKind::Io(e)))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(InputError::new(
            path,
            InputErrorKind::TooLarge(MAX_FILE_BYTES),
        ));
    }
    let total = TOTAL_READ.fetch_add(bytes.len() as u64, Ordering::Relaxed) + bytes.len() as u64;
    if total > MAX_TOTAL_BYTES {
        return Err(InputError::new(
            path,
            InputErrorKind::TotalTooLarge(MAX_TOTAL_BYTES),
        ));
    }
    Ok(bytes)
}

/// Whether `path` names a directory (following links); `-` never does.
pub fn is_dir(path: &Path) -> bool {
    path != Path::new(STDIN) && path.is_dir()
}

/// Every file under `root`, as paths relative to it, sorted. Hidden entries are left out.
/// Symbolic links are followed only when they resolve inside `root`; each directory is
/// entered once. Devices, FIFOs and sockets are listed (and refused when read), so that a
/// `.yaml` FIFO is reported rather than skipped.
pub fn walk(root: &Path) -> Result<Vec<PathBuf>, InputError> {
    let canonical_root =
        std::fs::canonicalize(root).map_err(|e| InputError::new(root, InputErrorKind::Io(e)))?;
    let mut walker = Walker {
        root,
        canonical_root: &canonical_root,
        visited: HashSet::new(),
        found: Vec::new(),
    };
    walker.visited.insert(canonical_root.clone());
    walker.dir(Path::new(""), 0)?;
    let mut found = walker.found;
    found.sort();
    Ok(found)
}

struct Walker<'a> {
    root: &'a Path,
    canonical_root: &'a Path,
    visited: HashSet<PathBuf>,
    found: Vec<PathBuf>,
}

impl Walker<'_> {
    fn dir(&mut self, relative: &Path, depth: usize) -> Result<(), InputError> {
        let dir = self.root.join(relative);
        if depth > MAX_WALK_DEPTH {
            return Err(InputError::new(
                self.root,
                InputErrorKind::TooDeep(MAX_WALK_DEPTH),
            ));
        }
        let entries =
            std::fs::read_dir(&dir).map_err(|e| InputError::new(&dir, InputErrorKind::Io(e)))?;
        let mut entries: Vec<_> = entries
            .collect::<Result<_, _>>()
            .map_err(|e| InputError::new(&dir, InputErrorKind::Io(e)))?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let child = relative.join(&name);
            let path = entry.path();
            let link_type = entry
                .file_type()
                .map_err(|e| InputError::new(&path, InputErrorKind::Io(e)))?;
            let is_dir = if link_type.is_symlink() {
                let target = std::fs::canonicalize(&path).map_err(|e| {
                    InputError::new(&path, InputErrorKind::BrokenLink(io_reason(&e)))
                })?;
                if !target.starts_with(self.canonical_root) {
                    return Err(InputError::new(
                        &path,
                        InputErrorKind::Escapes {
                            target,
                            root: self.root.to_path_buf(),
                        },
                    ));
                }
                if target.is_dir() {
                    // A link to a directory already walked (a loop, or an alias) adds nothing.
                    if !self.visited.insert(target) {
                        continue;
                    }
                    true
                } else {
                    false
                }
            } else if link_type.is_dir() {
                let canonical = std::fs::canonicalize(&path)
                    .map_err(|e| InputError::new(&path, InputErrorKind::Io(e)))?;
                if !self.visited.insert(canonical) {
                    continue;
                }
                true
            } else {
                false
            };
            if is_dir {
                self.dir(&child, depth + 1)?;
            } else {
                if self.found.len() >= MAX_WALK_FILES {
                    return Err(InputError::new(
                        self.root,
                        InputErrorKind::TooManyFiles(MAX_WALK_FILES),
                    ));
                }
                self.found.push(child);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo");
        assert!(status.success());
    }

    #[test]
    fn devices_and_fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = dir.path().join("pipe.yaml");
        fifo(&pipe);
        let error = read_text(&pipe).unwrap_err();
        assert!(
            matches!(error.kind, InputErrorKind::NotRegular(_)),
            "{error}"
        );
        assert!(
            error.to_string().contains("pipe.yaml` is a FIFO"),
            "{error}"
        );
        for device in ["/dev/zero", "/dev/urandom", "/dev/null"] {
            let error = read_text(Path::new(device)).unwrap_err();
            assert!(
                error.reason() == format!("`{device}` is a character device, not a regular file"),
                "{error}"
            );
        }
        let socket_path = dir.path().join("s.yaml");
        let _socket = std::os::unix::net::UnixListener::bind(&socket_path).unwrap();
        let error = read_text(&socket_path).unwrap_err();
        assert!(error.reason().contains("is a socket"), "{error}");
        // Through a symbolic link too.
        let link = dir.path().join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read_text(&link).unwrap_err().kind,
            InputErrorKind::NotRegular(_)
        ));
    }

    #[test]
    fn large_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        let error = read_text(&big).unwrap_err();
        assert_eq!(
            error.reason(),
            format!("`{}` is larger than 8 MiB", big.display())
        );
        // A /proc file says it is empty; the read is bounded all the same.
        assert!(read_bytes(Path::new("/proc/self/status")).is_ok());
    }

    #[test]
    fn walks_survive_loops_and_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("in");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/x.yaml"), "a: 1").unwrap();
        // Loops: each directory links back to the root and to its parent.
        for (at, to) in [("a/up", ".."), ("a/b/root", "../.."), ("a/b/self", ".")] {
            std::os::unix::fs::symlink(to, root.join(at)).unwrap();
        }
        std::os::unix::fs::symlink("b/x.yaml", root.join("a/alias.yaml")).unwrap();
        let found = walk(&root).unwrap();
        assert_eq!(
            found,
            vec![PathBuf::from("a/alias.yaml"), PathBuf::from("a/b/x.yaml")]
        );

        std::os::unix::fs::symlink("/", root.join("everything")).unwrap();
        let error = walk(&root).unwrap_err();
        assert!(
            matches!(error.kind, InputErrorKind::Escapes { .. }),
            "{error}"
        );
        assert!(
            error
                .reason()
                .contains("is a symbolic link to `/`, outside"),
            "{error}"
        );
        std::fs::remove_file(root.join("everything")).unwrap();

        std::os::unix::fs::symlink("loop2", root.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", root.join("loop2")).unwrap();
        let error = walk(&root).unwrap_err();
        assert!(
            matches!(error.kind, InputErrorKind::BrokenLink(_)),
            "{error}"
        );
    }

    #[test]
    fn exponential_link_fans_are_walked_once() {
        // Each level links twice to the next: without the visited set, 2^20 paths.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for level in 0..20 {
            let here = root.join(format!("d{level}"));
            std::fs::create_dir(&here).unwrap();
            if level > 0 {
                for name in ["l", "r"] {
                    std::os::unix::fs::symlink(&here, root.join(format!("d{}/{name}", level - 1)))
                        .unwrap();
                }
            }
        }
        std::fs::write(root.join("d19/x.yaml"), "a: 1").unwrap();
        let found = walk(root).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
    }
}
