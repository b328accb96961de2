#!/usr/bin/env python3
"""Model-based random write test for fdfsfs (plain python3 stdlib).

Applies the same seeded sequence of random file operations to a directory in the mount and to a
local directory (the model), side by side, and compares after every step.

  write-model.py run    MOUNT_DIR LOCAL_DIR [--seed S] [--ops N]   (env WRITE_MODEL_OPS, WRITE_MODEL_SEED)
  write-model.py verify MOUNT_DIR LOCAL_DIR                         (compare every file, e.g. after a remount)

Operations: create (O_CREAT|O_EXCL, kept open or closed), open extra handles (O_RDWR, some with
O_APPEND), pwrite at random offsets (inside, at and past EOF), append (open O_APPEND, write,
close: like `>>`), truncate / ftruncate (shrink and grow), O_TRUNC reopen, ranged reads through
handles and through a fresh open (read-your-writes across handles), rename (also over an existing
name), unlink (with handles still open), close. After each step the touched file is compared
(size and bytes, through a path and through its handles) and the directory listings; at the end
every file. On the first difference it prints the seed, the step and the recent operations and
exits 1. The last line is "model: ..." with the result.
"""
import argparse
import errno
import hashlib
import os
import random
import sys

MAX_FILES = 6
MAX_HANDLES = 8
MAX_OFFSET = 768 * 1024  # writes start below this (gaps past EOF included)


class Mismatch(Exception):
    pass


def sha(b):
    return hashlib.sha256(b).hexdigest()[:16]


def read_path(path):
    with open(path, "rb") as fh:
        return fh.read()


def read_fd(fd):
    size = os.fstat(fd).st_size
    out = bytearray()
    while len(out) < size:
        chunk = os.pread(fd, size - len(out), len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def first_diff(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i
    return min(len(a), len(b))


class Model:
    def __init__(self, mnt, loc, seed, ops):
        self.mnt, self.loc, self.seed, self.ops = mnt, loc, seed, ops
        self.rng = random.Random(seed)
        self.handles = []  # [name-at-open, fd_mnt, fd_loc, append, unlinked]
        self.log = []
        self.step = 0
        self.counts = {}

    # --- helpers -------------------------------------------------------------------------------
    def names(self):
        return sorted(os.listdir(self.loc))

    def both(self, what, fn_m, fn_l):
        """Runs fn on both sides; they must both succeed (same result) or fail with the same errno."""
        rm = rl = em = el = None
        try:
            rl = fn_l()
        except OSError as e:
            el = e
        try:
            rm = fn_m()
        except OSError as e:
            em = e
        if (em is None) != (el is None) or (em is not None and em.errno != el.errno):
            raise Mismatch(f"{what}: mount {'error ' + errno.errorcode.get(em.errno, str(em.errno)) + ' ' + str(em) if em else 'ok'}, "
                           f"local {'error ' + errno.errorcode.get(el.errno, str(el.errno)) if el else 'ok'}")
        if rm != rl and not (isinstance(rm, int) and isinstance(rl, int) and what.startswith("open")):
            if isinstance(rm, (bytes, bytearray)):
                raise Mismatch(f"{what}: mount returned {len(rm)} bytes sha {sha(rm)}, local {len(rl)} bytes sha {sha(rl)}, first difference at {first_diff(rm, rl)}")
            raise Mismatch(f"{what}: mount returned {rm!r}, local {rl!r}")
        return rm, rl, el

    def compare_file(self, name):
        pm, pl = os.path.join(self.mnt, name), os.path.join(self.loc, name)
        if not os.path.exists(pl):
            if os.path.lexists(pm):
                raise Mismatch(f"{name} exists in the mount but not in the model")
            return
        sm, sl = os.stat(pm).st_size, os.stat(pl).st_size
        if sm != sl:
            raise Mismatch(f"{name}: size {sm} in the mount, {sl} in the model")
        dm, dl = read_path(pm), read_path(pl)
        if dm != dl:
            raise Mismatch(f"{name}: content differs (mount {len(dm)} bytes sha {sha(dm)}, model {len(dl)} bytes sha {sha(dl)}, first difference at {first_diff(dm, dl)})")

    def compare_handle(self, h):
        dm, dl = read_fd(h[1]), read_fd(h[2])
        if dm != dl:
            raise Mismatch(f"handle on {h[0]} (unlinked={h[4]}): content differs (mount {len(dm)} bytes, model {len(dl)} bytes, first difference at {first_diff(dm, dl)})")

    def compare_listing(self):
        lm, ll = sorted(os.listdir(self.mnt)), self.names()
        if lm != ll:
            raise Mismatch(f"listing differs: mount {lm}, model {ll}")

    def compare_all(self):
        self.compare_listing()
        for n in self.names():
            self.compare_file(n)

    def record(self, text):
        self.log.append(f"step {self.step}: {text}")
        if len(self.log) > 25:
            self.log.pop(0)

    # --- operations ----------------------------------------------------------------------------
    def pick_name(self, existing=True):
        names = self.names()
        if existing:
            return self.rng.choice(names) if names else None
        free = [f"f{i}.dat" for i in range(MAX_FILES) if f"f{i}.dat" not in names]
        return self.rng.choice(free) if free else None

    def data(self):
        r = self.rng.random()
        n = self.rng.randint(1, 512) if r < 0.4 else self.rng.randint(513, 64 * 1024) if r < 0.9 else self.rng.randint(64 * 1024, 300 * 1024)
        return self.rng.randbytes(n)

    def op_create(self):
        name = self.pick_name(existing=False)
        if name is None:
            return self.op_unlink()
        keep = self.rng.random() < 0.5 and len(self.handles) < MAX_HANDLES
        flags = os.O_CREAT | os.O_EXCL | os.O_RDWR
        self.record(f"create {name} keep_open={keep}")
        fm, fl, _ = self.both(f"open(O_CREAT|O_EXCL) {name}", lambda: os.open(os.path.join(self.mnt, name), flags, 0o644),
                              lambda: os.open(os.path.join(self.loc, name), flags, 0o644))
        if keep:
            self.handles.append([name, fm, fl, False, False])
        else:
            os.close(fm); os.close(fl)
        return name

    def op_open(self):
        name = self.pick_name()
        if name is None or len(self.handles) >= MAX_HANDLES:
            return self.op_create()
        append = self.rng.random() < 0.2
        flags = os.O_RDWR | (os.O_APPEND if append else 0)
        self.record(f"open {name} append={append}")
        fm, fl, _ = self.both(f"open {name}", lambda: os.open(os.path.join(self.mnt, name), flags),
                              lambda: os.open(os.path.join(self.loc, name), flags))
        self.handles.append([name, fm, fl, append, False])
        return name

    def op_close(self):
        if not self.handles:
            return self.op_open()
        h = self.handles.pop(self.rng.randrange(len(self.handles)))
        self.record(f"close handle on {h[0]}")
        self.both(f"close {h[0]}", lambda: os.close(h[1]), lambda: os.close(h[2]))
        return None if h[4] else h[0]

    def op_pwrite(self):
        if not self.handles:
            return self.op_open()
        h = self.rng.choice(self.handles)
        size = os.fstat(h[2]).st_size
        r = self.rng.random()
        if size >= MAX_OFFSET:  # keep files around 1 MiB: write inside
            off = self.rng.randint(0, size)
        else:
            off = size if r < 0.2 else self.rng.randint(0, size) if r < 0.7 else self.rng.randint(size, size + 128 * 1024) if r < 0.85 else self.rng.randint(0, MAX_OFFSET)
        d = self.data()
        if h[3]:  # O_APPEND: the offset is ignored, the data goes at EOF
            self.record(f"write {len(d)} bytes through an O_APPEND handle on {h[0]}")
            self.both(f"write(O_APPEND) {h[0]}", lambda: os.write(h[1], d), lambda: os.write(h[2], d))
        else:
            self.record(f"pwrite {len(d)} bytes at {off} (size {size}) on {h[0]}")
            self.both(f"pwrite {h[0]} at {off}", lambda: os.pwrite(h[1], d, off), lambda: os.pwrite(h[2], d, off))
        self.compare_handle(h)
        return None if h[4] else h[0]

    def op_append(self):
        name = self.pick_name()
        if name is None:
            return self.op_create()
        if os.stat(os.path.join(self.loc, name)).st_size >= MAX_OFFSET:
            return self.op_truncate()
        d = self.data()
        self.record(f"append {len(d)} bytes to {name} (open O_APPEND, write, close)")

        def app(base):
            fd = os.open(os.path.join(base, name), os.O_WRONLY | os.O_APPEND)
            try:
                return os.write(fd, d)
            finally:
                os.close(fd)
        self.both(f"append {name}", lambda: app(self.mnt), lambda: app(self.loc))
        return name

    def op_truncate(self):
        name = self.pick_name()
        if name is None:
            return self.op_create()
        size = os.stat(os.path.join(self.loc, name)).st_size
        r = self.rng.random()
        new = 0 if r < 0.15 else self.rng.randint(0, size) if r < 0.6 or size >= MAX_OFFSET else self.rng.randint(size, size + 200 * 1024)
        handle = [h for h in self.handles if h[0] == name and not h[4]]
        if handle and self.rng.random() < 0.5:
            h = handle[0]
            self.record(f"ftruncate {name} {size} -> {new}")
            self.both(f"ftruncate {name} to {new}", lambda: os.ftruncate(h[1], new), lambda: os.ftruncate(h[2], new))
        else:
            self.record(f"truncate {name} {size} -> {new}")
            self.both(f"truncate {name} to {new}", lambda: os.truncate(os.path.join(self.mnt, name), new),
                      lambda: os.truncate(os.path.join(self.loc, name), new))
        return name

    def op_otrunc(self):
        name = self.pick_name()
        if name is None:
            return self.op_create()
        d = self.data() if self.rng.random() < 0.8 else b""
        self.record(f"O_TRUNC rewrite of {name} with {len(d)} bytes")

        def rewrite(base):
            fd = os.open(os.path.join(base, name), os.O_WRONLY | os.O_TRUNC)
            try:
                return os.write(fd, d) if d else 0
            finally:
                os.close(fd)
        self.both(f"O_TRUNC {name}", lambda: rewrite(self.mnt), lambda: rewrite(self.loc))
        return name

    def op_read(self):
        if self.handles and self.rng.random() < 0.6:
            h = self.rng.choice(self.handles)
            size = os.fstat(h[2]).st_size
            off = self.rng.randint(0, size + 1000)
            n = self.rng.randint(0, 200 * 1024)
            self.record(f"pread {n} at {off} through a handle on {h[0]}")
            self.both(f"pread {h[0]} {n}@{off}", lambda: os.pread(h[1], n, off), lambda: os.pread(h[2], n, off))
            return None
        name = self.pick_name()
        if name is None:
            return self.op_create()
        size = os.stat(os.path.join(self.loc, name)).st_size
        off = self.rng.randint(0, size + 1000)
        n = self.rng.randint(0, 200 * 1024)
        self.record(f"read {n} at {off} of {name} (fresh open)")

        def rd(base):
            fd = os.open(os.path.join(base, name), os.O_RDONLY)
            try:
                return os.pread(fd, n, off)
            finally:
                os.close(fd)
        self.both(f"read {name} {n}@{off}", lambda: rd(self.mnt), lambda: rd(self.loc))
        return None

    def op_rename(self):
        src = self.pick_name()
        if src is None:
            return self.op_create()
        dst = self.pick_name() if self.rng.random() < 0.3 else self.pick_name(existing=False)
        if dst is None or dst == src:
            return None
        self.record(f"rename {src} -> {dst}")
        self.both(f"rename {src} {dst}", lambda: os.rename(os.path.join(self.mnt, src), os.path.join(self.mnt, dst)),
                  lambda: os.rename(os.path.join(self.loc, src), os.path.join(self.loc, dst)))
        for h in self.handles:
            if h[0] == dst and not h[4]:
                h[4] = True  # its name was replaced: the handle now holds an unlinked file
        for h in self.handles:
            if h[0] == src and not h[4]:
                h[0] = dst
        return dst

    def op_unlink(self):
        name = self.pick_name()
        if name is None:
            return self.op_create()
        self.record(f"unlink {name}")
        self.both(f"unlink {name}", lambda: os.unlink(os.path.join(self.mnt, name)), lambda: os.unlink(os.path.join(self.loc, name)))
        for h in self.handles:
            if h[0] == name and not h[4]:
                h[4] = True
        return None

    OPS = [("pwrite", 30), ("append", 8), ("truncate", 8), ("otrunc", 3), ("read", 14), ("create", 8),
           ("open", 8), ("close", 8), ("rename", 6), ("unlink", 4)]

    def run(self):
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        for self.step in range(1, self.ops + 1):
            op = self.rng.choices(names, weights)[0]
            self.counts[op] = self.counts.get(op, 0) + 1
            touched = getattr(self, "op_" + op)()
            self.compare_listing()
            if touched is not None:
                self.compare_file(touched)
                for h in self.handles:
                    if h[0] == touched and not h[4]:
                        self.compare_handle(h)
        for h in self.handles:
            self.compare_handle(h)
        self.step += 1
        self.record("close every handle")
        while self.handles:
            h = self.handles.pop()
            self.both(f"close {h[0]}", lambda: os.close(h[1]), lambda: os.close(h[2]))
        self.compare_all()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["run", "verify"])
    ap.add_argument("mount_dir")
    ap.add_argument("local_dir")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("WRITE_MODEL_SEED", "0")) or None)
    ap.add_argument("--ops", type=int, default=int(os.environ.get("WRITE_MODEL_OPS", "2000")))
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1, 2**31)
    m = Model(a.mount_dir, a.local_dir, seed, a.ops)
    try:
        if a.mode == "run":
            os.makedirs(a.mount_dir, exist_ok=True)
            os.makedirs(a.local_dir, exist_ok=True)
            m.run()
            files = m.names()
            total = sum(os.stat(os.path.join(a.local_dir, n)).st_size for n in files)
            ops = " ".join(f"{k}={v}" for k, v in sorted(m.counts.items()))
            print(f"model: {a.ops} ops (seed {seed}) matched step by step and at the end; {len(files)} files, {total} bytes; {ops}")
        else:
            m.compare_all()
            print(f"model: {len(m.names())} files match")
    except (Mismatch, OSError) as e:
        if a.mode == "verify":
            print(f"model: FAILED verifying: {e}")
            sys.exit(1)
        print(f"model: FAILED at step {m.step} (seed {seed}; rerun with WRITE_MODEL_SEED={seed}): {e}")
        print("recent operations:")
        for line in m.log:
            print("   " + line)
        sys.exit(1)


if __name__ == "__main__":
    main()
