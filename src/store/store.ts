/**
 * The event store: one SQLite database (better-sqlite3) that this class
 * alone opens, migrates, writes and reads. Synchronous, as better-sqlite3
 * is; the daemon reaches it through StoreWriter (writer.ts), which runs it
 * in a worker thread so that ingest never waits on the disk.
 *
 * On open: WAL journal (readers never block the writer), `synchronous =
 * NORMAL` (a crash loses at most the last transactions, never the
 * database), incremental auto-vacuum (retention gives pages back), and the
 * schema brought to SCHEMA_VERSION by MIGRATIONS. Statements are prepared
 * once. Schema and design: schema.ts and docs/store.md.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import { StoreError, storeError } from './errors.js';
import { decodePayload, packPayload, unpackPayload, type DecodedEvent } from './payload.js';
import { ProcTracker, type ProcChange, type ProcSpan } from './procs.js';
import { eventFacts, parseOp, type StoreRow } from './row.js';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, StrKind } from './schema.js';
import { buildSearch, type SearchQuery } from './query.js';
import type {
  ChainRow,
  CountRow,
  EventStoreOptions,
  IngestResult,
  OpRow,
  ProcRow,
  ReportRow,
  RetentionResult,
  StoredEvent,
  StoreInfo,
} from './types.js';

export type * from './types.js';

/** An event as the process-span backfill (migration 2) reads it. */
interface BackfillRow {
  readonly id: number;
  readonly timeMs: number;
  readonly node: number | null;
  readonly chain: number | null;
  readonly exe: number | null;
  readonly contid: string | null;
  readonly data: Buffer;
}

const CACHE_LIMIT = 100_000;
const RETENTION_CHUNK = 5_000;

interface Statements {
  readonly strGet: Statement<[number, string], number>;
  readonly strPut: Statement<[number, string]>;
  readonly chainGet: Statement<[string], number>;
  readonly chainPut: Statement<[string, number]>;
  readonly chainIdPut: Statement<[string, number, number]>;
  readonly chainStats: Statement<[{ first: number; last: number; n: number; id: number }]>;
  readonly eventPut: Statement;
  readonly payloadPut: Statement<[number, Buffer]>;
  readonly refPut: Statement<[number, number, number]>;
  readonly opPut: Statement;
  readonly procOpen: Statement;
  readonly procClose: Statement<[number, string, number]>;
  readonly procBorn: Statement<[{ ms: number; id: number }]>;
}

/** The quoted SQL list of integer ids `(1,2,3)`, for ids that came from the database itself. */
function idList(ids: readonly number[]): string {
  return `(${ids.map((n) => String(Math.trunc(n))).join(',')})`;
}

/** The levels of a chain: `4,^2,^1` → [4, 2, 1]; `unknown` → [unknown]. */
export function chainLevels(chain: string): string[] {
  return chain.split(',^');
}

/** The event store. */
export class EventStore {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #options: EventStoreOptions;
  readonly #readOnly: boolean;
  #st: Statements | null = null;
  /** The statements write the sets' names and metadata (schema version 3 and later). */
  #described = true;
  readonly #strs = new Map<string, number>();
  readonly #chains = new Map<string, number>();
  #procs: ProcTracker | null = null;
  #closed = false;

  private constructor(path: string, db: Database.Database, options: EventStoreOptions) {
    this.path = path;
    this.#db = db;
    this.#options = options;
    this.#readOnly = options.readOnly === true;
  }

  /**
   * Opens the store at `path`, creating it unless read-only.
   *
   * @throws {StoreError} ERR_STORE_NOT_FOUND, ERR_STORE_ACCESS, ERR_STORE_FOREIGN,
   *   ERR_STORE_CORRUPT, ERR_STORE_TOO_NEW, ERR_STORE_BUSY
   */
  static open(path: string, options: EventStoreOptions = {}): EventStore {
    const readOnly = options.readOnly === true;
    if (readOnly) {
      let isFile = false;
      try {
        isFile = statSync(path).isFile();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new StoreError(
            'ERR_STORE_NOT_FOUND',
            `Cannot open event store "${path}": no such file (ENOENT)`,
          );
        }
        throw storeError(err, 'open event store', path);
      }
      if (!isFile) throw new StoreError('ERR_STORE_ACCESS', `Cannot open event store "${path}": not a file`);
    }
    if (!readOnly) {
      const parent = dirname(path);
      let isDir = false;
      try {
        isDir = statSync(parent).isDirectory();
      } catch (err) {
        throw storeError(err, 'create event store', path);
      }
      if (!isDir) {
        throw new StoreError(
          'ERR_STORE_ACCESS',
          `Cannot create event store "${path}": "${parent}" is not a directory`,
        );
      }
      // The writer keeps its -wal and -shm files beside the database.
      try {
        accessSync(parent, constants.W_OK);
        if (existsSync(path)) accessSync(path, constants.W_OK | constants.R_OK);
      } catch (err) {
        throw storeError(err, 'write event store', path);
      }
    }
    let db: Database.Database;
    try {
      db = new Database(path, {
        readonly: readOnly,
        fileMustExist: readOnly,
        timeout: options.busyTimeoutMs ?? 5000,
      });
    } catch (err) {
      throw storeError(err, 'open event store', path);
    }
    const store = new EventStore(path, db, options);
    try {
      store.#prepareDatabase();
    } catch (err) {
      db.close();
      throw storeError(err, 'open event store', path);
    }
    return store;
  }

  #prepareDatabase(): void {
    const db = this.#db;
    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    const tables = db
      .prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'")
      .pluck()
      .get() as number;
    const empty = appId === 0 && version === 0 && tables === 0;
    if (!empty && appId !== APPLICATION_ID) {
      throw new StoreError(
        'ERR_STORE_FOREIGN',
        `Cannot open event store "${this.path}": it is an SQLite database of something else ` +
          `(application_id 0x${appId.toString(16)}, ${tables} tables)`,
      );
    }
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        'ERR_STORE_TOO_NEW',
        `Cannot open event store "${this.path}": its schema is version ${version}, ` +
          `this contid knows up to ${SCHEMA_VERSION}; use a newer contid`,
      );
    }
    db.pragma(`busy_timeout = ${this.#options.busyTimeoutMs ?? 5000}`);
    db.pragma('temp_store = MEMORY');
    db.pragma('cache_size = -32768');
    if (this.#readOnly) {
      if (empty) {
        throw new StoreError(
          'ERR_STORE_FOREIGN',
          `Cannot open event store "${this.path}": the file is empty`,
        );
      }
      if (version < SCHEMA_VERSION) {
        throw new StoreError(
          'ERR_STORE_TOO_NEW',
          `Cannot read event store "${this.path}": its schema is version ${version}, this contid reads ` +
            `version ${SCHEMA_VERSION}; upgrade it with "contid store migrate ${this.path}"`,
        );
      }
      db.pragma('query_only = 1');
      return;
    }
    if (empty) {
      // Must precede the first table: SQLite fixes auto-vacuum at creation.
      db.pragma('auto_vacuum = INCREMENTAL');
      db.pragma('page_size = 4096');
    }
    const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
    if (mode !== 'wal') {
      throw new StoreError(
        'ERR_STORE_IO',
        `Cannot open event store "${this.path}": WAL journal refused (${mode})`,
      );
    }
    db.pragma('synchronous = NORMAL');
    db.pragma('journal_size_limit = 67108864');
    if (empty) db.pragma(`application_id = ${APPLICATION_ID}`);
    this.#migrate(version);
    this.#prepareStatements();
    this.#startProcs();
  }

  #migrate(from: number): void {
    for (const m of MIGRATIONS) {
      if (m.version <= from) continue;
      this.#db.transaction(() => {
        this.#db.exec(m.sql);
        if (m.backfill === 'ops-and-procs') this.#backfillOpsAndProcs(m.version);
        if (m.backfill === 'op-descriptions') this.#backfillDescriptions();
        this.#db.pragma(`user_version = ${m.version}`);
      })();
    }
  }

  /**
   * Prepares the statements of schema `version` (a backfill during a
   * migration runs at the version it migrates to, not the last one).
   */
  #prepareStatements(version = SCHEMA_VERSION): void {
    const db = this.#db;
    // Version 3 added the set's name and metadata to `ops`.
    this.#described = version >= 3;
    this.#st = {
      strGet: db.prepare<[number, string], number>('SELECT id FROM strs WHERE kind = ? AND text = ?').pluck(),
      strPut: db.prepare('INSERT INTO strs (kind, text) VALUES (?, ?)'),
      chainGet: db.prepare<[string], number>('SELECT id FROM chains WHERE chain = ?').pluck(),
      chainPut: db.prepare('INSERT INTO chains (chain, depth) VALUES (?, ?)'),
      chainIdPut: db.prepare('INSERT OR IGNORE INTO chain_ids (contid, chain, level) VALUES (?, ?, ?)'),
      chainStats: db.prepare(
        `UPDATE chains SET first_ms = min(coalesce(first_ms, @first), @first),
         last_ms = max(coalesce(last_ms, @last), @last), events = events + @n WHERE id = @id`,
      ),
      eventPut: db.prepare(
        `INSERT INTO events (time_ms, serial, node, chain, pid, ppid, exe, syscall, exit, key, success, types, ops, forgeries, size)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      payloadPut: db.prepare('INSERT INTO payloads (id, data) VALUES (?, ?)'),
      refPut: db.prepare('INSERT OR IGNORE INTO event_refs (chain, time_ms, event) VALUES (?, ?, ?)'),
      opPut: db.prepare(
        this.#described
          ? `INSERT INTO ops (event, time_ms, op, opid, contid, old_contid, res, errno, caller_pid, uid, auid, exe, body, name, meta)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
          : `INSERT INTO ops (event, time_ms, op, opid, contid, old_contid, res, errno, caller_pid, uid, auid, exe, body)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      procOpen: db.prepare(
        `INSERT INTO procs (id, node, pid, ppid, chain, exe, start_ms, how, born_ms, born, event)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      procClose: db.prepare('UPDATE procs SET end_ms = ?, end_how = ? WHERE id = ?'),
      procBorn: db.prepare(
        "UPDATE procs SET how = 'fork', start_ms = @ms, born_ms = @ms, born = 1 WHERE id = @id",
      ),
    };
  }

  /** Loads the processes still open from the table, for the tracker to go on with. */
  #startProcs(): void {
    const db = this.#db;
    const open = db
      .prepare(
        `SELECT id, node, pid, ppid, chain, exe, start_ms AS startMs, how, born_ms AS bornMs, born, event
         FROM procs WHERE end_ms IS NULL ORDER BY id`,
      )
      .all() as (Omit<ProcSpan, 'born'> & { born: number })[];
    const next = (db.prepare('SELECT coalesce(max(id), 0) + 1 FROM procs').pluck().get() as number) ?? 1;
    this.#procs = new ProcTracker({
      nextId: next,
      open: open.map((o) => ({ ...o, born: o.born === 1 })),
      maxOpen: this.#options.maxOpenProcesses ?? 1_000_000,
    });
  }

  #statements(): Statements {
    if (this.#closed)
      throw new StoreError('ERR_STORE_CLOSED', `Cannot write event store "${this.path}": it is closed`);
    if (this.#st === null) {
      throw new StoreError(
        'ERR_STORE_ACCESS',
        `Cannot write event store "${this.path}": it was opened read-only`,
      );
    }
    return this.#st;
  }

  #str(kind: StrKind, text: string | null): number | null {
    if (text === null) return null;
    const cacheKey = `${kind}\u0000${text}`;
    const cached = this.#strs.get(cacheKey);
    if (cached !== undefined) return cached;
    const st = this.#st!;
    let id = st.strGet.get(kind, text);
    if (id === undefined) id = Number(st.strPut.run(kind, text).lastInsertRowid);
    if (this.#strs.size >= CACHE_LIMIT) this.#strs.clear();
    this.#strs.set(cacheKey, id);
    return id;
  }

  #chain(chain: string | null): number | null {
    if (chain === null) return null;
    const cached = this.#chains.get(chain);
    if (cached !== undefined) return cached;
    const st = this.#st!;
    let id = st.chainGet.get(chain);
    if (id === undefined) {
      const levels = chainLevels(chain);
      id = Number(st.chainPut.run(chain, levels.length).lastInsertRowid);
      for (let level = 0; level < levels.length; level++) st.chainIdPut.run(levels[level]!, id, level);
    }
    if (this.#chains.size >= CACHE_LIMIT) this.#chains.clear();
    this.#chains.set(chain, id);
    return id;
  }

  /**
   * Stores events, in one transaction, in the order given (the stream's):
   * `search` returns them in that order.
   */
  ingest(rows: readonly StoreRow[]): IngestResult {
    const st = this.#statements();
    let payloadBytes = 0;
    let storedBytes = 0;
    const level = this.#options.compressionLevel;
    this.#db.transaction(() => {
      const stats = new Map<number, { first: number; last: number; n: number }>();
      const changes: ProcChange[] = [];
      for (const row of rows) {
        const chain = this.#chain(row.contid);
        const node = this.#str(StrKind.node, row.node);
        const exe = this.#str(StrKind.exe, row.exe);
        const id = Number(
          st.eventPut.run(
            row.timeMs,
            row.serial,
            node,
            chain,
            row.pid,
            row.ppid,
            exe,
            this.#str(StrKind.syscall, row.syscall),
            row.exit,
            this.#str(StrKind.key, row.key),
            row.success === null ? null : row.success ? 1 : 0,
            this.#str(StrKind.types, row.types),
            row.ops.length,
            row.forgeries,
            row.payload.byteLength,
          ).lastInsertRowid,
        );
        const packed = packPayload(
          Buffer.from(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength),
          {
            ...(level === undefined ? {} : { level }),
          },
        );
        st.payloadPut.run(id, packed);
        payloadBytes += row.payload.byteLength;
        storedBytes += packed.length;
        for (const ref of row.refs) st.refPut.run(this.#chain(ref)!, row.timeMs, id);
        this.#storeOps(row, id);
        if (chain !== null) {
          const s = stats.get(chain);
          if (s === undefined) stats.set(chain, { first: row.timeMs, last: row.timeMs, n: 1 });
          else {
            s.first = Math.min(s.first, row.timeMs);
            s.last = Math.max(s.last, row.timeMs);
            s.n++;
          }
        }
        this.#procs!.event(
          {
            id,
            timeMs: row.timeMs,
            node,
            chain,
            pid: row.pid,
            ppid: row.ppid,
            exe,
            life: row.life,
            drops: this.#drops(row),
          },
          changes,
        );
      }
      for (const [chain, s] of stats) st.chainStats.run({ first: s.first, last: s.last, n: s.n, id: chain });
      this.#applyProcChanges(changes);
    })();
    return { events: rows.length, payloadBytes, storedBytes };
  }

  #storeOps(row: Pick<StoreRow, 'ops' | 'timeMs'>, event: number): void {
    const st = this.#st!;
    for (const op of row.ops) {
      const values = [
        event,
        row.timeMs,
        op.op,
        op.opid,
        op.contid,
        op.oldContid,
        op.res,
        op.errno,
        op.callerPid,
        op.uid,
        op.auid,
        op.exe,
        op.body,
      ];
      if (this.#described) values.push(op.name, op.meta === null ? null : JSON.stringify(op.meta));
      st.opPut.run(...values);
    }
  }

  /** The chains an event's accepted drops end. */
  #drops(row: Pick<StoreRow, 'ops'>): number[] {
    const out: number[] = [];
    for (const op of row.ops) {
      if (op.op !== 'drop' || op.res !== 1 || op.oldContid === '-1') continue;
      const id = this.#chain(op.oldContid);
      if (id !== null) out.push(id);
    }
    return out;
  }

  #applyProcChanges(changes: readonly ProcChange[]): void {
    const st = this.#st!;
    for (const c of changes) {
      switch (c.kind) {
        case 'open': {
          const s = c.span;
          st.procOpen.run(
            s.id,
            s.node,
            s.pid,
            s.ppid,
            s.chain,
            s.exe,
            s.startMs,
            s.how,
            s.bornMs,
            s.born ? 1 : 0,
            s.event,
          );
          break;
        }
        case 'close':
          st.procClose.run(c.endMs, c.how, c.id);
          break;
        case 'born':
          st.procBorn.run({ ms: c.startMs, id: c.id });
          break;
      }
    }
  }

  /**
   * Migration 2: the CONTAINER_OP records and process lifetimes of events
   * stored before, read back from their payloads in stream order.
   */
  #backfillOpsAndProcs(version: number): void {
    this.#prepareStatements(version);
    this.#procs = new ProcTracker({ nextId: 1, maxOpen: this.#options.maxOpenProcesses ?? 1_000_000 });
    // In chunks: better-sqlite3 allows no write while a query is being iterated.
    const chunk = this.#db.prepare(
      `SELECT e.id, e.time_ms AS timeMs, e.node, e.chain, e.exe, c.chain AS contid, p.data
       FROM events e JOIN payloads p ON p.id = e.id LEFT JOIN chains c ON c.id = e.chain
       WHERE e.id > ? ORDER BY e.id LIMIT 5000`,
    );
    const changes: ProcChange[] = [];
    for (let last = 0; ;) {
      const rows = chunk.all(last) as BackfillRow[];
      if (rows.length === 0) break;
      last = rows[rows.length - 1]!.id;
      this.#backfillChunk(rows, changes);
    }
    this.#applyProcChanges(changes);
  }

  /**
   * Migration 3: the name and metadata of the sets stored before, from their
   * records' text, which version 2 kept whole (an import of a newer
   * contid's JSON, say).
   */
  #backfillDescriptions(): void {
    // In chunks: better-sqlite3 allows no write while a query is being iterated.
    const chunk = this.#db.prepare<[number], { id: number; body: string }>(
      `SELECT id, body FROM ops WHERE id > ? AND (body LIKE '% name=%' OR body LIKE '% meta.%')
       ORDER BY id LIMIT 5000`,
    );
    const put = this.#db.prepare('UPDATE ops SET name = ?, meta = ? WHERE id = ?');
    for (let last = 0; ;) {
      const rows = chunk.all(last);
      if (rows.length === 0) break;
      last = rows[rows.length - 1]!.id;
      for (const r of rows) {
        const op = parseOp(r.body);
        put.run(op.name, op.meta === null ? null : JSON.stringify(op.meta), r.id);
      }
    }
  }

  #backfillChunk(rows: readonly BackfillRow[], changes: ProcChange[]): void {
    for (const e of rows) {
      const decoded = decodePayload(unpackPayload(e.data));
      const facts = eventFacts(
        decoded.event.records.map((r) => ({
          type: r.type,
          typeName: r.typeName,
          value: (n) => r.field(n),
        })),
        decoded.extras,
        e.contid,
      );
      this.#storeOps({ ops: facts.ops, timeMs: e.timeMs }, e.id);
      this.#procs!.event(
        {
          id: e.id,
          timeMs: e.timeMs,
          node: e.node,
          chain: e.chain,
          pid: facts.pid,
          ppid: facts.ppid,
          exe: e.exe,
          life: facts.life,
          drops: this.#drops(facts),
        },
        changes,
      );
      if (changes.length > 10_000) {
        this.#applyProcChanges(changes);
        changes.length = 0;
      }
    }
  }

  /**
   * Deletes the oldest events past the age and size bounds, in chunks, and
   * gives surplus free pages back to the file system.
   */
  retain(): RetentionResult {
    this.#statements();
    const db = this.#db;
    let deletedByAge = 0;
    let deletedBySize = 0;
    const maxAge = this.#options.maxAgeMs ?? null;
    if (maxAge !== null) {
      const newest = db.prepare('SELECT max(time_ms) FROM events').pluck().get() as number | null;
      if (newest !== null) {
        const cutoff = newest - maxAge;
        const pick = db.prepare<[number, number], number>(
          'SELECT id FROM events WHERE time_ms < ? ORDER BY time_ms LIMIT ?',
        );
        for (;;) {
          const ids = pick.pluck().all(cutoff, RETENTION_CHUNK);
          if (ids.length === 0) break;
          this.#deleteEvents(ids);
          deletedByAge += ids.length;
        }
      }
    }
    const maxBytes = this.#options.maxBytes ?? null;
    if (maxBytes !== null) {
      const pick = db.prepare<[number], number>('SELECT id FROM events ORDER BY id LIMIT ?');
      // Down to 90% of the bound, so that the next passes do not each delete a little.
      while (this.#usedBytes() > maxBytes) {
        const ids = pick.pluck().all(RETENTION_CHUNK);
        if (ids.length === 0) break;
        const target = maxBytes * 0.9;
        let n = 0;
        do {
          const chunk = ids.slice(n, n + 500);
          if (chunk.length === 0) break;
          this.#deleteEvents(chunk);
          n += chunk.length;
          deletedBySize += chunk.length;
        } while (this.#usedBytes() > target);
      }
    }
    let vacuumedPages = 0;
    if (deletedByAge + deletedBySize > 0) {
      this.#pruneOrphans();
      vacuumedPages = this.#vacuum(maxBytes);
    }
    return { deletedByAge, deletedBySize, vacuumedPages };
  }

  #usedBytes(): number {
    const db = this.#db;
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    const size = db.pragma('page_size', { simple: true }) as number;
    return (pages - free) * size;
  }

  #deleteEvents(ids: readonly number[]): void {
    const db = this.#db;
    const list = idList(ids);
    db.transaction(() => {
      const gone = db
        .prepare(
          `SELECT chain, count(*) AS n FROM events WHERE id IN ${list} AND chain IS NOT NULL GROUP BY chain`,
        )
        .all() as { chain: number; n: number }[];
      db.exec(`DELETE FROM events WHERE id IN ${list}`);
      db.exec(`DELETE FROM payloads WHERE id IN ${list}`);
      db.exec(`DELETE FROM event_refs WHERE event IN ${list}`);
      db.exec(`DELETE FROM ops WHERE event IN ${list}`);
      const fix = db.prepare(
        `UPDATE chains SET events = events - @n,
           first_ms = (SELECT min(time_ms) FROM events WHERE chain = @id) WHERE id = @id`,
      );
      for (const g of gone) fix.run({ n: g.n, id: g.chain });
      // Spans that ended before the oldest event left cannot be shown by any --at.
      const oldest = db.prepare('SELECT min(time_ms) FROM events').pluck().get() as number | null;
      if (oldest !== null) db.prepare('DELETE FROM procs WHERE end_ms < ?').run(oldest);
    })();
  }

  /** Interned text and chains no event uses any more. */
  #pruneOrphans(): void {
    const db = this.#db;
    db.transaction(() => {
      const columns: [StrKind, string][] = [
        [StrKind.node, 'node'],
        [StrKind.exe, 'exe'],
        [StrKind.syscall, 'syscall'],
        [StrKind.key, 'key'],
        [StrKind.types, 'types'],
      ];
      for (const [kind, column] of columns) {
        const also = kind === StrKind.exe ? ' AND NOT EXISTS (SELECT 1 FROM procs p WHERE p.exe = s.id)' : '';
        db.prepare(
          `DELETE FROM strs AS s WHERE kind = ? AND NOT EXISTS (SELECT 1 FROM events e WHERE e.${column} = s.id)${also}`,
        ).run(kind);
      }
      db.exec(`
        DELETE FROM chains AS c WHERE events <= 0
          AND NOT EXISTS (SELECT 1 FROM events e WHERE e.chain = c.id)
          AND NOT EXISTS (SELECT 1 FROM event_refs r WHERE r.chain = c.id)
          AND NOT EXISTS (SELECT 1 FROM procs p WHERE p.chain = c.id);
        DELETE FROM chain_ids WHERE chain NOT IN (SELECT id FROM chains);
      `);
    })();
    this.#strs.clear();
    this.#chains.clear();
  }

  /** Gives free pages back: all but 10% slack, or down to the size bound. */
  #vacuum(maxBytes: number | null): number {
    const db = this.#db;
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    const size = db.pragma('page_size', { simple: true }) as number;
    let give = free - Math.floor(pages * 0.1);
    if (maxBytes !== null) give = Math.max(give, pages - Math.floor(maxBytes / size));
    give = Math.min(give, free);
    if (give <= 0) return 0;
    db.pragma(`incremental_vacuum(${give})`);
    return give;
  }

  /** Events matching a query, in stream order. */
  search(query: SearchQuery): IterableIterator<StoredEvent> {
    const sql = buildSearch(query, {
      chains: (ids, exact) => this.chainsHolding(ids, exact),
      strs: (kind, match) => this.#strIds(kind, match),
    });
    if (sql === null) return [][Symbol.iterator]();
    return this.#iterate(
      this.#read(() => this.#db.prepare(sql.text).iterate(...sql.params) as IterableIterator<StoredEvent>),
    );
  }

  /** The rows of `rows`, with SQLite's errors as StoreErrors. */
  *#iterate<T>(rows: IterableIterator<T>): Generator<T, void, undefined> {
    try {
      yield* rows;
    } catch (err) {
      throw storeError(err, 'read event store', this.path);
    }
  }

  /** What `read` returns, with SQLite's errors (a damaged page, a lock) as StoreErrors. */
  #read<T>(read: () => T): T {
    try {
      return read();
    } catch (err) {
      throw storeError(err, 'read event store', this.path);
    }
  }

  /** Ids of the chains that hold one of `ids` (at level 0 only, when `exact`). */
  chainsHolding(ids: readonly string[], exact: boolean): number[] {
    return this.#read(() => {
      if (ids.length === 0) return [];
      const marks = ids.map(() => '?').join(',');
      const sql = `SELECT DISTINCT chain FROM chain_ids WHERE contid IN (${marks})${exact ? ' AND level = 0' : ''}`;
      return this.#db
        .prepare(sql)
        .pluck()
        .all(...ids) as number[];
    });
  }

  /** Ids of interned text of `kind` for which `match` holds. */
  #strIds(kind: StrKind, match: (text: string) => boolean): number[] {
    const rows = this.#db.prepare('SELECT id, text FROM strs WHERE kind = ?').all(kind) as {
      id: number;
      text: string;
    }[];
    return rows.filter((r) => match(r.text)).map((r) => r.id);
  }

  /** Decodes a stored event's records. */
  static decode(event: StoredEvent): DecodedEvent {
    return decodePayload(unpackPayload(event.data));
  }

  /** Every chain with stored events or named by one, oldest first. */
  chains(): ChainRow[] {
    return this.#read(() => {
      return this.#db
        .prepare('SELECT id, chain, first_ms AS firstMs, last_ms AS lastMs, events FROM chains ORDER BY id')
        .all() as ChainRow[];
    });
  }

  /**
   * The chains with events at or before `atMs`, with their first and last
   * event and count up to then (each by an index range).
   */
  chainsAt(atMs: number): ChainRow[] {
    return this.#read(() => {
      const stat = this.#db.prepare(
        `SELECT min(time_ms) AS firstMs, max(time_ms) AS lastMs, count(*) AS events
       FROM events WHERE chain = ? AND time_ms <= ?`,
      );
      const out: ChainRow[] = [];
      for (const c of this.chains()) {
        if (c.firstMs === null || c.firstMs > atMs) continue;
        const s = stat.get(c.id, atMs) as { firstMs: number | null; lastMs: number | null; events: number };
        if (s.events > 0) out.push({ ...c, ...s });
      }
      return out;
    });
  }

  /** Every stored CONTAINER_OP, in stream order, up to `untilMs` when given. */
  ops(untilMs: number | null = null): OpRow[] {
    return this.#read(() => {
      const rows = this.#db
        .prepare(
          `SELECT id, event, time_ms AS timeMs, op, opid, contid, old_contid AS oldContid, res, errno,
                caller_pid AS callerPid, uid, auid, exe, name, meta, body
         FROM ops WHERE @until IS NULL OR time_ms <= @until ORDER BY event, id`,
        )
        .all({ until: untilMs }) as (Omit<OpRow, 'meta'> & { meta: string | null })[];
      return rows.map((r) => ({ ...r, meta: r.meta === null ? null : this.#metaOf(r.id, r.meta) }));
    });
  }

  /** The `meta` column of operation `id`: a JSON object of strings, or the store is damaged. */
  #metaOf(id: number, text: string): Readonly<Record<string, string>> {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = null;
    }
    if (
      typeof value !== 'object' ||
      value === null ||
      Array.isArray(value) ||
      !Object.values(value).every((v) => typeof v === 'string')
    ) {
      throw new StoreError(
        'ERR_STORE_CORRUPT',
        `Cannot read event store "${this.path}": the metadata of operation ${id} is not a JSON object of strings`,
      );
    }
    return value as Record<string, string>;
  }

  /** The processes of `chains` alive at `atMs` (null: the ones still open). */
  processes(chains: readonly number[], atMs: number | null): ProcRow[] {
    return this.#read(() => {
      if (chains.length === 0) return [];
      const cols = `p.id, p.pid, p.ppid, p.chain, s.text AS exe, p.start_ms AS startMs, p.how,
                    p.born_ms AS bornMs, p.born = 1 AS born,
                  p.end_ms AS endMs, p.end_how AS endHow`;
      const from = `procs p LEFT JOIN strs s ON s.id = p.exe`;
      const list = idList(chains);
      if (atMs === null) {
        return this.#db
          .prepare(`SELECT ${cols} FROM ${from} WHERE p.chain IN ${list} AND p.end_ms IS NULL ORDER BY p.pid`)
          .all() as ProcRow[];
      }
      return this.#db
        .prepare(
          `SELECT ${cols} FROM ${from} WHERE p.chain IN ${list} AND p.end_ms IS NULL AND p.start_ms <= @at
         UNION ALL
         SELECT ${cols} FROM ${from} WHERE p.chain IN ${list} AND p.end_ms > @at AND p.start_ms <= @at
         ORDER BY 2`,
        )
        .all({ at: atMs }) as ProcRow[];
    });
  }

  /** Per chain: events, execs, failures, forgeries and ops in `[sinceMs, untilMs]`. */
  report(
    range: { readonly sinceMs: number | null; readonly untilMs: number | null },
    only: { readonly chains: readonly number[]; readonly host: boolean } | null,
  ): {
    rows: ReportRow[];
    exes: CountRow[];
    keys: CountRow[];
  } {
    return this.#read(() => {
      const db = this.#db;
      let where = 'e.time_ms >= coalesce(@since, -9e18) AND e.time_ms <= coalesce(@until, 9e18)';
      if (only !== null) {
        const parts = [`e.chain IN ${idList(only.chains)}`];
        if (only.host) parts.push('e.chain IS NULL');
        where += ` AND (${parts.join(' OR ')})`;
      }
      const execIds = this.#strIds(StrKind.syscall, (t) => t === 'execve' || t === 'execveat');
      const rows = db
        .prepare(
          `SELECT e.chain, count(*) AS events, sum(e.syscall IN ${idList(execIds)} AND e.success = 1) AS execs,
                sum(e.success = 0) AS failed, sum(e.forgeries) AS forgeries, sum(e.ops) AS ops,
                min(e.time_ms) AS firstMs, max(e.time_ms) AS lastMs
         FROM events e WHERE ${where} GROUP BY e.chain`,
        )
        .all({ since: range.sinceMs, until: range.untilMs }) as ReportRow[];
      const counts = (column: 'exe' | 'key'): CountRow[] =>
        db
          .prepare(
            `SELECT e.chain, s.text, count(*) AS count FROM events e JOIN strs s ON s.id = e.${column}
           WHERE ${where} GROUP BY e.chain, e.${column}`,
          )
          .all({ since: range.sinceMs, until: range.untilMs }) as CountRow[];
      return { rows, exes: counts('exe'), keys: counts('key') };
    });
  }

  /** Sizes and counts. */
  info(): StoreInfo {
    return this.#read(() => {
      const db = this.#db;
      const one = (sql: string): number | null => db.prepare(sql).pluck().get() as number | null;
      const size = (p: string): number => {
        try {
          return statSync(p).size;
        } catch {
          return 0;
        }
      };
      return {
        path: this.path,
        schemaVersion: db.pragma('user_version', { simple: true }) as number,
        events: one('SELECT count(*) FROM events') ?? 0,
        firstMs: one('SELECT min(time_ms) FROM events'),
        lastMs: one('SELECT max(time_ms) FROM events'),
        containers: one("SELECT count(*) FROM chains WHERE events > 0 AND chain != 'unknown'") ?? 0,
        processes: one('SELECT count(*) FROM procs WHERE end_ms IS NULL') ?? 0,
        fileBytes: size(this.path),
        walBytes: size(`${this.path}-wal`),
        usedBytes: this.#usedBytes(),
        payloadBytes: one('SELECT sum(size) FROM events') ?? 0,
        storedPayloadBytes: one('SELECT sum(length(data)) FROM payloads') ?? 0,
      };
    });
  }

  /**
   * Checks the database's structure (SQLite's quick_check) and that every
   * stored event's records read back. Returns the problems found (at most
   * `limit`), none when the store is sound. Reads the whole file.
   */
  check(limit = 20): string[] {
    const problems = this.#read(() =>
      (
        this.#db
          .prepare(`PRAGMA quick_check(${Math.trunc(limit)})`)
          .pluck()
          .all() as string[]
      ).filter((p) => p !== 'ok'),
    );
    if (problems.length > 0) return problems;
    for (const e of this.#iterate(
      this.#db.prepare('SELECT id, data FROM payloads').iterate() as IterableIterator<{
        id: number;
        data: Buffer;
      }>,
    )) {
      try {
        decodePayload(unpackPayload(e.data));
      } catch (err) {
        problems.push(`event ${e.id}: ${(err as Error).message}`);
        if (problems.length >= limit) break;
      }
    }
    return problems;
  }

  /** Lets SQLite refresh its query statistics (cheap; worth it after large ingests). */
  optimize(): void {
    if (!this.#readOnly) this.#db.pragma('optimize');
  }

  /**
   * Closes the database (idempotent). A writer leaves the file complete in
   * itself: the WAL checkpointed into it and the rollback journal mode set,
   * which a reader can open without creating `-wal` and `-shm` files (a
   * store copied to a read-only directory or medium). The next writer
   * turns WAL on again. With readers still open the mode stays WAL.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (!this.#readOnly) {
        this.#db.pragma('optimize');
        this.#db.pragma('wal_checkpoint(TRUNCATE)');
        this.#db.pragma('journal_mode = DELETE');
      }
    } finally {
      this.#db.close();
    }
  }
}
