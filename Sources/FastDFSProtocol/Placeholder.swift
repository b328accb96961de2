// FastDFSProtocol: placeholder, replaced by the real target.
