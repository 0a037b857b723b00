/**
 * The event store's schema, as a list of migrations. `PRAGMA user_version`
 * holds the version a database is at; opening it for writing applies the
 * migrations after that, each in its own transaction. A database newer than
 * the last migration is refused (ERR_STORE_TOO_NEW), never written.
 *
 * Layout (docs/store.md has the why):
 * - `events`: one row per event, the facts it is searched by, each
 *   repeating text (executable, syscall, key, record types, node) as an id
 *   into `strs`, the container chain as an id into `chains`.
 * - `payloads`: the event's records, compressed (payload.ts), apart from
 *   `events` so that scans and counts read small rows.
 * - `chains` + `chain_ids`: each distinct chain (`4,^2,^1`, `unknown`) once,
 *   with every ID of it and its level (0 = the leaf): a search for ID 2
 *   finds the chains that hold 2, then their events by index.
 * - `event_refs`: chains an event names in contid's records other than its
 *   own (CONTAINER_OP IDs, OBJ_PID targets, forgery senders).
 * - `ops` (v2): each CONTAINER_OP; `procs` (v2): process lifetimes, one row
 *   per (process, container, executable) span, from fork, exec and exit.
 * - `ops.name`, `ops.meta` (v3): the container's name and metadata a set
 *   gave (its record's `name=` and `meta.KEY=`; `meta` as a JSON object).
 */

/** `PRAGMA application_id` of a contid store: "cntd". */
export const APPLICATION_ID = 0x636e7464;

/** Kinds of interned text in `strs`. */
export const StrKind = { node: 1, exe: 2, syscall: 3, key: 4, types: 5 } as const;
export type StrKind = (typeof StrKind)[keyof typeof StrKind];

/** One step of the schema. */
export interface Migration {
  /** The version the database is at after this step. */
  readonly version: number;
  readonly sql: string;
  /** Rows to derive from what is already stored (run by EventStore after `sql`). */
  readonly backfill?: 'ops-and-procs' | 'op-descriptions';
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE strs (
        id INTEGER PRIMARY KEY,
        kind INTEGER NOT NULL,
        text TEXT NOT NULL,
        UNIQUE (kind, text)
      );
      CREATE TABLE chains (
        id INTEGER PRIMARY KEY,
        chain TEXT NOT NULL UNIQUE,
        depth INTEGER NOT NULL,
        first_ms INTEGER,
        last_ms INTEGER,
        events INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE chain_ids (
        contid TEXT NOT NULL,
        chain INTEGER NOT NULL,
        level INTEGER NOT NULL,
        PRIMARY KEY (contid, chain)
      ) WITHOUT ROWID;
      CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        serial INTEGER NOT NULL,
        node INTEGER,
        chain INTEGER,
        pid INTEGER,
        ppid INTEGER,
        exe INTEGER,
        syscall INTEGER,
        exit INTEGER,
        key INTEGER,
        success INTEGER,
        types INTEGER NOT NULL,
        ops INTEGER NOT NULL,
        forgeries INTEGER NOT NULL,
        size INTEGER NOT NULL
      );
      CREATE INDEX events_time ON events (time_ms);
      CREATE INDEX events_chain ON events (chain, time_ms);
      CREATE INDEX events_pid ON events (pid);
      CREATE INDEX events_ppid ON events (ppid);
      CREATE INDEX events_exe ON events (exe, time_ms);
      CREATE INDEX events_syscall ON events (syscall, time_ms);
      CREATE INDEX events_key ON events (key, time_ms) WHERE key IS NOT NULL;
      CREATE INDEX events_types ON events (types, time_ms);
      CREATE INDEX events_failed ON events (time_ms) WHERE success = 0;
      CREATE TABLE payloads (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
      CREATE TABLE event_refs (
        chain INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        event INTEGER NOT NULL,
        PRIMARY KEY (chain, time_ms, event)
      ) WITHOUT ROWID;
      CREATE INDEX event_refs_event ON event_refs (event);
    `,
  },
  {
    version: 2,
    sql: `
      CREATE TABLE ops (
        id INTEGER PRIMARY KEY,
        event INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        op TEXT NOT NULL,
        opid INTEGER,
        contid TEXT NOT NULL,
        old_contid TEXT NOT NULL,
        res INTEGER,
        errno TEXT,
        caller_pid INTEGER,
        uid INTEGER,
        auid INTEGER,
        exe TEXT,
        body TEXT NOT NULL
      );
      CREATE INDEX ops_event ON ops (event);
      CREATE TABLE procs (
        id INTEGER PRIMARY KEY,
        node INTEGER,
        pid INTEGER NOT NULL,
        ppid INTEGER,
        chain INTEGER,
        exe INTEGER,
        start_ms INTEGER NOT NULL,
        how TEXT NOT NULL,
        born_ms INTEGER NOT NULL,
        born INTEGER NOT NULL,
        end_ms INTEGER,
        end_how TEXT,
        event INTEGER NOT NULL
      );
      CREATE INDEX procs_chain ON procs (chain, end_ms);
      CREATE INDEX procs_end ON procs (end_ms);
      CREATE INDEX procs_open ON procs (pid) WHERE end_ms IS NULL;
    `,
    backfill: 'ops-and-procs',
  },
  {
    version: 3,
    sql: `
      ALTER TABLE ops ADD COLUMN name TEXT;
      ALTER TABLE ops ADD COLUMN meta TEXT;
    `,
    backfill: 'op-descriptions',
  },
];

/** The version this contid writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
