#!/usr/bin/env python3
"""Side-by-side POSIX test: the same operations on an fdfsfs mount and on a local ext4 directory.

  posix-compare.py FDFSFS_DIR EXT4_DIR [--readme README.md] [--only SUBSTRING] [--list]

Run as root (plain python3, stdlib only). Each step runs in a fresh directory on each side,
performs its operations (as root, or as unprivileged users in a forked child that drops to
`nobody` or uid 1234 with os.setresuid) and records what each call returned: a value, or the
errno name. After the step the whole step directory is recorded too (names as bytes, type,
permission bits, owner, link count, size of files and symlinks, device numbers, symlink
targets; not times, which steps check where they matter). The two records must be equal.

A step whose id README lists as a deliberate difference (a line "- `id`: reason" in the section
that starts with the heading "#### Deliberate differences from ext4") may differ; it is reported
as passed with the note "deliberate". Every listed id must exist as a step.

Prints "PASS: id" or "FAIL: id" with the first differing observations, and the last line
"N passed, M failed". Exit status 0 when nothing failed.
"""
import argparse
import ctypes
import errno
import os
import pickle
import re
import socket
import stat
import sys
import time
import traceback

NOBODY = (65534, 65534)
OTHER = (1234, 1234)      # a second unprivileged user (no passwd entry needed)
GROUP = 5678              # a group neither user is in

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2

libc = ctypes.CDLL(None, use_errno=True)


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def renameat2(old, new, flags):
    if libc.renameat2(AT_FDCWD, old, AT_FDCWD, new, ctypes.c_uint(flags)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def utimensat(path, atime, mtime, nofollow=False):
    """atime/mtime: nanoseconds, or UTIME_NOW / UTIME_OMIT (as ("now",) / ("omit",))."""
    def ts(v):
        if v == "now":
            return Timespec(0, UTIME_NOW)
        if v == "omit":
            return Timespec(0, UTIME_OMIT)
        return Timespec(v // 10**9, v % 10**9)
    times = (Timespec * 2)(ts(atime), ts(mtime))
    if libc.utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW if nofollow else 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def ename(e):
    return errno.errorcode.get(e, str(e))


TYPES = {stat.S_IFREG: "reg", stat.S_IFDIR: "dir", stat.S_IFLNK: "lnk", stat.S_IFIFO: "fifo",
         stat.S_IFSOCK: "sock", stat.S_IFCHR: "chr", stat.S_IFBLK: "blk"}


def describe(st, path=None):
    """What is compared of a stat result: no times, inode numbers, blocks or directory sizes."""
    t = TYPES.get(stat.S_IFMT(st.st_mode), "?")
    d = f"{t} {stat.S_IMODE(st.st_mode):04o} {st.st_uid}:{st.st_gid} nlink={st.st_nlink}"
    if t in ("reg", "lnk"):
        d += f" size={st.st_size}"
    if t in ("chr", "blk"):
        d += f" rdev={os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    if t == "lnk" and path is not None:
        d += f" -> {os.readlink(path)!r}"
    return d


class Ctx:
    """One side of one step: its directory, and the observations made there."""

    def __init__(self, side, base):
        self.side, self.base, self.obs = side, base, []

    def p(self, *names):
        path = self.base
        for n in names:
            path = os.path.join(path, n if isinstance(n, bytes) else n.encode())
        return path

    def note(self, label, value):
        self.obs.append((label, value))

    def do(self, label, fn, *args, **kw):
        """Runs fn and records its result (or the errno); returns the result (None on error)."""
        try:
            r = fn(*args, **kw)
        except OSError as e:
            self.note(label, ename(e.errno))
            return None
        self.note(label, "ok" if r is None else r if isinstance(r, (bool, str, bytes)) else "ok")
        return r

    def lstat(self, label, *names):
        try:
            st = os.lstat(self.p(*names))
        except OSError as e:
            self.note(label, ename(e.errno))
            return None
        self.note(label, describe(st, self.p(*names)))
        return st

    def as_user(self, ids, fn):
        """Runs fn(self) in a child process as uid/gid `ids` (no supplementary groups); its
        observations are appended here."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 0
            try:
                os.setgroups([])
                os.setresgid(ids[1], ids[1], ids[1])
                os.setresuid(ids[0], ids[0], ids[0])
                self.obs = []
                fn(self)
            except BaseException:
                self.obs.append(("exception", traceback.format_exc(limit=3)))
                code = 1
            with os.fdopen(w, "wb") as f:
                pickle.dump(self.obs, f)
            os._exit(code)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        self.obs += [(f"[{ids[0]}] {l}", v) for l, v in pickle.loads(data)]

    def snapshot(self):
        """The step directory's tree, as root."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.base):
            dirnames.sort()
            for n in sorted(dirnames + filenames):
                full = os.path.join(dirpath, n)
                out.append((os.path.relpath(full, self.base), describe(os.lstat(full), full)))
        return out

    # file-type helpers ---------------------------------------------------------------------------
    def make(self, kind, *names, mode=0o644):
        """Creates a file of `kind` (KINDS, or "empty": a regular file with no data)."""
        path = self.p(*names)
        if kind == "reg":
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
            os.write(fd, b"content\n")
            os.close(fd)
        elif kind == "empty":
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode))
        elif kind == "dir":
            os.mkdir(path, mode | 0o111)
        elif kind == "lnk":
            os.symlink(b"target-of-" + os.path.basename(path), path)
        elif kind == "fifo":
            os.mkfifo(path, mode)
        elif kind == "sock":
            os.mknod(path, stat.S_IFSOCK | mode)
        elif kind == "chr":
            os.mknod(path, stat.S_IFCHR | mode, os.makedev(1, 3))
        elif kind == "blk":
            os.mknod(path, stat.S_IFBLK | mode, os.makedev(7, 200))


KINDS = ["reg", "dir", "lnk", "fifo", "sock", "chr", "blk"]
STEPS = []


def step(sid):
    def deco(fn):
        STEPS.append((sid, fn))
        return fn
    return deco


def for_kinds(prefix, kinds=KINDS):
    """Registers one step per file type: fn(ctx, kind)."""
    def deco(fn):
        for k in kinds:
            STEPS.append((f"{prefix}.{k}", lambda c, k=k: fn(c, k)))
        return fn
    return deco


# --- creating each type, and what stat and readdir say ---------------------------------------------
@for_kinds("create")
def _(c, k):
    c.do("create", c.make, k, "x")
    c.lstat("lstat", "x")
    c.note("readdir", sorted((e.name, TYPES.get(stat.S_IFMT(e.stat(follow_symlinks=False).st_mode)), e.is_dir(follow_symlinks=False),
                              e.is_file(follow_symlinks=False), e.is_symlink()) for e in os.scandir(c.base)))


@step("create.bind-unix-socket")
def _(c):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.do("bind", s.bind, c.p("s"))
    c.lstat("lstat", "s")
    s.listen(1)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            cl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            cl.connect(c.p("s"))
            cl.sendall(b"ping")
            code = 0 if cl.recv(4) == b"pong" else 2
        finally:
            os._exit(code)
    s.settimeout(10)
    try:
        conn, _ = s.accept()
        c.note("accepted", conn.recv(4))
        conn.sendall(b"pong")
        conn.close()
    except OSError as e:
        c.note("accept", ename(e.errno or errno.ETIMEDOUT))
    c.note("client exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    s2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.do("bind again", s2.bind, c.p("s"))
    s.close()
    s2.close()
    c.do("unlink", os.unlink, c.p("s"))
    c.do("connect after unlink", socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect, c.p("s"))


@step("create.fifo-pipe-between-processes")
def _(c):
    os.mkfifo(c.p("p"), 0o600)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fd = os.open(c.p("p"), os.O_WRONLY)
            os.write(fd, b"through the pipe\n" * 1000)
            os.close(fd)
            code = 0
        finally:
            os._exit(code)
    fd = os.open(c.p("p"), os.O_RDONLY)
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    c.note("read", (len(data), data[:17]))
    c.note("writer exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    c.lstat("lstat", "p")
    c.do("open O_WRONLY|O_NONBLOCK without a reader", os.open, c.p("p"), os.O_WRONLY | os.O_NONBLOCK)
    fd = c.do("open O_RDONLY|O_NONBLOCK", os.open, c.p("p"), os.O_RDONLY | os.O_NONBLOCK)
    if fd is not None:
        c.do("read empty", os.read, fd, 10)
        os.close(fd)


@step("create.mknod-types-and-modes")
def _(c):
    c.do("mknod S_IFDIR", os.mknod, c.p("d"), stat.S_IFDIR | 0o755)
    c.do("mknod bad type", os.mknod, c.p("bad"), 0o170000 | 0o644)
    c.do("mknod S_IFREG", os.mknod, c.p("r"), stat.S_IFREG | 0o640)
    c.do("mknod type 0", os.mknod, c.p("r0"), 0o600)
    c.do("mknod setuid fifo", os.mknod, c.p("su"), stat.S_IFIFO | 0o4755)
    c.do("mknod chr 0:0", os.mknod, c.p("c0"), stat.S_IFCHR | 0o600, os.makedev(0, 0))
    c.do("mknod blk large numbers", os.mknod, c.p("big"), stat.S_IFBLK | 0o600, os.makedev(4095, 1048575))
    c.do("mknod over existing", os.mknod, c.p("r"), stat.S_IFIFO | 0o600)
    c.do("mkfifo in missing dir", os.mkfifo, c.p("nope", "p"))
    c.do("mkfifo under a file", os.mkfifo, c.p("r", "p"))


@step("create.special-files-as-nobody")
def _(c):
    os.mkdir(c.p("u"))
    os.chown(c.p("u"), *NOBODY)

    def body(c):
        c.do("mkfifo", os.mkfifo, c.p("u", "p"), 0o640)
        c.do("mknod socket", os.mknod, c.p("u", "s"), stat.S_IFSOCK | 0o640)
        c.do("mknod chr", os.mknod, c.p("u", "c"), stat.S_IFCHR | 0o640, os.makedev(1, 3))
        c.do("mknod blk", os.mknod, c.p("u", "b"), stat.S_IFBLK | 0o640, os.makedev(7, 1))
        c.do("mkfifo in root's dir", os.mkfifo, c.p("p"))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.do("bind in own dir", s.bind, c.p("u", "sock"))
        s.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.do("bind in root's dir", s.bind, c.p("sock"))
        s.close()
    c.as_user(NOBODY, body)


# --- every call on every type ------------------------------------------------------------------------
OPEN_FLAGS = [("O_RDONLY|O_NONBLOCK", os.O_RDONLY | os.O_NONBLOCK), ("O_WRONLY|O_NONBLOCK", os.O_WRONLY | os.O_NONBLOCK),
              ("O_RDWR|O_NONBLOCK", os.O_RDWR | os.O_NONBLOCK), ("O_RDONLY|O_TRUNC|O_NONBLOCK", os.O_RDONLY | os.O_TRUNC | os.O_NONBLOCK),
              ("O_WRONLY|O_TRUNC|O_NONBLOCK", os.O_WRONLY | os.O_TRUNC | os.O_NONBLOCK),
              ("O_CREAT|O_EXCL", os.O_CREAT | os.O_EXCL | os.O_WRONLY), ("O_CREAT|O_RDONLY|O_NONBLOCK", os.O_CREAT | os.O_RDONLY | os.O_NONBLOCK),
              ("O_CREAT|O_WRONLY|O_NONBLOCK", os.O_CREAT | os.O_WRONLY | os.O_NONBLOCK),
              ("O_DIRECTORY", os.O_RDONLY | os.O_DIRECTORY), ("O_NOFOLLOW|O_NONBLOCK", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK),
              ("O_PATH|O_NOFOLLOW", os.O_PATH | os.O_NOFOLLOW), ("O_DIRECTORY|O_CREAT", os.O_RDONLY | os.O_DIRECTORY | os.O_CREAT)]


@for_kinds("open")
def _(c, k):
    c.make(k, "x")
    if k == "lnk":
        c.make("reg", b"target-of-x")
    for name, flags in OPEN_FLAGS:
        fd = c.do(name, os.open, c.p("x"), flags, 0o644)
        if fd is not None:
            os.close(fd)
    c.lstat("after", "x")


@step("open.through-dangling-symlink")
def _(c):
    os.symlink(b"missing", c.p("l"))
    c.do("O_CREAT|O_EXCL through dangling link", os.open, c.p("l"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    fd = c.do("O_CREAT through dangling link", os.open, c.p("l"), os.O_CREAT | os.O_WRONLY, 0o600)
    if fd is not None:
        os.close(fd)
    c.lstat("created target", "missing")


@for_kinds("path-through")
def _(c, k):
    c.make(k, "x")
    if k == "lnk":
        c.make("reg", b"target-of-x")
    c.do("stat x/y", os.stat, c.p("x", "y"))
    c.do("open x/y O_CREAT", os.open, c.p("x", "y"), os.O_CREAT | os.O_WRONLY, 0o644)
    c.do("mkdir x/y", os.mkdir, c.p("x", "y"))
    c.do("mkfifo x/y", os.mkfifo, c.p("x", "y"))
    c.do("symlink x/y", os.symlink, b"t", c.p("x", "y"))
    c.do("unlink x/y", os.unlink, c.p("x", "y"))
    c.do("rename x/y", os.rename, c.p("x", "y"), c.p("z"))
    c.do("stat x/", os.stat, c.p("x") + b"/")
    c.do("listdir x", lambda: sorted(os.listdir(c.p("x"))) and None)


@for_kinds("truncate")
def _(c, k):
    c.make(k, "x")
    if k == "lnk":
        c.make("reg", b"target-of-x")
    c.do("truncate 3", os.truncate, c.p("x"), 3)
    c.do("truncate -1", os.truncate, c.p("x"), -1)
    c.do("truncate beyond the largest file", os.truncate, c.p("x"), 999_999_999_999_999)
    c.lstat("after", "x")


@for_kinds("unlink")
def _(c, k):
    c.make(k, "x")
    c.do("unlink", os.unlink, c.p("x"))
    c.lstat("after", "x")


@for_kinds("rmdir")
def _(c, k):
    c.make(k, "x")
    c.do("rmdir", os.rmdir, c.p("x"))
    c.lstat("after", "x")


@for_kinds("link")
def _(c, k):
    c.make(k, "x")
    c.do("link", os.link, c.p("x"), c.p("y"), follow_symlinks=False)
    c.lstat("x", "x")
    c.lstat("y", "y")
    c.note("same inode", os.path.lexists(c.p("y")) and os.lstat(c.p("x")).st_ino == os.lstat(c.p("y")).st_ino)
    c.do("link onto existing", os.link, c.p("x"), c.p("y"), follow_symlinks=False)
    c.do("unlink x", os.unlink, c.p("x")) if k != "dir" else None
    c.lstat("y after unlink of x", "y")


@for_kinds("symlink-over")
def _(c, k):
    c.make(k, "x")
    c.do("symlink over", os.symlink, b"anything", c.p("x"))
    c.do("mkdir over", os.mkdir, c.p("x"))
    c.do("mkfifo over", os.mkfifo, c.p("x"))
    c.do("mknod socket over", os.mknod, c.p("x"), stat.S_IFSOCK | 0o644)
    c.make("empty", "f")
    c.do("link over", os.link, c.p("f"), c.p("x"))
    c.lstat("after", "x")


@for_kinds("chmod")
def _(c, k):
    c.make(k, "x")
    if k == "lnk":
        c.make("reg", b"target-of-x")
    c.do("chmod 0700", os.chmod, c.p("x"), 0o700)
    c.do("chmod 07777", os.chmod, c.p("x"), 0o7777)
    c.lstat("after", "x")
    c.do("chmod missing", os.chmod, c.p("missing"), 0o700)


@for_kinds("chown")
def _(c, k):
    c.make(k, "x", mode=0o6755)
    if k != "lnk":
        os.chmod(c.p("x"), 0o6755)
    c.lstat("before", "x")
    c.do("lchown 1234:5678", os.chown, c.p("x"), 1234, 5678, follow_symlinks=False)
    c.lstat("after chown (set-id bits of non-directories are cleared)", "x")
    if k != "lnk":
        os.chmod(c.p("x"), 0o2745)   # set-group-ID without group execute: kept
    c.do("lchown -1:0", os.chown, c.p("x"), -1, 0, follow_symlinks=False)
    c.lstat("after chgrp", "x")
    c.do("lchown -1:-1", os.chown, c.p("x"), -1, -1, follow_symlinks=False)
    c.lstat("after no-op chown", "x")


@for_kinds("utimens")
def _(c, k):
    c.make(k, "x")
    if k == "lnk":
        c.make("reg", b"target-of-x")
    c.do("set both", utimensat, c.p("x"), 1_000_000_000_123_456_789, 1_100_000_000_987_654_321, nofollow=True)
    st = os.lstat(c.p("x"))
    c.note("times", (st.st_atime_ns, st.st_mtime_ns))
    before = os.lstat(c.p("x")).st_ctime_ns
    time.sleep(0.02)
    c.do("omit both", utimensat, c.p("x"), "omit", "omit", nofollow=True)
    st = os.lstat(c.p("x"))
    c.note("omit both: times and ctime unchanged", (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns == before))
    c.do("omit atime", utimensat, c.p("x"), "omit", 1_200_000_000_000_000_001, nofollow=True)
    st = os.lstat(c.p("x"))
    c.note("omit atime: times, ctime changed", (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns > before))
    t0 = time.time_ns()
    c.do("now mtime, omit atime", utimensat, c.p("x"), "omit", "now", nofollow=True)
    st = os.lstat(c.p("x"))
    c.note("now mtime", (st.st_atime_ns, t0 - 2 * 10**9 <= st.st_mtime_ns <= time.time_ns() + 2 * 10**9))
    c.do("now both", utimensat, c.p("x"), "now", "now", nofollow=True)
    st = os.lstat(c.p("x"))
    c.note("now both", abs(st.st_atime_ns - time.time_ns()) < 3 * 10**9 and abs(st.st_mtime_ns - time.time_ns()) < 3 * 10**9)
    c.do("follow the link", utimensat, c.p("x"), 1_000_000_000, 2_000_000_000) if k == "lnk" else None
    if k == "lnk":
        st = os.stat(c.p("x"))
        c.note("target's times", (st.st_atime_ns, st.st_mtime_ns))


@for_kinds("xattr")
def _(c, k):
    c.make("empty" if k == "reg" else k, "x")
    c.do("getxattr user.missing", os.getxattr, c.p("x"), "user.missing", follow_symlinks=False)
    c.do("setxattr user.k", os.setxattr, c.p("x"), "user.k", b"v", follow_symlinks=False)
    c.do("getxattr user.k", os.getxattr, c.p("x"), "user.k", follow_symlinks=False)
    c.do("listxattr", lambda: repr(sorted(os.listxattr(c.p("x"), follow_symlinks=False))))
    c.do("removexattr user.k", os.removexattr, c.p("x"), "user.k", follow_symlinks=False)
    c.do("getxattr security.selinux", os.getxattr, c.p("x"), "security.selinux", follow_symlinks=False)


@step("xattr.trusted")
def _(c):
    c.make("empty", "x")
    c.do("setxattr trusted.k", os.setxattr, c.p("x"), "trusted.k", b"v")
    c.do("getxattr trusted.k", os.getxattr, c.p("x"), "trusted.k")


@for_kinds("readlink")
def _(c, k):
    c.make(k, "x")
    c.do("readlink", os.readlink, c.p("x"))


@for_kinds("access")
def _(c, k):
    c.make(k, "x", mode=0o640)
    for m, n in [(os.F_OK, "F_OK"), (os.R_OK, "R_OK"), (os.W_OK, "W_OK"), (os.X_OK, "X_OK")]:
        c.do(f"access {n}", lambda m=m: os.access(c.p("x"), m) or None)

    def body(c):
        for m, n in [(os.F_OK, "F_OK"), (os.R_OK, "R_OK"), (os.W_OK, "W_OK")]:
            c.note(f"access {n}", os.access(c.p("x"), m))
    c.as_user(NOBODY, body)


# --- rename --------------------------------------------------------------------------------------------
def rename_matrix(c, src, dst, flags):
    c.make(src, "a")
    c.make(dst, "b")
    if dst == "dir" and flags == "full":
        c.make("reg", "b", "inside")
    if flags in (0, "full"):
        c.do("rename a b", os.rename, c.p("a"), c.p("b"))
    else:
        c.do(f"renameat2 a b {flags}", renameat2, c.p("a"), c.p("b"), flags)
    c.lstat("a", "a")
    c.lstat("b", "b")


for _s in KINDS:
    for _d in KINDS:
        STEPS.append((f"rename.{_s}-over-{_d}", lambda c, s=_s, d=_d: rename_matrix(c, s, d, 0)))
    STEPS.append((f"rename.{_s}-over-nonempty-dir", lambda c, s=_s: rename_matrix(c, s, "dir", "full")))
    for _d in ["reg", "dir", "fifo"]:
        STEPS.append((f"rename.{_s}-noreplace-{_d}", lambda c, s=_s, d=_d: rename_matrix(c, s, d, RENAME_NOREPLACE)))
        STEPS.append((f"rename.{_s}-exchange-{_d}", lambda c, s=_s, d=_d: rename_matrix(c, s, d, RENAME_EXCHANGE)))


@step("rename.errors")
def _(c):
    os.makedirs(c.p("a", "b", "c"))
    c.make("reg", "f")
    c.make("reg", "a", "g")
    os.link(c.p("f"), c.p("a", "hard"))
    c.do("missing source", os.rename, c.p("missing"), c.p("x"))
    c.do("into missing dir", os.rename, c.p("f"), c.p("missing", "x"))
    c.do("into own subtree", os.rename, c.p("a"), c.p("a", "b", "c", "a"))
    c.do("onto own child", os.rename, c.p("a"), c.p("a", "b"))
    c.do("exchange into own subtree", renameat2, c.p("a"), c.p("a", "b", "c"), RENAME_EXCHANGE)
    c.do("exchange with missing", renameat2, c.p("f"), c.p("none"), RENAME_EXCHANGE)
    c.do("noreplace to missing", renameat2, c.p("f"), c.p("f2"), RENAME_NOREPLACE)
    c.do("both flags", renameat2, c.p("f2"), c.p("f3"), RENAME_NOREPLACE | RENAME_EXCHANGE)
    c.do("bad flags", renameat2, c.p("f2"), c.p("f3"), 1 << 5)
    c.do("onto itself", os.rename, c.p("f2"), c.p("f2"))
    c.do("onto its hard link", os.rename, c.p("f2"), c.p("a", "hard"))
    c.lstat("f2 still there", "f2")
    c.lstat("hard still there", "a", "hard")
    c.do("dir to . of another", os.rename, c.p("a", "b"), c.p("a", "b", "c", "."))
    c.do("from .", os.rename, c.p("a", "b", "."), c.p("x"))
    c.do("new name too long", os.rename, c.p("f2"), c.p(b"n" * 256))
    c.do("new name 255", os.rename, c.p("f2"), c.p(b"n" * 255))
    c.do("under a file", os.rename, c.p("a", "g"), c.p(b"n" * 255, "x"))
    c.do("dir across parents", os.rename, c.p("a", "b"), c.p("b"))
    c.lstat("a nlink", "a")
    c.lstat("b nlink", "b")
    c.lstat("base nlink")


@step("rename.open-file-keeps-its-data")
def _(c):
    c.make("reg", "a")
    c.make("reg", "b")
    fd = os.open(c.p("b"), os.O_RDONLY)
    c.do("rename a over open b", os.rename, c.p("a"), c.p("b"))
    c.note("read old b", os.read(fd, 100))
    os.close(fd)


# --- link, unlink, rmdir, symlink --------------------------------------------------------------------
@step("link.errors")
def _(c):
    c.make("reg", "f")
    os.mkdir(c.p("d"))
    c.do("missing source", os.link, c.p("missing"), c.p("x"))
    c.do("into missing dir", os.link, c.p("f"), c.p("missing", "x"))
    c.do("under a file", os.link, c.p("f"), c.p("f", "x"))
    c.do("name too long", os.link, c.p("f"), c.p(b"l" * 256))
    for i in range(3):
        c.do(f"link {i}", os.link, c.p("f"), c.p("d", f"l{i}"))
    c.lstat("nlink 4", "f")
    c.make("lnk", b"s")
    c.do("follow a dangling symlink (AT_SYMLINK_FOLLOW)", os.link, c.p("s"), c.p("sf"), follow_symlinks=True)
    os.symlink(b"f", c.p("s2"))
    c.do("follow a symlink (AT_SYMLINK_FOLLOW)", os.link, c.p("s2"), c.p("sf"), follow_symlinks=True)


@step("unlink.errors")
def _(c):
    c.make("reg", "f")
    os.mkdir(c.p("d"))
    c.do("missing", os.unlink, c.p("missing"))
    c.do("under a file", os.unlink, c.p("f", "x"))
    c.do("directory", os.unlink, c.p("d"))
    c.do("trailing slash", os.unlink, c.p("f") + b"/")
    fd = os.open(c.p("f"), os.O_RDWR)
    c.do("open file", os.unlink, c.p("f"))
    c.note("read after unlink", os.pread(fd, 100, 0))
    c.do("write after unlink", os.pwrite, fd, b"more", 8)
    c.note("fstat after unlink", describe(os.fstat(fd)))
    os.close(fd)


@step("rmdir.errors")
def _(c):
    os.makedirs(c.p("d", "sub"))
    c.do("missing", os.rmdir, c.p("missing"))
    c.do(".", os.rmdir, c.p("d", "."))
    c.do("..", os.rmdir, c.p("d", "sub", ".."))
    c.do("trailing slash", os.rmdir, c.p("d", "sub") + b"/")
    c.lstat("d nlink after", "d")


@for_kinds("rmdir.not-empty")
def _(c, k):
    os.mkdir(c.p("d"))
    c.make(k, "d", "x")
    c.do("rmdir", os.rmdir, c.p("d"))
    c.make("dir", "e")
    c.do("rename empty dir over it", os.rename, c.p("e"), c.p("d"))
    os.rmdir(c.p("e"))
    c.do("unlink the child", os.rmdir if k == "dir" else os.unlink, c.p("d", "x"))
    c.do("rmdir now", os.rmdir, c.p("d"))


@step("symlink.targets")
def _(c):
    c.do("empty target", os.symlink, b"", c.p("e"))
    c.do("4095-byte target", os.symlink, b"t" * 4095, c.p("long"))
    c.do("4096-byte target", os.symlink, b"t" * 4096, c.p("toolong"))
    c.do("target with bytes that are not UTF-8", os.symlink, b"../\x80\xc0\xff/\xfe", c.p("bytes"))
    c.do("readlink", os.readlink, c.p("bytes"))
    c.do("dangling stat", os.stat, c.p("bytes"))
    os.symlink(b"loop2", c.p("loop1"))
    os.symlink(b"loop1", c.p("loop2"))
    c.do("loop", os.stat, c.p("loop1"))
    c.do("name too long", os.symlink, b"x", c.p(b"s" * 256))


# --- names as bytes ------------------------------------------------------------------------------------
@step("names.bytes-are-distinct")
def _(c):
    names = [b"bad\xff", b"bad\xfe", b"bad\xef\xbf\xbd", b"\xc3\x28", b"\xed\xa0\x80", b"\x01ctl", b"new\nline", b"sp ace",
             b"caf\xe9", b"caf\xc3\xa9", b"\x80"]
    for i, n in enumerate(names):
        fd = c.do(f"create {n!r}", os.open, c.p(n), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        if fd is not None:
            os.write(fd, b"%d" % i)
            os.close(fd)
    c.note("listdir", sorted(os.listdir(c.base)))
    c.note("contents", [open(c.p(n), "rb").read() for n in names if os.path.lexists(c.p(n))])
    c.do("unlink bad\\xff", os.unlink, c.p(b"bad\xff"))
    c.note("listdir after", sorted(os.listdir(c.base)))
    c.do("rename to bytes", os.rename, c.p(b"bad\xfe"), c.p(b"\xfe\xff"))
    c.do("link to bytes", os.link, c.p(b"\xfe\xff"), c.p(b"\xfd"))
    c.do("mkdir bytes", os.mkdir, c.p(b"dir\x99"))
    c.do("create inside", os.mkfifo, c.p(b"dir\x99", b"\xaa"))
    c.note("listdir inside", os.listdir(c.p(b"dir\x99")))


@step("names.length-counts-bytes")
def _(c):
    for label, n in [("255 x 0xff", b"\xff" * 255), ("256 x 0xff", b"\xff" * 256), ("85 x euro (255 bytes)", "€".encode() * 85),
                     ("86 x euro (258 bytes)", "€".encode() * 86), ("255 ascii", b"a" * 255), ("256 ascii", b"a" * 256)]:
        fd = c.do(f"create {label}", os.open, c.p(n), os.O_CREAT | os.O_WRONLY, 0o644)
        if fd is not None:
            os.close(fd)
        c.do(f"mkdir {label} (last byte changed)", os.mkdir, c.p(n[:-1] + b"d"))
        c.do(f"stat {label}", os.stat, c.p(n))
    c.do("path longer than PATH_MAX", os.stat, c.p(*([b"x" * 200] * 21)))


# --- open/creat error cases ------------------------------------------------------------------------------
@step("open.errors")
def _(c):
    c.make("reg", "f")
    os.mkdir(c.p("d"))
    c.do("O_CREAT|O_EXCL existing", os.open, c.p("f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    c.do("O_CREAT|O_EXCL existing dir", os.open, c.p("d"), os.O_CREAT | os.O_EXCL | os.O_RDONLY, 0o644)
    c.do("missing without O_CREAT", os.open, c.p("missing"), os.O_RDONLY)
    c.do("O_CREAT in missing dir", os.open, c.p("missing", "f"), os.O_CREAT | os.O_WRONLY, 0o644)
    c.do("O_TRUNC on dir", os.open, c.p("d"), os.O_RDONLY | os.O_TRUNC)
    c.do("O_WRONLY on dir", os.open, c.p("d"), os.O_WRONLY)
    c.do("O_CREAT on dir", os.open, c.p("d"), os.O_CREAT | os.O_RDONLY, 0o644)
    c.do("trailing slash on file", os.open, c.p("f") + b"/", os.O_RDONLY)
    c.do("O_CREAT with trailing slash", os.open, c.p("new") + b"/", os.O_CREAT | os.O_WRONLY, 0o644)
    c.do("name too long", os.open, c.p(b"o" * 256), os.O_CREAT | os.O_WRONLY, 0o644)
    fd = c.do("O_TRUNC existing", os.open, c.p("f"), os.O_WRONLY | os.O_TRUNC)
    if fd is not None:
        os.close(fd)
    c.lstat("truncated", "f")
    fd = c.do("O_CREAT mode 0741 under umask 022", os.open, c.p("m"), os.O_CREAT | os.O_WRONLY, 0o741)
    if fd is not None:
        os.close(fd)
    c.lstat("mode", "m")
    fd = c.do("O_CREAT existing with other mode", os.open, c.p("m"), os.O_CREAT | os.O_WRONLY, 0o600)
    if fd is not None:
        os.close(fd)
    c.lstat("mode kept", "m")


@step("open.tmpfile")
def _(c):
    os.mkdir(c.p("d"))
    fd = c.do("O_TMPFILE", os.open, c.p("d"), os.O_TMPFILE | os.O_RDWR, 0o600)
    if fd is not None:
        os.close(fd)


@step("io.handle-modes")
def _(c):
    c.make("reg", "f")
    ro = os.open(c.p("f"), os.O_RDONLY)
    c.do("ftruncate read-only handle", os.ftruncate, ro, 0)
    c.do("write read-only handle", os.write, ro, b"x")
    c.do("read read-only handle", os.read, ro, 100)
    os.close(ro)
    wo = os.open(c.p("f"), os.O_WRONLY)
    c.do("read write-only handle", os.read, wo, 1)
    c.do("ftruncate write-only handle", os.ftruncate, wo, 4)
    c.do("ftruncate negative", os.ftruncate, wo, -1)
    c.do("ftruncate beyond the largest file", os.ftruncate, wo, 999_999_999_999_999)
    c.do("pwrite beyond the largest file", os.pwrite, wo, b"x", 999_999_999_999_999)
    os.close(wo)
    c.lstat("size 4", "f")
    d = os.open(c.p(), os.O_RDONLY | os.O_DIRECTORY)
    c.do("ftruncate directory", os.ftruncate, d, 0)
    c.do("write directory", os.write, d, b"x")
    c.do("read directory", os.read, d, 10)
    os.close(d)
    ap = os.open(c.p("f"), os.O_WRONLY | os.O_APPEND)
    c.do("append", os.write, ap, b"++")
    os.close(ap)
    c.note("content", open(c.p("f"), "rb").read())


# --- permissions: chmod, chown, set-id bits, sticky and set-group-ID directories -----------------------
@step("perm.chmod-chown-as-user")
def _(c):
    c.make("reg", "root-file")
    c.make("reg", "mine")
    os.chown(c.p("mine"), *NOBODY)
    c.make("reg", "mine-root-group")
    os.chown(c.p("mine-root-group"), NOBODY[0], 0)

    def body(c):
        c.do("chmod root's file", os.chmod, c.p("root-file"), 0o777)
        c.do("chmod own file", os.chmod, c.p("mine"), 0o640)
        c.do("chmod own file setuid", os.chmod, c.p("mine"), 0o4755)
        c.do("chmod g+s, group not mine (bit dropped)", os.chmod, c.p("mine-root-group"), 0o2755)
        c.do("chown own file to root", os.chown, c.p("mine"), 0, -1)
        c.do("chgrp own file to a group I am not in", os.chown, c.p("mine"), -1, GROUP)
        c.do("chgrp own file to my group", os.chown, c.p("mine"), -1, NOBODY[1])
        c.do("chown -1 -1", os.chown, c.p("mine"), -1, -1)
        c.do("chown root's file to me", os.chown, c.p("root-file"), NOBODY[0], -1)
        c.do("utime own file explicit", os.utime, c.p("mine"), ns=(5 * 10**9, 6 * 10**9))
    c.as_user(NOBODY, body)


@step("perm.setid-cleared-on-write-by-others")
def _(c):
    for n in ["w", "t", "own"]:
        c.make("reg", n)
        os.chmod(c.p(n), 0o6777)
    os.chown(c.p("own"), *NOBODY)
    os.chmod(c.p("own"), 0o6777)
    c.make("reg", "rootw")
    os.chmod(c.p("rootw"), 0o6777)
    fd = os.open(c.p("rootw"), os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"root writes")
    os.close(fd)
    c.lstat("written by root: kept", "rootw")

    def body(c):
        fd = os.open(c.p("w"), os.O_WRONLY | os.O_APPEND)
        c.do("write", os.write, fd, b"x")
        os.close(fd)
        c.do("truncate", os.truncate, c.p("t"), 1)
        fd = os.open(c.p("own"), os.O_WRONLY | os.O_APPEND)
        c.do("write own file", os.write, fd, b"x")
        os.close(fd)
    c.as_user(NOBODY, body)
    c.lstat("written by another user: cleared", "w")
    c.lstat("truncated by another user: cleared", "t")
    c.lstat("written by its owner", "own")


@step("perm.sticky-directory")
def _(c):
    os.mkdir(c.p("tmp"))
    os.chmod(c.p("tmp"), 0o1777)

    def other(c):
        c.do("create", c.make, "reg", "tmp", "theirs")
        c.do("mkfifo", c.make, "fifo", "tmp", "their-fifo")
        c.do("mkdir", c.make, "dir", "tmp", "their-dir")
    c.as_user(OTHER, other)

    def nobody(c):
        c.do("create own", c.make, "reg", "tmp", "mine")
        c.do("unlink another's file", os.unlink, c.p("tmp", "theirs"))
        c.do("unlink another's fifo", os.unlink, c.p("tmp", "their-fifo"))
        c.do("rmdir another's dir", os.rmdir, c.p("tmp", "their-dir"))
        c.do("rename another's file", os.rename, c.p("tmp", "theirs"), c.p("tmp", "stolen"))
        c.do("rename own over another's", os.rename, c.p("tmp", "mine"), c.p("tmp", "theirs"))
        c.do("write another's file (0644)", os.open, c.p("tmp", "theirs"), os.O_WRONLY)
        c.do("unlink own", os.unlink, c.p("tmp", "mine"))
    c.as_user(NOBODY, nobody)
    c.do("root unlinks another's file", os.unlink, c.p("tmp", "theirs"))


@step("perm.setgid-directory")
def _(c):
    os.mkdir(c.p("shared"))
    os.chown(c.p("shared"), OTHER[0], GROUP)
    os.chmod(c.p("shared"), 0o2777)
    c.lstat("dir", "shared")

    def body(c):
        c.do("create", c.make, "reg", "shared", "f")
        c.do("mkdir", c.make, "dir", "shared", "d", mode=0o755)
        c.do("mkfifo", c.make, "fifo", "shared", "p")
        c.do("symlink", c.make, "lnk", "shared", "l")
        c.do("create with g+s (not in the group: dropped)", os.open, c.p("shared", "g"), os.O_CREAT | os.O_WRONLY, 0o2755)
        c.do("mkdir inside the new dir", c.make, "dir", "shared", "d", "deeper", mode=0o700)
    c.as_user(NOBODY, body)
    c.make("reg", "shared", "rootfile", mode=0o2755)
    os.chmod(c.p("shared", "rootfile"), 0o2755)
    c.lstat("root's g+s file kept", "shared", "rootfile")
    c.do("mkdir as root", c.make, "dir", "shared", "rootdir")


@step("perm.access-checks")
def _(c):
    os.mkdir(c.p("closed"), 0o700)
    c.make("reg", "closed", "f")
    c.make("reg", "secret", mode=0o600)
    os.chmod(c.p("secret"), 0o600)
    os.mkdir(c.p("ro"), 0o555)
    os.chmod(c.p("ro"), 0o555)
    c.make("reg", "ro", "f")

    def body(c):
        c.do("stat through 0700 dir", os.stat, c.p("closed", "f"))
        c.do("listdir 0700 dir", os.listdir, c.p("closed"))
        c.do("open root's 0600 file", os.open, c.p("secret"), os.O_RDONLY)
        c.do("create in root's 0755 dir", os.open, c.p("new"), os.O_CREAT | os.O_WRONLY, 0o644)
        c.do("mkfifo in root's dir", os.mkfifo, c.p("fifo"))
        c.do("unlink in 0555 dir", os.unlink, c.p("ro", "f"))
        c.do("rename in 0555 dir", os.rename, c.p("ro", "f"), c.p("ro", "g"))
        c.do("utime now on root's 0644 file", utimensat, c.p("ro", "f"), "now", "now")
        c.do("utime explicit on root's 0644 file", utimensat, c.p("ro", "f"), 10**9, 10**9)
    c.as_user(NOBODY, body)


@step("perm.utimens-by-non-owner-with-write-permission")
def _(c):
    c.make("reg", "f", mode=0o666)
    os.chmod(c.p("f"), 0o666)
    os.utime(c.p("f"), ns=(10**9, 10**9))

    def body(c):
        c.do("both UTIME_NOW", utimensat, c.p("f"), "now", "now")
        c.do("NULL times (utime)", os.utime, c.p("f"))
        c.do("explicit times", utimensat, c.p("f"), 7 * 10**9, 7 * 10**9)
        c.do("explicit mtime, omit atime", utimensat, c.p("f"), "omit", 7 * 10**9)
        c.do("now mtime, omit atime", utimensat, c.p("f"), "omit", "now")
        c.do("omit both", utimensat, c.p("f"), "omit", "omit")
    c.as_user(NOBODY, body)
    st = os.stat(c.p("f"))
    c.note("times are recent", abs(st.st_mtime_ns - time.time_ns()) < 5 * 10**9)


# --- directories: link counts, listing -------------------------------------------------------------------
@step("dir.link-counts")
def _(c):
    os.mkdir(c.p("a"))
    c.lstat("base", )
    for i in range(3):
        os.mkdir(c.p("a", f"s{i}"))
    c.make("reg", "a", "f")
    c.make("fifo", "a", "p")
    c.lstat("a with 3 subdirs", "a")
    os.rmdir(c.p("a", "s0"))
    c.lstat("after rmdir", "a")
    os.rename(c.p("a", "s1"), c.p("s1"))
    c.lstat("a after moving a subdir out", "a")
    c.lstat("base after", )
    c.note("listdir", sorted(os.listdir(c.p("a"))))
    c.note("scandir types", sorted((e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False)) for e in os.scandir(c.p("a"))))


def snapshot_pair(c):
    try:
        return c.snapshot()
    except OSError as e:
        return [("snapshot", ename(e.errno))]


def run(steps, roots, deliberate):
    passed = failed = 0
    os.umask(0o022)
    for i, (sid, fn) in enumerate(steps):
        records = []
        for side, root in roots:
            base = os.path.join(root, b"s%04d" % i)
            os.mkdir(base)
            os.chmod(base, 0o755)
            c = Ctx(side, base)
            try:
                fn(c)
            except Exception:
                c.note("exception", traceback.format_exc(limit=4))
            records.append((c.obs, snapshot_pair(c)))
        (ext_obs, ext_tree), (fs_obs, fs_tree) = records
        if ext_obs == fs_obs and ext_tree == fs_tree:
            passed += 1
            print(f"PASS: {sid}")
            continue
        diffs = []
        for k in range(max(len(ext_obs), len(fs_obs))):
            a = ext_obs[k] if k < len(ext_obs) else None
            b = fs_obs[k] if k < len(fs_obs) else None
            if a != b:
                diffs.append(f"    {a[0] if a else b[0]}: ext4 {a[1] if a else '-'!r}, fdfsfs {b[1] if b else '-'!r}")
        if ext_tree != fs_tree:
            e, f = dict(ext_tree), dict(fs_tree)
            for name in sorted(set(e) | set(f)):
                if e.get(name) != f.get(name):
                    diffs.append(f"    tree {name}: ext4 {e.get(name)!r}, fdfsfs {f.get(name)!r}")
        if sid in deliberate:
            passed += 1
            print(f"PASS: {sid} (deliberate difference: {deliberate[sid]})")
            for d in diffs[:4]:
                print(d)
            continue
        failed += 1
        print(f"FAIL: {sid}")
        for d in diffs[:12]:
            print(d)
        sys.stdout.flush()
    return passed, failed


def read_deliberate(readme):
    """`id` -> reason from README's "#### Deliberate differences from ext4" list."""
    out, inside, last = {}, False, None
    with open(readme, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                inside = line.strip().lower().startswith("#### deliberate differences from ext4")
                last = None
                continue
            m = re.match(r"^[-*] `([^`]+)`[:,]? *(.*)", line) if inside else None
            if m:
                last = m.group(1)
                out[last] = m.group(2).strip()
            elif last and line.startswith("  ") and line.strip():
                out[last] += " " + line.strip()   # the entry goes on
            else:
                last = None
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fdfsfs_dir")
    ap.add_argument("ext4_dir")
    ap.add_argument("--readme")
    ap.add_argument("--only", default="")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list:
        for sid, _ in STEPS:
            print(sid)
        return 0
    if os.geteuid() != 0:
        print("FAIL: posix-compare.py must run as root (it drops to other users per step)")
        print("0 passed, 1 failed")
        return 1
    deliberate = read_deliberate(a.readme) if a.readme else {}
    known = {sid for sid, _ in STEPS}
    unknown = sorted(set(deliberate) - known)
    steps = [(sid, fn) for sid, fn in STEPS if a.only in sid]
    passed, failed = run(steps, [("ext4", os.fsencode(a.ext4_dir)), ("fdfsfs", os.fsencode(a.fdfsfs_dir))], deliberate)
    for sid in unknown:
        failed += 1
        print(f"FAIL: README lists `{sid}` as a deliberate difference, but there is no such step")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
