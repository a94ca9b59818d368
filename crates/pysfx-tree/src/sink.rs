//! [`Sink`]: either tree behind one type, so a program that installs into both (the stub
//! installs into a `DiskTree` and verifies into a `NullTree`) carries one copy of the install's
//! code instead of one per tree type.

use std::io::Write;
use std::path::PathBuf;

use crate::disk::DiskFile;
use crate::null::NullFile;
use crate::{DiskTree, Disposition, NullTree, Stamp, Tree, TreeError, TreeFile};

/// A [`DiskTree`] or a [`NullTree`].
pub enum Sink {
    Disk(DiskTree),
    Null(NullTree),
}

/// A file of a [`Sink`].
pub enum SinkFile {
    Disk(DiskFile),
    Null(NullFile),
}

impl Write for SinkFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            SinkFile::Disk(file) => file.write(bytes),
            SinkFile::Null(file) => file.write(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            SinkFile::Disk(file) => file.flush(),
            SinkFile::Null(file) => file.flush(),
        }
    }
}

impl TreeFile for SinkFile {}

impl From<DiskTree> for Sink {
    fn from(tree: DiskTree) -> Self {
        Sink::Disk(tree)
    }
}

impl From<NullTree> for Sink {
    fn from(tree: NullTree) -> Self {
        Sink::Null(tree)
    }
}

impl Tree for Sink {
    type File = SinkFile;

    fn fork(&self) -> Self {
        match self {
            Sink::Disk(tree) => Sink::Disk(tree.fork()),
            Sink::Null(tree) => Sink::Null(tree.fork()),
        }
    }

    fn create_dirs(&mut self, relative: &str) -> Result<(), TreeError> {
        match self {
            Sink::Disk(tree) => tree.create_dirs(relative),
            Sink::Null(tree) => tree.create_dirs(relative),
        }
    }

    fn symlink(&mut self, destination: &str, target: &str) -> Result<(), TreeError> {
        match self {
            Sink::Disk(tree) => tree.symlink(destination, target),
            Sink::Null(tree) => tree.symlink(destination, target),
        }
    }

    fn open(
        &mut self,
        destination: &str,
        mode: u32,
        disposition: Disposition,
    ) -> Result<SinkFile, TreeError> {
        match self {
            Sink::Disk(tree) => tree
                .open(destination, mode, disposition)
                .map(SinkFile::Disk),
            Sink::Null(tree) => tree
                .open(destination, mode, disposition)
                .map(SinkFile::Null),
        }
    }

    fn close(
        &mut self,
        file: SinkFile,
        destination: &str,
        disposition: Disposition,
        mtime: Option<std::time::SystemTime>,
    ) -> Result<Option<Stamp>, TreeError> {
        match (self, file) {
            (Sink::Disk(tree), SinkFile::Disk(file)) => {
                tree.close(file, destination, disposition, mtime)
            }
            (Sink::Null(tree), SinkFile::Null(file)) => {
                tree.close(file, destination, disposition, mtime)
            }
            _ => Ok(None),
        }
    }

    fn abandon(&mut self, file: SinkFile) {
        match (self, file) {
            (Sink::Disk(tree), SinkFile::Disk(file)) => tree.abandon(file),
            (Sink::Null(tree), SinkFile::Null(file)) => tree.abandon(file),
            _ => {}
        }
    }

    fn path_of(&self, destination: &str) -> PathBuf {
        match self {
            Sink::Disk(tree) => tree.path_of(destination),
            Sink::Null(tree) => tree.path_of(destination),
        }
    }

    fn buffer(&mut self) -> Vec<u8> {
        match self {
            Sink::Disk(tree) => tree.buffer(),
            Sink::Null(tree) => tree.buffer(),
        }
    }

    fn restore_buffer(&mut self, buffer: Vec<u8>) {
        match self {
            Sink::Disk(tree) => tree.restore_buffer(buffer),
            Sink::Null(tree) => tree.restore_buffer(buffer),
        }
    }

    fn link_from(
        &mut self,
        destination: &str,
        source: crate::Outside<'_>,
    ) -> Result<Option<(std::fs::File, std::fs::Metadata)>, TreeError> {
        match self {
            Sink::Disk(tree) => tree.link_from(destination, source),
            Sink::Null(tree) => tree.link_from(destination, source),
        }
    }

    fn link(
        &mut self,
        destination: &str,
        source: crate::Outside<'_>,
    ) -> Result<Option<crate::Linked>, TreeError> {
        match self {
            Sink::Disk(tree) => tree.link(destination, source),
            Sink::Null(tree) => tree.link(destination, source),
        }
    }

    fn unlink(&mut self, destination: &str) -> Result<(), TreeError> {
        match self {
            Sink::Disk(tree) => tree.unlink(destination),
            Sink::Null(tree) => tree.unlink(destination),
        }
    }
}
