//! Reading files that users (or agents) point swr at: tasks.md and config files. Such a path
//! can name a FIFO, whose `open` blocks until a writer appears (every command would hang), or
//! `/dev/zero`, which never ends (swr would grow until the OOM killer came). Only regular files
//! are read, opened without blocking, and never more than a cap.

use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The most swr reads of one tasks.md or config file. Real ones are kilobytes; 64 MB leaves
/// room for anything hand-made while bounding what a mistake can cost.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The whole content of the regular file at `path` (symlinks followed), or an error: the
/// open's own, `InvalidInput` naming what else it is (a FIFO, a character device...), or
/// `FileTooLarge` past `max` bytes.
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO without a writer blocks `open` itself; non-blocking, the open returns and the
        // type check below refuses it. Regular files ignore the flag.
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({what}); swr reads only regular files"),
        ));
    }
    let too_large = || {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {} MB, the most swr reads", max / (1024 * 1024)),
        )
    };
    if meta.len() > max {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The size can change between fstat and read (a file being written): the cap holds anyway.
    file.take(max.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(too_large());
    }
    Ok(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_and_refuses_the_rest_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "hello").unwrap();
        assert_eq!(read_regular(&ok, 10).unwrap(), b"hello");

        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_regular(&fifo, 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("a FIFO"), "{e}");

        let e = read_regular(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        let e = read_regular(dir.path(), 10).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");

        let big = dir.path().join("big");
        std::fs::File::create(&big).unwrap().set_len(11).unwrap();
        let e = read_regular(&big, 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert!(read_regular(&dir.path().join("missing"), 10).is_err());
    }
}
