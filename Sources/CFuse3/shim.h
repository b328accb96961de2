// CFuse3: libfuse3 low-level API for Swift. Only macro and variadic wrappers live here.
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
