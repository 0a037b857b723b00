/**
 * contid replay's filters and interpreted view, end to end: the built CLI
 * on a hand-written log with nested containers, and the interpreted view
 * compared with the real `ausearch -i` on recorded kernel captures.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import type { MarkerCaller } from '../src/marker/format.js';
import { AuditLogWriter, ORCHESTRATOR as orch } from './support/audit-log.js';

const CLI = resolve(import.meta.dirname, '../src/cli/main.js');
const CAPTURES = resolve(import.meta.dirname, '../../testdata/captures');
const dir = mkdtempSync(join(tmpdir(), 'contid-replay-filter-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    input: '',
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Container 42 (init 800), granted delegation; inside it, 800 labels its
// child 802 as 7 (chain 7,^42). Container 43 beside it, and a host process.
const w = new AuditLogWriter();
const nestedOrchestrator: MarkerCaller = {
  pid: 800,
  uid: 0,
  auid: 4242,
  exe: '/bin/sh',
  privileged: false,
  ppid: 600,
};
const log =
  w.sys(600, 1, 56, 800, 'crun', { a0: '1200011' }) + // 101
  w.marker({ op: 'start', daemonPid: w.daemonPid }) + // 102
  w.marker({ op: 'set', pid: 800, ppid: 600, contid: '42', caller: orch }) + // 103
  w.sys(800, 600, 59, 0, 'sh') + // 104: 42
  w.marker({ op: 'grant', pid: 800, caller: orch }) + // 105
  w.sys(800, 600, 56, 802, 'sh', { a0: '1200011' }) + // 106: 42
  w.marker({ op: 'set', pid: 802, ppid: 800, contid: '7', caller: nestedOrchestrator }) + // 107
  w.sys(802, 800, 59, 0, 'nested', { key: '"exec"' }) + // 108: 7,^42
  w.sys(802, 800, 2, -13, 'nested', { key: '(null)' }) + // 109: 7,^42, failed open
  w.sys(600, 1, 56, 900, 'crun', { a0: '1200011' }) + // 110
  w.marker({ op: 'set', pid: 900, ppid: 600, contid: '43', caller: orch }) + // 111
  w.sys(900, 600, 59, 0, 'other', { key: Buffer.from('exec\x01web').toString('hex').toUpperCase() }) + // 112: 43
  w.sys(2, 1, 39, 2, 'kthreadd'); // 113: host
const logFile = join(dir, 'nested.log');
const keyring = join(dir, 'keyring');
writeFileSync(logFile, log);
writeFileSync(keyring, w.keyring());

interface Ev {
  serial: number;
  contid: string | null;
}

function serials(args: readonly string[]): number[] {
  const r = run(['replay', '--keyring', keyring, ...args, logFile]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .trimEnd()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as Ev).serial);
}

const filters: [string, string[], number[]][] = [
  // The parent finds its nested container and the operations on both.
  ['--contid of a parent', ['--contid', '42'], [103, 104, 105, 106, 107, 108, 109]],
  ['--contid of a nested container', ['--contid', '7'], [107, 108, 109]],
  ['--contid of a sibling', ['--contid', '43'], [111, 112]],
  ['--contid, two values', ['--contid', '7,43'], [107, 108, 109, 111, 112]],
  ['--pid', ['--pid', '802'], [108, 109]],
  ['--syscall by name', ['--syscall', 'execve'], [104, 108, 112]],
  ['--syscall by number', ['--syscall', '56'], [101, 106, 110]],
  ['--key (whole, one of several)', ['--key', 'exec'], [108, 112]],
  ['--key with no match', ['--key', 'exe'], []],
  ['--type CONTAINER_OP', ['--type', 'CONTAINER_OP'], [103, 105, 107, 111]],
  ['--type by number', ['--type', '2942'], [102, 103, 105, 107, 111]],
  ['--success no', ['--success', 'no'], [109]],
  [
    '--since and --until (@SECONDS)',
    ['--since', '@1700000000.040', '--until', '@1700000000.050'],
    [108, 109, 110],
  ],
  ['criteria together (and)', ['--contid', '42', '--syscall', 'execve'], [104, 108]],
  ['a filter without labels', ['--no-labels', '--syscall', 'execve', '--pid', '800,900'], [104, 112]],
];
for (const [name, args, expected] of filters) {
  test(`replay filters events: ${name}`, () => {
    assert.deepEqual(serials(args), expected);
  });
}

test('filtering after labelling leaves labels as they are, in every format', () => {
  for (const format of ['text', 'json']) {
    const all = run(['replay', '--format', format, '--keyring', keyring, logFile]).stdout;
    const filtered = run(['replay', '--format', format, '--keyring', keyring, '--contid', '7', logFile]);
    assert.equal(filtered.code, 0, filtered.stderr);
    // Every filtered line is in the unfiltered output, labels included.
    for (const line of filtered.stdout.trimEnd().split('\n')) assert.ok(all.includes(line), line);
    assert.match(filtered.stdout, /contid(=|":")7,\^42/);
    assert.match(filtered.stderr, /filters: 3 of 13 events matched/);
  }
});

test('--since and --until read dates and times in the local time zone, as ausearch', () => {
  const env = { TZ: 'UTC' };
  // 1700000000 is 11/14/2023 22:13:20 UTC.
  const at = (args: string[]): number => {
    const r = run(['replay', ...args, logFile], env);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout
      .trimEnd()
      .split('\n')
      .filter((l) => l !== '').length;
  };
  assert.equal(at(['--since', '11/14/2023', '22:13:20']), 13);
  assert.equal(at(['--since', '11/14/2023 22:13:21']), 0);
  assert.equal(at(['--since', '2023-11-14T22:13']), 13);
  assert.equal(at(['--until', '11/14/23', '22:13:19']), 0);
  // --until a second keeps that whole second (the events are at 22:13:20.005 to .065).
  assert.equal(at(['--since', '11/14/2023', '--until', '11/14/2023 22:13:20']), 13);
  // A time alone is today's.
  assert.equal(at(['--since', '22:13:20']), 0);
  assert.equal(at(['--until', 'yesterday']), 13);
  assert.equal(at(['--since', 'this-year']), 0);
});

test('the interpreted view names numbers and decodes strings, one event after each ----', () => {
  const r = run(['replay', '-i', '--keyring', keyring, logFile], { TZ: 'UTC' });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.filter((l) => l === '----').length, 13);
  const open = lines.find((l) => l.includes(':109) : ') && l.startsWith('type=SYSCALL'))!;
  assert.match(
    open,
    /^type=SYSCALL msg=audit\(11\/14\/23 22:13:20\.045:109\) : arch=x86_64 syscall=open success=no /,
  );
  assert.match(open, / exit=EACCES\(Permission denied\) a0=0x0 /);
  assert.match(open, / auid=4242 uid=0 .* ses=3 comm=nested exe=\/bin\/nested key=\(null\) record=1$/);
  assert.ok(lines.includes('type=CONTAINER_ID msg=audit(11/14/23 22:13:20.045:109) : record=1 contid=7,^42'));
  // Several keys in one hex value: one key= each, as ausearch prints them.
  assert.match(r.stdout, /comm=other exe=\/bin\/other key=exec key=web/);
  assert.match(r.stdout, /type=PROCTITLE msg=audit\(11\/14\/23 22:13:20\.040:108\) : proctitle=nested\n/);
  assert.match(
    r.stdout,
    /type=CONTAINER_OP .* op=set opid=800 contid=42 old-contid=-1 pid=600 uid=0 auid=unset exe=\/usr\/bin\/crun res=yes/,
  );
});

test('the interpreted view escapes control characters, so no value starts a line', () => {
  const evil = join(dir, 'evil.log');
  const comm = Buffer.from('a\nb\x1b[31mc').toString('hex').toUpperCase();
  writeFileSync(evil, new AuditLogWriter().sys(5, 1, 59, -2, 'x').replace('comm="x"', `comm=${comm}`));
  const r = run(['replay', '-i', '--no-labels', evil]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, / comm=a\\012b\\033\[31mc /);
  assert.equal(r.stdout.split('\n').length, 4);
});

/** Records of interpreted text, by `serial type item occurrence`: field name to values. */
function interpretedRecords(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  for (const line of text.split('\n')) {
    const m = /^(?:node=\S+ )?type=(\S+) msg=audit\(([^)]*):([0-9]+)\) : (.*?) ?$/.exec(line);
    if (m === null) continue;
    const fields = new Map<string, string[]>();
    // Values have no spaces except proctitle's and msg='…'; split at " name=".
    const parts = m[4]!.split(/ (?=[a-z_0-9-]+=)/);
    for (const p of parts) {
      const eq = p.indexOf('=');
      const name = p.slice(0, eq);
      fields.set(name, [...(fields.get(name) ?? []), p.slice(eq + 1)]);
    }
    fields.set('@time', [m[2]!]);
    const base = `${m[3]} ${m[1]} ${fields.get('item')?.[0] ?? ''}`;
    let n = 0;
    while (out.has(`${base} ${n}`)) n++;
    out.set(`${base} ${n}`, fields);
  }
  return out;
}

/** The fields the interpreted view claims to interpret as ausearch does. */
const COMPARED = [
  '@time', 'arch', 'syscall', 'success', 'exit', 'auid', 'uid', 'gid', 'euid', 'suid', 'fsuid', 'egid',
  'sgid', 'fsgid', 'ouid', 'ogid', 'old-auid', 'ses', 'comm', 'exe', 'key', 'proctitle', 'res', 'name', 'cwd', 'msg',
]; // prettier-ignore

test('the interpreted view agrees with ausearch -i on recorded kernel captures', (t) => {
  const ausearch = spawnSync('ausearch', ['--version'], { encoding: 'utf8' });
  if (ausearch.status !== 0) {
    t.skip('ausearch is not installed (apt-get install auditd)');
    return;
  }
  const env = { TZ: 'UTC', LC_ALL: 'C' };
  let compared = 0;
  // RAW captures, whose ids ausearch names from this machine's user database
  // (so contid is given --resolve-ids), and an ENRICHED log, whose names are in it.
  const inputs: [string, string, string[]][] = [
    ...['a-fork-tree', 'd-refusals', 'e-crun'].map((c): [string, string, string[]] => [
      c,
      join(CAPTURES, `${c}.log`),
      ['--resolve-ids'],
    ]),
    // An ENRICHED log also carries auditd's reading of socket addresses.
    ['enriched', join(CAPTURES, '../enriched.log'), []],
  ];
  for (const [capture, file, options] of inputs) {
    const theirs = spawnSync('ausearch', ['-i', '--input', file], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      maxBuffer: 64 << 20,
    });
    assert.equal(theirs.status, 0, theirs.stderr);
    const ours = run(['replay', '-i', '--no-labels', ...options, file], env);
    assert.equal(ours.code, 0, ours.stderr);
    const a = interpretedRecords(theirs.stdout);
    const b = interpretedRecords(ours.stdout);
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort(), `${capture}: the same records`);
    for (const [key, fa] of a) {
      const fb = b.get(key)!;
      for (const name of options.length === 0 ? [...COMPARED, 'saddr'] : COMPARED) {
        if (!fa.has(name) && !fb.has(name)) continue;
        assert.deepEqual(fb.get(name), fa.get(name), `${capture} ${key} ${name}`);
        compared++;
      }
    }
  }
  assert.ok(compared > 4000, `${compared} fields compared`);
});

test('serial gaps in ausearch output are reported as gaps, not as loss', (t) => {
  const file = join(CAPTURES, 'e-crun.log');
  const filtered = spawnSync('ausearch', ['--raw', '-k', 'contid-fixture', '--input', file], {
    encoding: 'utf8',
  });
  if (filtered.error !== undefined) {
    t.skip('ausearch is not installed (apt-get install auditd)');
    return;
  }
  assert.equal(filtered.status, 0, filtered.stderr);
  const r = spawnSync(process.execPath, [CLI, 'replay', '-'], { encoding: 'utf8', input: filtered.stdout });
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stderr,
    /serial gaps: [0-9,]+ events? missing between serial numbers \(normal for filtered input/,
  );
  assert.doesNotMatch(r.stderr, /records lost/);
});
