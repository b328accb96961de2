// FastDFS: placeholder, replaced by the real target.
