/// The PostgreSQL schema of one namespace (`?namespace=NAME` → the SQL schema `fdfs_NAME`),
/// migrated by version, and the functions that make each namespace operation one round trip.
///
/// Errors a function raises carry SQLSTATE `FXnnn`, nnn being the Linux errno the kernel gets
/// (FX002 ENOENT, FX017 EEXIST, FX020 ENOTDIR, FX021 EISDIR, FX022 EINVAL, FX039 ENOTEMPTY,
/// FX001 EPERM). Every function that changes the tree sends, in its transaction, a NOTIFY on the
/// namespace's channel: `SESSION n<ino> … e<parent>:<hex name> …` (nodes and names it touched),
/// which the other mounts turn into cache invalidations.
///
/// Concurrency (READ COMMITTED): a function locks the directory rows it changes (in id order
/// when there are two), so creates, removes and renames in one directory serialize and a
/// directory being removed cannot gain a child; a rename that moves a directory to another
/// parent also takes the namespace's rename lock, so two hosts moving directories into each
/// other cannot both pass the ancestor check (one gets EINVAL, never a cycle). Deadlocks and
/// serialization failures are retried by the caller.
enum PostgresSchema {
    /// The schema version this build creates and understands.
    static let version = 2

    /// What brings a namespace of version `from` to `version` (the functions are then replaced).
    static func migrations(from: Int, schema s: String) -> [String] {
        var out: [String] = []
        if from < 2 {
            // v2: deletes of replaced files wait while another mount holds the node open; opens
            // say whether the node is open elsewhere.
            // (fdfs_open of v1 stays, for mounts of the old version still running.)
            // fdfs_create also returns the parent's row (a create needs no read of it after).
            out += ["ALTER TABLE \(s).pending_deletes ADD COLUMN IF NOT EXISTS hold_ino bigint",
                    "DROP FUNCTION IF EXISTS \(s).fdfs_create(bigint, bigint, bytea, bigint, bigint, bigint, bytea, text, bigint, bigint, boolean)"]
        }
        return out
    }

    static func statements(schema s: String, channel: String) -> [String] {
        [
            "CREATE TABLE IF NOT EXISTS \(s).meta (key text PRIMARY KEY, value text NOT NULL)",
            """
            CREATE TABLE \(s).nodes (
                id bigserial PRIMARY KEY,
                mode bigint NOT NULL, uid bigint NOT NULL, gid bigint NOT NULL,
                size bigint NOT NULL DEFAULT 0,
                atime_ns bigint NOT NULL, mtime_ns bigint NOT NULL, ctime_ns bigint NOT NULL,
                nlink bigint NOT NULL,
                file_id text, target bytea, rdev bigint NOT NULL DEFAULT 0)
            """,
            "CREATE INDEX nodes_file_id ON \(s).nodes (file_id)",
            "CREATE INDEX nodes_unlinked ON \(s).nodes (id) WHERE nlink <= 0",
            """
            CREATE TABLE \(s).entries (
                id bigserial PRIMARY KEY,
                parent bigint NOT NULL,
                name bytea NOT NULL,
                child bigint NOT NULL,
                UNIQUE (parent, name))
            """,
            "CREATE INDEX entries_child ON \(s).entries (child)",
            """
            CREATE TABLE \(s).pending_deletes (
                id bigserial PRIMARY KEY, file_id text NOT NULL,
                attempts int NOT NULL DEFAULT 0, last_error text,
                hold_ino bigint)
            """,
            """
            CREATE TABLE \(s).pending_metadata (
                ino bigint NOT NULL, key text NOT NULL, value text NOT NULL, PRIMARY KEY (ino, key))
            """,
            """
            CREATE TABLE \(s).sessions (
                id bigserial PRIMARY KEY, host text NOT NULL, pid int NOT NULL, mountpoint text NOT NULL,
                started timestamptz NOT NULL DEFAULT now(), heartbeat timestamptz NOT NULL DEFAULT now(),
                ttl_s int NOT NULL)
            """,
            """
            CREATE TABLE \(s).open_handles (
                session bigint NOT NULL REFERENCES \(s).sessions (id) ON DELETE CASCADE,
                ino bigint NOT NULL, count int NOT NULL, PRIMARY KEY (session, ino))
            """,
            "CREATE INDEX open_handles_ino ON \(s).open_handles (ino)",
            """
            CREATE TABLE \(s).locks (
                session bigint NOT NULL REFERENCES \(s).sessions (id) ON DELETE CASCADE,
                ino bigint NOT NULL, owner bigint NOT NULL, kind smallint NOT NULL, type smallint NOT NULL,
                start_off bigint NOT NULL, end_off bigint NOT NULL, pid int NOT NULL)
            """,
            "CREATE INDEX locks_ino ON \(s).locks (ino)",
            """
            INSERT INTO \(s).nodes (id, mode, uid, gid, size, atime_ns, mtime_ns, ctime_ns, nlink)
            VALUES (1, \(0o040755), 0, 0, 0, 0, 0, 0, 2)
            """,
            "SELECT setval('\(s).nodes_id_seq', 1)",
        ] + functions(s, channel)
    }

    static func functions(_ s: String, _ channel: String) -> [String] {
        let raise = { (errno: Int, msg: String) in
            "RAISE EXCEPTION USING ERRCODE = 'FX\(String(format: "%03d", errno))', MESSAGE = \(msg);"
        }
        return [
            """
            CREATE OR REPLACE FUNCTION \(s).now_ns() RETURNS bigint LANGUAGE sql AS
            $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000 $$
            """,
            """
            CREATE OR REPLACE FUNCTION \(s).changed(p_session bigint, p_what text) RETURNS void LANGUAGE sql AS
            $$ SELECT pg_notify('\(channel)', p_session || ' ' || p_what) $$
            """,
            """
            CREATE OR REPLACE FUNCTION \(s).ekey(p_parent bigint, p_name bytea) RETURNS text LANGUAGE sql IMMUTABLE AS
            $$ SELECT 'e' || p_parent || ':' || encode(p_name, 'hex') $$
            """,
            // A live directory, locked for the change.
            """
            CREATE OR REPLACE FUNCTION \(s).lock_dir(p_id bigint) RETURNS \(s).nodes LANGUAGE plpgsql AS $$
            DECLARE d \(s).nodes;
            BEGIN
                SELECT * INTO d FROM \(s).nodes WHERE id = p_id FOR UPDATE;
                IF NOT FOUND OR d.nlink <= 0 THEN \(raise(2, "'directory ' || p_id || ' is gone'")) END IF;
                IF (d.mode & 61440) <> 16384 THEN \(raise(20, "'inode ' || p_id || ' is not a directory'")) END IF;
                RETURN d;
            END $$
            """,
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_create(p_session bigint, p_parent bigint, p_name bytea, p_mode bigint,
                p_uid bigint, p_gid bigint, p_target bytea, p_file_id text, p_size bigint, p_rdev bigint, p_open boolean)
            RETURNS TABLE (entry_id bigint, node \(s).nodes, parent_node \(s).nodes) LANGUAGE plpgsql AS $$
            DECLARE d \(s).nodes; n \(s).nodes; eid bigint; t bigint := \(s).now_ns();
                is_dir boolean := (p_mode & 61440) = 16384;
            BEGIN
                d := \(s).lock_dir(p_parent);
                IF EXISTS (SELECT 1 FROM \(s).entries e WHERE e.parent = p_parent AND e.name = p_name) THEN
                    \(raise(17, "'name exists'"))
                END IF;
                IF (d.mode & 1024) <> 0 THEN
                    p_gid := d.gid;
                    IF is_dir THEN p_mode := p_mode | 1024; END IF;
                END IF;
                INSERT INTO \(s).nodes (mode, uid, gid, size, atime_ns, mtime_ns, ctime_ns, nlink, file_id, target, rdev)
                VALUES (p_mode, p_uid, p_gid, p_size, t, t, t, CASE WHEN is_dir THEN 2 ELSE 1 END, p_file_id, p_target, p_rdev)
                RETURNING * INTO n;
                INSERT INTO \(s).entries (parent, name, child) VALUES (p_parent, p_name, n.id) RETURNING id INTO eid;
                UPDATE \(s).nodes x SET mtime_ns = t, ctime_ns = t, nlink = x.nlink + CASE WHEN is_dir THEN 1 ELSE 0 END
                WHERE x.id = p_parent RETURNING * INTO d;
                -- create(2) opens the new file: its handle counts like an open's.
                IF p_open THEN
                    INSERT INTO \(s).open_handles (session, ino, count) VALUES (p_session, n.id, 1);
                END IF;
                PERFORM \(s).changed(p_session, 'n' || p_parent || ' ' || \(s).ekey(p_parent, p_name));
                RETURN QUERY SELECT eid, n, d;
            END $$
            """,
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_link(p_session bigint, p_id bigint, p_parent bigint, p_name bytea)
            RETURNS SETOF \(s).nodes LANGUAGE plpgsql AS $$
            DECLARE n \(s).nodes; t bigint := \(s).now_ns();
            BEGIN
                PERFORM \(s).lock_dir(p_parent);
                SELECT * INTO n FROM \(s).nodes WHERE id = p_id FOR UPDATE;
                IF NOT FOUND OR n.nlink <= 0 THEN \(raise(2, "'inode ' || p_id || ' is gone'")) END IF;
                IF (n.mode & 61440) = 16384 THEN \(raise(1, "'cannot hard-link a directory'")) END IF;
                IF EXISTS (SELECT 1 FROM \(s).entries e WHERE e.parent = p_parent AND e.name = p_name) THEN
                    \(raise(17, "'name exists'"))
                END IF;
                INSERT INTO \(s).entries (parent, name, child) VALUES (p_parent, p_name, p_id);
                UPDATE \(s).nodes SET nlink = nlink + 1, ctime_ns = t WHERE id = p_id RETURNING * INTO n;
                UPDATE \(s).nodes SET mtime_ns = t, ctime_ns = t WHERE id = p_parent;
                PERFORM \(s).changed(p_session, 'n' || p_parent || ' n' || p_id || ' ' || \(s).ekey(p_parent, p_name));
                RETURN NEXT n;
            END $$
            """,
            // p_dir: 1 rmdir, 0 unlink, NULL either (a rename's replaced destination).
            """
            CREATE OR REPLACE FUNCTION \(s).remove_entry(p_session bigint, p_entry bigint, p_parent bigint, p_name bytea,
                p_child bigint, p_dir int, t bigint) RETURNS \(s).nodes LANGUAGE plpgsql AS $$
            DECLARE n \(s).nodes; is_dir boolean;
            BEGIN
                SELECT * INTO n FROM \(s).nodes WHERE id = p_child FOR UPDATE;
                is_dir := (n.mode & 61440) = 16384;
                IF p_dir = 1 AND NOT is_dir THEN \(raise(20, "'not a directory'")) END IF;
                IF p_dir = 0 AND is_dir THEN \(raise(21, "'is a directory'")) END IF;
                IF is_dir AND EXISTS (SELECT 1 FROM \(s).entries e WHERE e.parent = p_child) THEN
                    \(raise(39, "'directory not empty'"))
                END IF;
                DELETE FROM \(s).entries WHERE id = p_entry;
                UPDATE \(s).nodes SET nlink = CASE WHEN is_dir THEN 0 ELSE nlink - 1 END, ctime_ns = t
                WHERE id = p_child RETURNING * INTO n;
                UPDATE \(s).nodes SET mtime_ns = t, ctime_ns = t, nlink = nlink - CASE WHEN is_dir THEN 1 ELSE 0 END
                WHERE id = p_parent;
                PERFORM \(s).changed(p_session, 'n' || p_parent || ' n' || p_child || ' ' || \(s).ekey(p_parent, p_name));
                RETURN n;
            END $$
            """,
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_remove(p_session bigint, p_parent bigint, p_name bytea, p_dir int)
            RETURNS SETOF \(s).nodes LANGUAGE plpgsql AS $$
            DECLARE e \(s).entries;
            BEGIN
                PERFORM \(s).lock_dir(p_parent);
                SELECT * INTO e FROM \(s).entries x WHERE x.parent = p_parent AND x.name = p_name;
                IF NOT FOUND THEN \(raise(2, "'no such name'")) END IF;
                RETURN NEXT \(s).remove_entry(p_session, e.id, p_parent, p_name, e.child, p_dir, \(s).now_ns());
            END $$
            """,
            // True when p_ancestor is p_id or one of its ancestors.
            """
            CREATE OR REPLACE FUNCTION \(s).is_ancestor(p_ancestor bigint, p_id bigint) RETURNS boolean LANGUAGE sql AS $$
                WITH RECURSIVE up (id, depth) AS (
                    SELECT p_id, 0
                    UNION ALL
                    SELECT e.parent, up.depth + 1 FROM \(s).entries e JOIN up ON e.child = up.id
                    WHERE up.id <> 1 AND up.depth < 100000)
                SELECT EXISTS (SELECT 1 FROM up WHERE id = p_ancestor)
            $$
            """,
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_rename(p_session bigint, p_parent bigint, p_name bytea,
                p_newparent bigint, p_newname bytea, p_flags int)
            RETURNS TABLE (dead boolean, node \(s).nodes) LANGUAGE plpgsql AS $$
            DECLARE src \(s).entries; dst \(s).entries; sn \(s).nodes; dn \(s).nodes; after \(s).nodes;
                t bigint := \(s).now_ns(); sd bigint; dd bigint; moves_dir boolean;
            BEGIN
                IF (p_flags & ~3) <> 0 OR p_flags = 3 THEN \(raise(22, "'unsupported rename flags ' || p_flags")) END IF;
                -- Moving a directory to another parent: one at a time per namespace (cycle check).
                IF p_parent <> p_newparent THEN
                    SELECT bool_or((n.mode & 61440) = 16384) INTO moves_dir FROM \(s).entries e JOIN \(s).nodes n ON n.id = e.child
                    WHERE (e.parent = p_parent AND e.name = p_name)
                       OR ((p_flags & 2) <> 0 AND e.parent = p_newparent AND e.name = p_newname);
                    IF moves_dir THEN PERFORM pg_advisory_xact_lock(hashtext('\(s).rename')); END IF;
                END IF;
                PERFORM 1 FROM \(s).nodes WHERE id IN (p_parent, p_newparent) ORDER BY id FOR UPDATE;
                PERFORM \(s).lock_dir(p_parent);
                PERFORM \(s).lock_dir(p_newparent);
                SELECT * INTO src FROM \(s).entries x WHERE x.parent = p_parent AND x.name = p_name;
                IF NOT FOUND THEN \(raise(2, "'no such name'")) END IF;
                IF p_parent = p_newparent AND p_name = p_newname THEN RETURN; END IF;
                SELECT * INTO sn FROM \(s).nodes WHERE id = src.child FOR UPDATE;
                sd := CASE WHEN (sn.mode & 61440) = 16384 THEN 1 ELSE 0 END;
                IF sd = 1 AND p_parent <> p_newparent AND NOT coalesce(moves_dir, false) THEN
                    RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'changed under the rename; retry';
                END IF;
                IF sd = 1 AND \(s).is_ancestor(sn.id, p_newparent) THEN
                    \(raise(22, "'cannot move a directory into itself'"))
                END IF;
                SELECT * INTO dst FROM \(s).entries x WHERE x.parent = p_newparent AND x.name = p_newname;
                IF (p_flags & 2) <> 0 THEN
                    IF dst.id IS NULL THEN \(raise(2, "'no such name to exchange with'")) END IF;
                    SELECT * INTO dn FROM \(s).nodes WHERE id = dst.child FOR UPDATE;
                    dd := CASE WHEN (dn.mode & 61440) = 16384 THEN 1 ELSE 0 END;
                    IF dd = 1 AND p_parent <> p_newparent AND NOT coalesce(moves_dir, false) THEN
                        RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'changed under the rename; retry';
                    END IF;
                    IF dd = 1 AND \(s).is_ancestor(dn.id, p_parent) THEN
                        \(raise(22, "'cannot move a directory into itself'"))
                    END IF;
                    UPDATE \(s).entries SET child = dn.id WHERE id = src.id;
                    UPDATE \(s).entries SET child = sn.id WHERE id = dst.id;
                    IF p_parent <> p_newparent THEN
                        UPDATE \(s).nodes SET mtime_ns = t, ctime_ns = t, nlink = nlink + dd - sd WHERE id = p_parent;
                        UPDATE \(s).nodes SET mtime_ns = t, ctime_ns = t, nlink = nlink + sd - dd WHERE id = p_newparent;
                    ELSE
                        UPDATE \(s).nodes SET mtime_ns = t, ctime_ns = t WHERE id = p_parent;
                    END IF;
                    UPDATE \(s).nodes SET ctime_ns = t WHERE id IN (sn.id, dn.id);
                    PERFORM \(s).changed(p_session, 'n' || p_parent || ' n' || p_newparent || ' n' || sn.id || ' n' || dn.id
                        || ' ' || \(s).ekey(p_parent, p_name) || ' ' || \(s).ekey(p_newparent, p_newname));
                    RETURN QUERY SELECT false, x FROM \(s).nodes x WHERE x.id IN (sn.id, dn.id);
                    RETURN;
                END IF;
                IF dst.id IS NOT NULL THEN
                    IF (p_flags & 1) <> 0 THEN \(raise(17, "'name exists'")) END IF;
                    IF dst.child = sn.id THEN RETURN; END IF;
                    SELECT * INTO dn FROM \(s).nodes WHERE id = dst.child;
                    dd := CASE WHEN (dn.mode & 61440) = 16384 THEN 1 ELSE 0 END;
                    IF sd = 1 AND dd = 0 THEN \(raise(20, "'destination is not a directory'")) END IF;
                    IF sd = 0 AND dd = 1 THEN \(raise(21, "'destination is a directory'")) END IF;
                    after := \(s).remove_entry(p_session, dst.id, p_newparent, p_newname, dst.child, NULL, t);
                    RETURN QUERY SELECT after.nlink <= 0, after;
                END IF;
                UPDATE \(s).entries SET parent = p_newparent, name = p_newname WHERE id = src.id;
                IF p_parent <> p_newparent THEN
                    UPDATE \(s).nodes SET mtime_ns = t, ctime_ns = t, nlink = nlink - sd WHERE id = p_parent;
                    UPDATE \(s).nodes SET mtime_ns = t, ctime_ns = t, nlink = nlink + sd WHERE id = p_newparent;
                ELSE
                    UPDATE \(s).nodes SET mtime_ns = t, ctime_ns = t WHERE id = p_parent;
                END IF;
                UPDATE \(s).nodes SET ctime_ns = t WHERE id = sn.id;
                PERFORM \(s).changed(p_session, 'n' || p_parent || ' n' || p_newparent || ' n' || sn.id
                    || ' ' || \(s).ekey(p_parent, p_name) || ' ' || \(s).ekey(p_newparent, p_newname));
                RETURN QUERY SELECT false, x FROM \(s).nodes x WHERE x.id = sn.id;
            END $$
            """,
            // Time kinds: 0 unchanged, 1 now, 2 the given nanoseconds.
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_setattr(p_session bigint, p_id bigint, p_mode bigint, p_uid bigint, p_gid bigint,
                p_size bigint, p_akind int, p_atime bigint, p_mkind int, p_mtime bigint)
            RETURNS SETOF \(s).nodes LANGUAGE plpgsql AS $$
            DECLARE n \(s).nodes; t bigint := \(s).now_ns();
            BEGIN
                UPDATE \(s).nodes SET
                    mode = CASE WHEN p_mode IS NULL THEN mode ELSE (mode & 61440) | (p_mode & 4095) END,
                    uid = coalesce(p_uid, uid), gid = coalesce(p_gid, gid),
                    size = coalesce(p_size, size),
                    atime_ns = CASE p_akind WHEN 1 THEN t WHEN 2 THEN p_atime ELSE atime_ns END,
                    mtime_ns = CASE p_mkind WHEN 1 THEN t WHEN 2 THEN p_mtime
                                            ELSE CASE WHEN p_size IS NULL THEN mtime_ns ELSE t END END,
                    ctime_ns = t
                WHERE id = p_id RETURNING * INTO n;
                IF NOT FOUND THEN \(raise(2, "'inode ' || p_id || ' is gone'")) END IF;
                PERFORM \(s).changed(p_session, 'n' || p_id);
                RETURN NEXT n;
            END $$
            """,
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_bind(p_session bigint, p_id bigint, p_file_id text, p_size bigint, p_mtime_s bigint)
            RETURNS SETOF \(s).nodes LANGUAGE plpgsql AS $$
            DECLARE n \(s).nodes; t bigint := \(s).now_ns();
            BEGIN
                SELECT * INTO n FROM \(s).nodes WHERE id = p_id FOR UPDATE;
                IF NOT FOUND THEN \(raise(2, "'inode ' || p_id || ' is gone'")) END IF;
                IF (n.mode & 61440) <> 32768 THEN \(raise(1, "'only regular files can be bound to a file id'")) END IF;
                IF n.file_id IS NOT NULL AND n.file_id <> p_file_id THEN \(raise(17, "'already bound to ' || n.file_id")) END IF;
                UPDATE \(s).nodes SET file_id = p_file_id, size = p_size,
                    mtime_ns = CASE WHEN p_mtime_s IS NULL THEN mtime_ns ELSE p_mtime_s * 1000000000 END, ctime_ns = t
                WHERE id = p_id RETURNING * INTO n;
                PERFORM \(s).changed(p_session, 'n' || p_id);
                RETURN NEXT n;
            END $$
            """,
            // Queues the delete of a file id no node refers to any more.
            """
            CREATE OR REPLACE FUNCTION \(s).queue_delete(p_file_id text) RETURNS TABLE (del_id bigint, del_file_id text)
            LANGUAGE plpgsql AS $$
            DECLARE did bigint;
            BEGIN
                IF p_file_id IS NULL OR EXISTS (SELECT 1 FROM \(s).nodes WHERE file_id = p_file_id) THEN RETURN; END IF;
                INSERT INTO \(s).pending_deletes (file_id) VALUES (p_file_id) RETURNING id INTO did;
                RETURN QUERY SELECT did, p_file_id;
            END $$
            """,
            // The delete of a file a commit replaced: held (not returned, not listed as pending)
            // while another mount holds the node open, since its writer or reader may still use
            // the old file; the periodic sweep of any mount deletes it once nobody does.
            """
            CREATE OR REPLACE FUNCTION \(s).queue_delete_held(p_file_id text, p_ino bigint, p_session bigint)
            RETURNS TABLE (del_id bigint, del_file_id text) LANGUAGE plpgsql AS $$
            DECLARE did bigint;
            BEGIN
                IF p_file_id IS NULL OR EXISTS (SELECT 1 FROM \(s).nodes WHERE file_id = p_file_id) THEN RETURN; END IF;
                IF EXISTS (SELECT 1 FROM \(s).open_handles h WHERE h.ino = p_ino AND h.session <> p_session AND h.count > 0) THEN
                    INSERT INTO \(s).pending_deletes (file_id, hold_ino) VALUES (p_file_id, p_ino);
                    RETURN;
                END IF;
                INSERT INTO \(s).pending_deletes (file_id) VALUES (p_file_id) RETURNING id INTO did;
                RETURN QUERY SELECT did, p_file_id;
            END $$
            """,
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_commit(p_session bigint, p_id bigint, p_file_id text, p_size bigint)
            RETURNS TABLE (node \(s).nodes, del_id bigint, del_file_id text) LANGUAGE plpgsql AS $$
            DECLARE n \(s).nodes; old text; t bigint := \(s).now_ns(); d record;
            BEGIN
                SELECT file_id INTO old FROM \(s).nodes WHERE id = p_id FOR UPDATE;
                IF NOT FOUND THEN \(raise(2, "'inode ' || p_id || ' is gone'")) END IF;
                UPDATE \(s).nodes SET file_id = p_file_id, size = p_size, mtime_ns = t, ctime_ns = t
                WHERE id = p_id RETURNING * INTO n;
                -- A file another writer's commit had replaced (its delete held while this mount
                -- had the node open) is the name's again: its delete is off.
                IF p_file_id IS NOT NULL THEN DELETE FROM \(s).pending_deletes WHERE file_id = p_file_id; END IF;
                PERFORM \(s).changed(p_session, 'n' || p_id);
                IF old IS NOT NULL AND old IS DISTINCT FROM p_file_id THEN
                    SELECT * INTO d FROM \(s).queue_delete_held(old, p_id, p_session);
                    RETURN QUERY SELECT n, d.del_id, d.del_file_id;
                ELSE
                    RETURN QUERY SELECT n, NULL::bigint, NULL::text;
                END IF;
            END $$
            """,
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_unbind(p_session bigint, p_id bigint)
            RETURNS TABLE (del_id bigint, del_file_id text) LANGUAGE plpgsql AS $$
            DECLARE old text; t bigint := \(s).now_ns();
            BEGIN
                SELECT file_id INTO old FROM \(s).nodes WHERE id = p_id FOR UPDATE;
                IF NOT FOUND THEN \(raise(2, "'inode ' || p_id || ' is gone'")) END IF;
                IF old IS NULL THEN RETURN; END IF;
                UPDATE \(s).nodes SET file_id = NULL, size = 0, mtime_ns = t, ctime_ns = t WHERE id = p_id;
                PERFORM \(s).changed(p_session, 'n' || p_id);
                RETURN QUERY SELECT * FROM \(s).queue_delete(old);
            END $$
            """,
            // A node with no name left and no mount holding it open goes; its file's delete is queued.
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_purge(p_session bigint, p_id bigint)
            RETURNS TABLE (del_id bigint, del_file_id text) LANGUAGE plpgsql AS $$
            DECLARE n \(s).nodes;
            BEGIN
                SELECT * INTO n FROM \(s).nodes WHERE id = p_id FOR UPDATE;
                IF NOT FOUND OR n.nlink > 0 OR p_id = 1 THEN RETURN; END IF;
                IF EXISTS (SELECT 1 FROM \(s).open_handles h WHERE h.ino = p_id AND h.count > 0) THEN RETURN; END IF;
                DELETE FROM \(s).nodes WHERE id = p_id;
                DELETE FROM \(s).pending_metadata WHERE ino = p_id;
                DELETE FROM \(s).locks WHERE ino = p_id;
                RETURN QUERY SELECT * FROM \(s).queue_delete(n.file_id);
            END $$
            """,
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_open(p_session bigint, p_id bigint, p_write boolean)
            RETURNS TABLE (node \(s).nodes, elsewhere boolean) LANGUAGE plpgsql AS $$
            DECLARE n \(s).nodes; other boolean;
            BEGIN
                -- Opens for writing of one node serialize (FOR UPDATE), so of two writers opening
                -- at once the second sees the first's handle.
                IF p_write THEN
                    SELECT * INTO n FROM \(s).nodes x WHERE x.id = p_id FOR UPDATE;
                ELSE
                    SELECT * INTO n FROM \(s).nodes x WHERE x.id = p_id FOR SHARE;
                END IF;
                IF NOT FOUND THEN RETURN; END IF;
                other := EXISTS (SELECT 1 FROM \(s).open_handles h WHERE h.ino = p_id AND h.session <> p_session AND h.count > 0);
                INSERT INTO \(s).open_handles AS h (session, ino, count) VALUES (p_session, p_id, 1)
                ON CONFLICT (session, ino) DO UPDATE SET count = h.count + 1;
                RETURN QUERY SELECT n, other;
            END $$
            """,
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_close(p_session bigint, p_id bigint)
            RETURNS TABLE (del_id bigint, del_file_id text) LANGUAGE plpgsql AS $$
            DECLARE c int;
            BEGIN
                UPDATE \(s).open_handles SET count = count - 1 WHERE session = p_session AND ino = p_id RETURNING count INTO c;
                IF c IS NOT NULL AND c > 0 THEN RETURN; END IF;
                DELETE FROM \(s).open_handles WHERE session = p_session AND ino = p_id;
                RETURN QUERY SELECT * FROM \(s).fdfs_purge(p_session, p_id);
            END $$
            """,
            // fsync(2): a write committed with synchronous_commit on waits until the WAL is on
            // disk up to it, which holds every earlier (asynchronous) commit.
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_sync(p_session bigint) RETURNS void LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM set_config('synchronous_commit', 'on', true);
                UPDATE \(s).sessions SET heartbeat = now() WHERE id = p_session;
            END $$
            """,
            // Several closes in one transaction (group commit), in inode order (the order locks
            // are taken in); `ord` is the position in p_ids of the close that queued a delete.
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_close_many(p_session bigint, p_ids bigint[])
            RETURNS TABLE (ord bigint, del_id bigint, del_file_id text) LANGUAGE plpgsql AS $$
            DECLARE r record; d record;
            BEGIN
                FOR r IN SELECT u.id AS ino, u.o AS pos FROM unnest(p_ids) WITH ORDINALITY AS u(id, o) ORDER BY u.id, u.o LOOP
                    FOR d IN SELECT * FROM \(s).fdfs_close(p_session, r.ino) LOOP
                        ord := r.pos; del_id := d.del_id; del_file_id := d.del_file_id;
                        RETURN NEXT;
                    END LOOP;
                END LOOP;
            END $$
            """,
            // Sessions whose heartbeat is older than their ttl go with their handles and locks;
            // then nodes nobody names or holds open go, their deletes queued.
            """
            CREATE OR REPLACE FUNCTION \(s).fdfs_expire(p_session bigint) RETURNS int LANGUAGE plpgsql AS $$
            DECLARE k int; id_ bigint;
            BEGIN
                WITH dead AS (DELETE FROM \(s).sessions WHERE heartbeat < now() - make_interval(secs => ttl_s) RETURNING id)
                SELECT count(*) INTO k FROM dead;
                FOR id_ IN SELECT n.id FROM \(s).nodes n WHERE n.nlink <= 0 AND n.id <> 1
                    AND NOT EXISTS (SELECT 1 FROM \(s).open_handles h WHERE h.ino = n.id) LOOP
                    PERFORM \(s).fdfs_purge(p_session, id_);
                END LOOP;
                RETURN k;
            END $$
            """,
        ]
    }
}
