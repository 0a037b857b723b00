/**
 * contid search, ps, report and store as processes, on stores filled from
 * the kernel captures in testdata/captures: search answers what `contid
 * replay` with the same filters writes, byte for byte; ps and report agree
 * with what the replayed JSON says; bad stores, read-only directories and a
 * full disk give a clear error and an exit code, never a stack trace.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';

const CLI = resolve(import.meta.dirname, '../src/cli/main.js');
const CAPTURES = resolve(import.meta.dirname, '../../testdata/captures');
const NAMES = ['a-fork-tree', 'b-threads', 'c-vfork', 'd-refusals', 'e-crun'] as const;
const dir = mkdtempSync(join(tmpdir(), 'contid-store-cli-'));
chmodSync(dir, 0o755);
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: readonly string[], options: { input?: string; user?: boolean; shell?: string } = {}): Run {
  const cmd = options.user === true ? 'setpriv' : process.execPath;
  const argv =
    options.user === true
      ? ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...args]
      : [CLI, ...args];
  const r =
    options.shell === undefined
      ? spawnSync(cmd, argv, { encoding: 'utf8', input: options.input ?? '', maxBuffer: 1 << 28 })
      : spawnSync('sh', ['-c', `${options.shell}; exec "$0" "$@"`, process.execPath, CLI, ...args], {
          encoding: 'utf8',
          maxBuffer: 1 << 28,
        });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(args: readonly string[], options: { input?: string; user?: boolean } = {}): string {
  const r = run(args, options);
  assert.equal(r.code, 0, `contid ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/**
 * What `contid replay --keyring K [args] LOG` writes: the oracle the
 * search output must equal. Cached: several tests ask for the same outputs.
 */
const replayed = new Map<string, string>();
function replay(name: string, ...args: string[]): string {
  const key = `${name}\u0000${args.join('\u0000')}`;
  let out = replayed.get(key);
  if (out === undefined) {
    out = ok([
      'replay',
      '-q',
      '--keyring',
      `${CAPTURES}/${name}.keyring`,
      ...args,
      `${CAPTURES}/${name}.log`,
    ]);
    replayed.set(key, out);
  }
  return out;
}

/** A store per capture, filled by `contid store import` from the replay's JSON. */
const stores = new Map<string, string>();
function storeOf(name: string): string {
  let path = stores.get(name);
  if (path === undefined) {
    path = join(dir, `${name}.db`);
    const r = run(['store', 'import', '--store', path, '-'], { input: replay(name, '--format', 'json') });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, / 0 not contid events, 0 lost/);
    stores.set(name, path);
  }
  return path;
}

interface JsonEvent {
  time: string;
  serial: number;
  contid: string | null;
  records: { type: string; fields: Record<string, string> }[];
}
function events(name: string): JsonEvent[] {
  return replay(name, '--format', 'json')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as JsonEvent);
}
const ms = (e: JsonEvent): number => Math.round(Number(e.time) * 1000);

test('search prints what replay prints with the same filters, in every format', () => {
  let compared = 0;
  let nonEmpty = 0;
  const formats = [['--format', 'text'], ['--format', 'json'], ['-i']] as const;
  for (const name of NAMES) {
    const store = storeOf(name);
    const all = events(name);
    const ids = [...new Set(all.flatMap((e) => (e.contid === null ? [] : e.contid.split(',^'))))];
    const mid = all[Math.floor(all.length / 2)]!.time;
    const late = all[Math.floor((all.length * 3) / 4)]!.time;
    const filters: string[][] = [
      [],
      ['--contid', ids[0]!],
      ['--contid', ids[ids.length - 1]!, '--since', `@${mid}`],
      ['--since', `@${mid}`, '--until', `@${late}`],
      ['--key', 'contid-fixture', '--syscall', 'clone,exit_group'],
      ['--type', 'CONTAINER_OP,CONTID_FORGERY'],
      ['--type', 'EXECVE', '--success', 'no'],
    ];
    // Each filter in one format, turn about: every format sees every kind of filter.
    filters.forEach((f, i) => {
      const flags = formats[(i + NAMES.indexOf(name)) % formats.length]!;
      const want = replay(name, ...flags, ...f);
      const r = run(['search', '--store', store, ...flags, ...f]);
      assert.equal(r.stdout, want, `${name}: search ${[...flags, ...f].join(' ')}`);
      assert.equal(r.code, want === '' ? 1 : 0, r.stderr);
      if (want === '') assert.equal(r.stderr, '<no matches>\n');
      compared++;
      if (want !== '') nonEmpty++;
    });
  }
  assert.ok(compared >= 35 && nonEmpty >= 25, `${compared} compared, ${nonEmpty} non-empty`);
});

test("search takes ausearch's spellings and time words", () => {
  const store = storeOf('e-crun');
  const all = events('e-crun');
  const t = all[20]!;
  const day = new Date(ms(t));
  const pad = (n: number): string => String(n).padStart(2, '0');
  const date = `${pad(day.getMonth() + 1)}/${pad(day.getDate())}/${day.getFullYear()}`;
  const time = `${pad(day.getHours())}:${pad(day.getMinutes())}:${pad(day.getSeconds())}`;
  const second = Math.floor(ms(t) / 1000) * 1000;
  const inSecond = (e: JsonEvent): boolean => ms(e) >= second && ms(e) <= second + 999;
  // -ts DATE TIME -te DATE TIME: two words each, as ausearch takes them.
  const out = ok(['search', '--store', store, '-ts', date, time, '-te', date, time, '--format', 'json']);
  assert.deepEqual(
    out
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as JsonEvent).serial),
    all.filter(inSecond).map((e) => e.serial),
  );
  const pid = all.find((e) => e.contid === '42')!.records[0]!.fields.pid!;
  assert.equal(
    ok([
      'search',
      '--store',
      store,
      '-p',
      pid,
      '-sc',
      '59',
      '-k',
      'contid-fixture',
      '-sv',
      'yes',
      '-x',
      'busybox',
      '-m',
      'SYSCALL',
    ]),
    ok([
      'search',
      '--store',
      store,
      '--pid',
      pid,
      '--syscall',
      'execve',
      '--key',
      'contid-fixture',
      '--success',
      'yes',
      '--exe',
      '/bin/busybox',
    ]),
  );
  // The capture is older than today: nothing since today, everything until now.
  assert.equal(run(['search', '--store', store, '-ts', 'today']).code, 1);
  assert.equal(
    ok(['search', '--store', store, '-te', 'now', '--format', 'json']).trimEnd().split('\n').length,
    all.length,
  );
  assert.equal(
    ok(['search', '--store', store, '--limit', '3', '--format', 'json']).trimEnd().split('\n').length,
    3,
  );
  // A container's own events without the label operations of its set, with --exact and a type.
  assert.equal(
    ok(['search', '--store', store, '--contid', '42', '--exact', '-m', 'CONTAINER_OP', '-f', 'json'])
      .trimEnd()
      .split('\n').length,
    all.filter((e) => e.records.some((r) => r.type === 'CONTAINER_OP')).length,
  );
  assert.equal(
    run(['search', '--store', store, '--contid', 'unset', '-f', 'json']).stdout.trimEnd().split('\n').length,
    all.filter((e) => e.contid === null).length,
  );
});

test('usage errors exit 2 and name the problem; --help exits 0', () => {
  const store = storeOf('e-crun');
  const cases: [string[], RegExp][] = [
    [['search', '--store', store, '--contid', 'abc'], /--contid: "abc" is not a decimal ID/],
    [['search', '--store', store, '--contid', '18446744073709551615'], /out of range/],
    [['search', '--store', store, '-ts', 'tomorrow'], /--since: "tomorrow" is not a time/],
    [['search', '--store', store, '-sc', 'notasyscall'], /not a syscall name or number/],
    [['search', '--store', store, '-m', 'NOPE'], /not a record type/],
    [['search', '--store', store, '--format', 'xml'], /--format: "xml"/],
    [['search', '--store', store, '--exact'], /--exact applies to --contid/],
    [['search', '--store', store, 'extra'], /Unexpected argument|positional/i],
    [['ps', '--store', store, '--at', 'never'], /--at: "never" is not a time/],
    [['ps', '--store', store, '--contid', 'unset'], /the host and unknown have no container/],
    [['report', '--store', store, '--top', 'x'], /--top: "x" is not a whole number/],
    [['store', 'frob'], /Cannot run store command "frob"/],
    [['store', 'import'], /Missing input/],
    [
      ['store', 'import', '--store', store, '--max-age', '5 days', '-'],
      /--max-age: "5 days" is not a duration/,
    ],
    [['store', 'import', '--store', store, '--max-size', '10', '-'], /less than 1M/],
  ];
  for (const [args, message] of cases) {
    const r = run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, new RegExp(`Run "contid ${args[0]!} --help" for usage`));
  }
  for (const verb of ['search', 'ps', 'report', 'store'])
    assert.match(ok([verb, '--help']), /^Usage: contid /);
});

/**
 * By the replayed JSON, the container's processes at `t`: `seen` had an
 * event by then, `soon` has one within a second (a process forked by then
 * whose first own event comes after); neither ended (exit_group) by then.
 */
function aliveAt(
  all: readonly JsonEvent[],
  contid: string,
  t: number,
): { seen: number[]; soon: number[]; ppid: Map<number, number> } {
  const first = new Map<number, number>();
  const ppid = new Map<number, number>();
  const gone = new Set<number>();
  for (const e of all) {
    if (e.contid !== contid) continue;
    const sys = e.records.find((r) => r.type === 'SYSCALL');
    if (sys === undefined) continue;
    const pid = Number(sys.fields.pid);
    if (!first.has(pid)) first.set(pid, ms(e));
    // Its parent as of t: the one its latest event by then names.
    if (ms(e) <= t) ppid.set(pid, Number(sys.fields.ppid));
    if (sys.fields.syscall === '231' && ms(e) <= t) gone.add(pid);
  }
  const live = [...first].filter(([pid]) => !gone.has(pid));
  const sorted = (list: [number, number][]): number[] => list.map(([pid]) => pid).sort((a, b) => a - b);
  return {
    seen: sorted(live.filter(([, at]) => at <= t)),
    soon: sorted(live.filter(([, at]) => at <= t + 1000)),
    ppid,
  };
}

interface PsJson {
  containers: {
    contid: string;
    state: string;
    owner: { exe: string; uid: number } | null;
    processes: PsProc[];
  }[];
}
interface PsProc {
  pid: number;
  ppid: number;
  children: PsProc[];
}
const flat = (procs: readonly PsProc[]): PsProc[] => procs.flatMap((p) => [p, ...flat(p.children)]);

test('ps shows each container and the processes alive in it at any time, as the events tell', () => {
  let checked = 0;
  let early = 0;
  for (const name of NAMES) {
    const store = storeOf(name);
    const all = events(name);
    const chains = [...new Set(all.flatMap((e) => (e.contid === null ? [] : [e.contid])))];
    for (const chain of chains) {
      const times = [...new Set(all.filter((e) => e.contid === chain).map(ms))];
      // Eight points spread over the container's life, its first and last event among them.
      const points = [
        ...new Set([0, 1, 2, 3, 4, 5, 6, 7].map((i) => times[Math.round((i * (times.length - 1)) / 7)]!)),
      ];
      for (const t of points) {
        const out = JSON.parse(
          ok(['ps', '--store', store, '--at', `@${t / 1000}`, '-a', '-f', 'json']),
        ) as PsJson;
        const c = out.containers.find((x) => x.contid === chain);
        const where = `${name} ${chain} at ${t}`;
        assert.ok(c !== undefined, where);
        const procs = flat(c.processes);
        const pids = procs.map((p) => p.pid).sort((a, b) => a - b);
        const want = aliveAt(all, chain, t);
        for (const pid of want.seen) assert.ok(pids.includes(pid), `${where}: ${pid} missing`);
        for (const pid of pids) assert.ok(want.soon.includes(pid), `${where}: ${pid} is not alive`);
        for (const p of procs) {
          if (want.ppid.has(p.pid))
            assert.equal(p.ppid, want.ppid.get(p.pid), `${where}: parent of ${p.pid}`);
        }
        early += pids.length - want.seen.length;
        checked++;
      }
    }
  }
  assert.ok(checked >= 25 && early > 0, `${checked} points, ${early} births before the child's first event`);
  // e-crun: container 42, set by /usr/bin/dash as uid 0, dropped when its last process exited.
  const store = storeOf('e-crun');
  assert.deepEqual((JSON.parse(ok(['ps', '--store', store, '-f', 'json'])) as PsJson).containers, []);
  const end = JSON.parse(ok(['ps', '--store', store, '-a', '-f', 'json'])) as PsJson;
  assert.equal(end.containers.length, 1);
  assert.equal(end.containers[0]!.state, 'dropped');
  assert.deepEqual(end.containers[0]!.owner?.exe, '/usr/bin/dash');
  const text = ok(['ps', '--store', store, '--at', '@1795890056.440']);
  assert.match(text, /^CONTAINER 42 {2}live {2}owner uid=0 auid=4242 pid=5489 exe=\/usr\/bin\/dash/m);
  assert.match(text, /^ +5499 +5498 .*\\_ \/bin\/busybox$/m);
});

test('report counts per container what the replayed JSON holds', () => {
  for (const name of NAMES) {
    const all = events(name);
    const want = new Map<
      string,
      { events: number; execs: number; failed: number; forgeries: number; ops: number }
    >();
    for (const e of all) {
      const key = e.contid ?? 'unset';
      const w = want.get(key) ?? { events: 0, execs: 0, failed: 0, forgeries: 0, ops: 0 };
      const sys = e.records.find((r) => r.type === 'SYSCALL');
      w.events++;
      if (sys?.fields.syscall === '59' && sys.fields.success === 'yes') w.execs++;
      // A message's res= (contid's own records are not the event's).
      const own = e.records.filter(
        (r) => !['CONTAINER_ID', 'CONTAINER_OP', 'CONTID_FORGERY'].includes(r.type),
      );
      const res = own.find((r) => 'res' in r.fields)?.fields.res ?? '';
      if (sys?.fields.success === 'no' || (sys === undefined && /^(failed|no|0)$/.test(res))) w.failed++;
      w.forgeries += e.records.filter((r) => r.type === 'CONTID_FORGERY').length;
      w.ops += e.records.filter((r) => r.type === 'CONTAINER_OP').length;
      want.set(key, w);
    }
    const got = JSON.parse(ok(['report', '--store', storeOf(name), '-f', 'json'])) as {
      containers: {
        contid: string;
        events: number;
        execs: number;
        failed: number;
        forgeries: number;
        ops: number;
      }[];
    };
    assert.deepEqual(
      Object.fromEntries(
        got.containers.map(({ contid, events, execs, failed, forgeries, ops }) => [
          contid,
          { events, execs, failed, forgeries, ops },
        ]),
      ),
      Object.fromEntries(want),
      name,
    );
  }
  const text = ok(['report', '--store', storeOf('e-crun'), '--contid', '42']);
  assert.match(text, /^1\. +42 +26 +6 +0 +3 +1 /m);
  assert.match(text, /Top Executables[\s\S]*42 +17 +\/bin\/busybox/);
});

test('stores that cannot be read give a clear message and exit 4', () => {
  const store = storeOf('a-fork-tree');
  const foreign = join(dir, 'foreign.db');
  const db = new Database(foreign);
  db.exec('CREATE TABLE t (x)');
  db.close();
  const text = join(dir, 'audit.log');
  writeFileSync(text, 'type=SYSCALL msg=audit(1.000:1): not a database\n'.repeat(50));
  const newer = join(dir, 'newer.db');
  rmSync(newer, { force: true });
  ok(['store', 'import', '-q', '--store', newer, '-'], { input: replay('e-crun', '--format', 'json') });
  const n = new Database(newer);
  n.pragma('user_version = 99');
  n.close();
  const damaged = join(dir, 'damaged.db');
  writeFileSync(damaged, '');
  ok(['store', 'import', '-q', '--store', damaged, '-'], {
    input: replay('a-fork-tree', '--format', 'json'),
  });
  const pages = statSync(damaged).size / 4096;
  const fd = openSync(damaged, 'r+');
  for (let p = Math.floor(pages / 4); p < Math.floor((pages * 3) / 4); p++)
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, p * 4096);
  closeSync(fd);
  const cases: [string, RegExp][] = [
    [join(dir, 'missing.db'), /Cannot open event store ".*missing\.db": no such file \(ENOENT\)/],
    [foreign, /it is an SQLite database of something else/],
    [text, /it is not an SQLite database \(SQLITE_NOTADB\)/],
    [newer, /its schema is version 99, this contid knows up to \d+; use a newer contid/],
    [damaged, /damaged/],
  ];
  const commands = [['search'], ['ps'], ['report'], ['store', 'info'], ['store', 'check']];
  for (const [i, [path, message]] of cases.entries()) {
    // Every command on a missing and on a damaged store; one each, turn about, on the others.
    const each = i === 0 || path === damaged ? commands : [commands[i % commands.length]!, ['search']];
    for (const args of each) {
      const r = run([...args, '--store', path]);
      assert.doesNotMatch(r.stderr, /\n {4}at /, 'no stack trace');
      // ps and report read only what they need, which a damaged page may spare.
      if (path === damaged && (args[0] === 'ps' || args[0] === 'report') && r.code === 0) continue;
      assert.equal(r.code, 4, `${args.join(' ')} ${path}: ${r.stderr}`);
      assert.match(r.stderr, message, `${args.join(' ')} ${path}`);
    }
  }
  assert.equal(ok(['store', 'check', '--store', store]), `"${store}": ok\n`);
  assert.equal(run(['search', '--store', store, '--contid', '999']).code, 1);
});

test('a store in a directory the user cannot write is read, and not written', () => {
  const ro = join(dir, 'readonly');
  mkdirSync(ro, { mode: 0o755 });
  const path = join(ro, 'events.db');
  ok(['store', 'import', '-q', '--store', path, '-'], { input: replay('e-crun', '--format', 'json') });
  chmodSync(path, 0o644);
  // As nobody: the directory and the file are root's.
  const asRoot = ok(['search', '--store', path, '--contid', '42']);
  assert.equal(ok(['search', '--store', path, '--contid', '42'], { user: true }), asRoot);
  assert.match(ok(['ps', '--store', path, '-a'], { user: true }), /CONTAINER 42 {2}dropped/);
  for (const target of [path, join(ro, 'new.db')]) {
    const r = run(['store', 'import', '--store', target, '-'], { user: true, input: '' });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /Cannot write event store ".*": permission denied \(EACCES\)/);
  }
});

test('a full disk loses the batches it refuses, counted and said, and leaves a store that reads', () => {
  const lines = replay('a-fork-tree', '--format', 'json');
  const big = join(dir, 'big.jsonl');
  // Enough events that the file size limit is reached part way.
  writeFileSync(big, lines.repeat(60));
  const total = lines.trimEnd().split('\n').length * 60;
  const path = join(dir, 'full.db');
  const r = run(['store', 'import', '--store', path, big], { shell: "ulimit -f 2000; trap '' XFSZ" });
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /Cannot write to event store ".*full\.db": .*is the disk full\?/);
  assert.doesNotMatch(r.stderr, /\n {4}at /);
  const m = / (\d+) events stored .* (\d+) lost/.exec(r.stderr);
  assert.ok(m !== null, r.stderr);
  const stored = Number(m[1]);
  assert.ok(stored > 0 && stored < total, `${stored} of ${total}`);
  assert.equal(stored + Number(m[2]), total);
  const found = ok(['search', '--store', path, '--format', 'json']).trimEnd().split('\n');
  assert.equal(found.length, stored);
});

test('replay --store stores every event it writes: search, ps and report read them back', () => {
  for (const name of NAMES) {
    const path = join(dir, `replayed-${name}.db`);
    const args = ['replay', '--keyring', `${CAPTURES}/${name}.keyring`, '--store', path];
    const r = run([...args, '--format', 'text', `${CAPTURES}/${name}.log`]);
    assert.equal(r.code, 0, r.stderr);
    // The store changes nothing of what replay writes.
    assert.equal(r.stdout, replay(name, '--format', 'text'), name);
    const all = events(name);
    assert.match(r.stderr, new RegExp(`\\n {2}stored: ${all.length.toLocaleString('en-US')} events? in "`));
    assert.equal(ok(['search', '--store', path, '--format', 'json']), replay(name, '--format', 'json'), name);
    const ids = [...new Set(all.flatMap((e) => (e.contid === null ? [] : e.contid.split(',^'))))];
    assert.ok(ids.length > 0, name);
    for (const id of ids) {
      const want = replay(name, '--format', 'text', '--contid', id);
      assert.equal(
        ok(['search', '--store', path, '--format', 'text', '--contid', id]),
        want,
        `${name} ${id}`,
      );
    }
    // ps and report answer as they do on a store imported from the same replay.
    assert.equal(ok(['ps', '-a', '--store', path]), ok(['ps', '-a', '--store', storeOf(name)]), name);
    assert.equal(ok(['report', '--store', path]), ok(['report', '--store', storeOf(name)]), name);
  }
  // With filters, the events that match.
  const path = join(dir, 'replayed-filtered.db');
  const name = 'a-fork-tree';
  const filter = ['--syscall', 'execve'];
  const args = ['replay', '-q', '--keyring', `${CAPTURES}/${name}.keyring`, '--store', path, ...filter];
  ok([...args, `${CAPTURES}/${name}.log`]);
  const want = replay(name, '--format', 'json', ...filter);
  assert.notEqual(want, '');
  assert.equal(ok(['search', '--store', path, '--format', 'json']), want);
});

test('events of unknown container are stored as such and found by --contid unknown', () => {
  // The capture less every event of one container process that has children:
  // its children's events wait for a parent that never shows, and are
  // written as of unknown container.
  const name = 'a-fork-tree';
  const all = events(name);
  const syscall = (e: JsonEvent): Record<string, string> | undefined =>
    e.records.find((r) => r.type === 'SYSCALL')?.fields;
  const inside = all.filter((e) => e.contid !== null && syscall(e) !== undefined);
  const parents = new Set(inside.map((e) => syscall(e)!['ppid']));
  const forks = new Set(['56', '57', '58', '435']);
  const dropsOf = (pid: string): Set<number> =>
    new Set(
      all
        .filter((e) => {
          const s = syscall(e);
          return s !== undefined && (s['pid'] === pid || (forks.has(s['syscall']!) && s['exit'] === pid));
        })
        .map((e) => e.serial),
    );
  const candidates = [...new Set(inside.map((e) => syscall(e)!['pid']!))]
    .filter((pid) => parents.has(pid))
    .map(dropsOf)
    .sort((a, b) => a.size - b.size);
  const drop = candidates[0]!;
  const log = readFileSync(`${CAPTURES}/${name}.log`, 'utf8')
    .split('\n')
    .filter((l) => {
      const m = /msg=audit\([0-9.]+:([0-9]+)\)/.exec(l);
      return m === null || !drop.has(Number(m[1]));
    })
    .join('\n');
  const logPath = join(dir, 'unknown.log');
  writeFileSync(logPath, log);
  const path = join(dir, 'unknown.db');
  const keyring = `${CAPTURES}/${name}.keyring`;
  const json = ok(['replay', '-q', '--keyring', keyring, '--store', path, '--format', 'json', logPath]);
  const unknown = json
    .split('\n')
    .filter((l) => l !== '' && (JSON.parse(l) as JsonEvent).contid === 'unknown')
    .map((l) => `${l}\n`)
    .join('');
  assert.notEqual(unknown, '', 'the trimmed log has events of unknown container');
  assert.equal(ok(['search', '--store', path, '--format', 'json', '--contid', 'unknown']), unknown);
  assert.match(ok(['search', '--store', path, '--contid', 'unknown']), / contid=unknown$/m);
  // Never host, never a container's.
  const host = ok(['search', '--store', path, '--format', 'json', '--contid', 'unset']);
  assert.ok(!host.includes('"contid":"unknown"'));
  const report = JSON.parse(ok(['report', '--store', path, '-f', 'json'])) as unknown;
  assert.match(JSON.stringify(report), /unknown/);
});

test('replay --store refuses --no-labels and names a store it cannot open', () => {
  const log = `${CAPTURES}/e-crun.log`;
  const noLabels = run(['replay', '--no-labels', '--store', join(dir, 'x.db'), log]);
  assert.equal(noLabels.code, 2);
  assert.match(noLabels.stderr, /^contid replay: --store needs labels/);
  const bad = run(['replay', '-q', '--store', '/proc/contid-no/x.db', log]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, '');
  assert.match(
    bad.stderr,
    /^contid replay: Cannot create event store "\/proc\/contid-no\/x\.db": no such file or directory \(ENOENT\)$/m,
  );
});
