//! [`NullTree`]: the rules of [`crate::DiskTree`] applied to a model of the tree; nothing is
//! written.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{parent_of, Disposition, Stamp, Tree, TreeError, TreeFile};

/// What is at a path of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Directory,
    File,
    Symlink,
}

/// A tree that checks every write as [`crate::DiskTree`] would and keeps only the kind of what
/// is at each path: a second write of a path, a directory through a file or a link, a
/// replacement of anything but a regular file are refused alike. Handles made by
/// [`Tree::fork`] share one model.
#[derive(Clone, Default)]
pub struct NullTree {
    model: Arc<Mutex<HashMap<String, Kind>>>,
    buffer: Vec<u8>,
}

/// A file being "written": its bytes go nowhere.
pub struct NullFile;

impl Write for NullFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl TreeFile for NullFile {}

impl NullTree {
    pub fn new() -> Self {
        NullTree::default()
    }

    /// Records a file that is there before the install writes (the venv's own files).
    pub fn seed_file(&self, path: &str) {
        self.seed(path, Kind::File);
    }

    /// Records a symbolic link that is there before the install writes (`bin/python`,
    /// `lib64`).
    pub fn seed_symlink(&self, path: &str) {
        self.seed(path, Kind::Symlink);
    }

    /// Records a directory that is there before the install writes (`include`).
    pub fn seed_directory(&self, path: &str) {
        self.seed(path, Kind::Directory);
    }

    fn seed(&self, path: &str, kind: Kind) {
        let mut model = self.model();
        if let Some(parent) = parent_of(path) {
            let _ = make_dirs(&mut model, parent);
        }
        model.insert(path.to_string(), kind);
    }

    /// How many files and links the model holds.
    pub fn entries(&self) -> usize {
        self.model()
            .values()
            .filter(|kind| **kind != Kind::Directory)
            .count()
    }

    /// The paths of the files and links the model holds, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = (self.model().iter())
            .filter(|(_, kind)| **kind != Kind::Directory)
            .map(|(path, _)| path.clone())
            .collect();
        files.sort_unstable();
        files
    }

    fn model(&self) -> MutexGuard<'_, HashMap<String, Kind>> {
        self.model
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Inserts `kind` at `destination` when nothing is there.
    fn create(&self, destination: &str, kind: Kind) -> Result<(), TreeError> {
        let mut model = self.model();
        if let Some(parent) = parent_of(destination) {
            make_dirs(&mut model, parent)?;
        }
        if model.contains_key(destination) {
            return Err(taken(destination));
        }
        model.insert(destination.to_string(), kind);
        Ok(())
    }
}

fn taken(path: &str) -> TreeError {
    TreeError::PathTaken {
        path: path.to_string(),
    }
}

/// `create_dirs_below` on the model: each component absent or a real directory.
fn make_dirs(model: &mut HashMap<String, Kind>, relative: &str) -> Result<(), TreeError> {
    let mut end = 0;
    for component in relative.split('/') {
        end += component.len();
        if !component.is_empty() {
            let prefix = &relative[..end];
            match model.get(prefix) {
                None => {
                    model.insert(prefix.to_string(), Kind::Directory);
                }
                Some(Kind::Directory) => {}
                Some(_) => return Err(taken(prefix)),
            }
        }
        end += 1;
    }
    Ok(())
}

impl Tree for NullTree {
    type File = NullFile;

    fn fork(&self) -> Self {
        NullTree {
            model: Arc::clone(&self.model),
            buffer: Vec::new(),
        }
    }

    fn create_dirs(&mut self, relative: &str) -> Result<(), TreeError> {
        make_dirs(&mut self.model(), relative)
    }

    fn symlink(&mut self, destination: &str, _target: &str) -> Result<(), TreeError> {
        self.create(destination, Kind::Symlink)
    }

    fn open(
        &mut self,
        destination: &str,
        _mode: u32,
        disposition: Disposition,
    ) -> Result<NullFile, TreeError> {
        match disposition {
            Disposition::Replace => {
                if let Some(parent) = parent_of(destination) {
                    make_dirs(&mut self.model(), parent)?;
                }
            }
            _ => self.create(destination, Kind::File)?,
        }
        Ok(NullFile)
    }

    fn close(
        &mut self,
        _file: NullFile,
        destination: &str,
        disposition: Disposition,
        _mtime: Option<std::time::SystemTime>,
    ) -> Result<Option<Stamp>, TreeError> {
        if disposition == Disposition::Replace {
            let mut model = self.model();
            match model.get(destination) {
                None | Some(Kind::File) => {
                    model.insert(destination.to_string(), Kind::File);
                }
                Some(_) => return Err(taken(destination)),
            }
        }
        Ok(None)
    }

    fn abandon(&mut self, _file: NullFile) {}

    fn path_of(&self, destination: &str) -> PathBuf {
        PathBuf::from(destination)
    }

    fn buffer(&mut self) -> Vec<u8> {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.resize(64 * 1024, 0);
        buffer
    }

    fn restore_buffer(&mut self, buffer: Vec<u8>) {
        self.buffer = buffer;
    }
}
