// FastDFSDevServer: placeholder, replaced by the real target.
