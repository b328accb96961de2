// CFuse3: libfuse3 low-level API for Swift. Only macro and variadic wrappers live here.
// FUSE_USE_VERSION must be defined in this header (not via cSettings) so Swift's Clang importer sees it.
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <string.h>
// mallopt: the daemon keeps its 1 MiB read buffers on the heap (see fdfsfs main.swift).
#include <malloc.h>

// fuse_session_new becomes a macro over fuse_session_new_fn in libfuse >= 3.17: one stable spelling.
static inline struct fuse_session *cfuse_session_new(struct fuse_args *args,
        const struct fuse_lowlevel_ops *op, size_t op_size, void *userdata) {
    return fuse_session_new(args, op, op_size, userdata);
}

// fuse_session_loop_mt is a versioned macro in some builds; the loop config API is opaque since 3.12.
static inline int cfuse_session_loop_mt(struct fuse_session *se, int clone_fd, unsigned max_threads) {
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    if (cfg == NULL) return -1;
    fuse_loop_cfg_set_clone_fd(cfg, (unsigned)clone_fd);
    fuse_loop_cfg_set_max_threads(cfg, max_threads);
    fuse_loop_cfg_set_idle_threads(cfg, 4);
    int rc = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
    return rc;
}

// fuse_log is variadic, which Swift cannot call.
static inline void cfuse_log(enum fuse_log_level level, const char *msg) {
    fuse_log(level, "%s", msg);
}

// fuse_entry_param has no designated initializer in Swift; zeroed value helper.
static inline struct fuse_entry_param cfuse_entry_param_zero(void) {
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    return e;
}
