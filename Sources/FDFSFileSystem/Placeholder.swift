// FDFSFileSystem: placeholder, replaced by the real target.
