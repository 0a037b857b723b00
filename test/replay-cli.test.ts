/**
 * contid replay end to end: the built CLI run as a process on files, with a
 * hand-written stream of kernel records and authentic markers.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { AuditLogWriter, ORCHESTRATOR as orch } from './support/audit-log.js';

const CLI = resolve(import.meta.dirname, '../src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'contid-replay-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input: input ?? '' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const w = new AuditLogWriter();
const sys = (pid: number, ppid: number, nr: number, exit: number, comm: string, a0 = '0'): string =>
  w.sys(pid, ppid, nr, exit, comm, { a0 });
const marker = w.marker.bind(w);

const log =
  sys(600, 1, 56, 800, 'crun', '1200011') + // the orchestrator forks the container init
  marker({ op: 'start', daemonPid: w.daemonPid }) +
  marker({ op: 'set', pid: 800, ppid: 600, contid: '42', caller: orch }) +
  sys(800, 600, 59, 0, 'sh') + // init execs
  sys(800, 600, 56, 2, 'sh', '1200011') + // forks: exit=2 is namespace-relative
  sys(801, 800, 59, 0, 'cat') +
  sys(2, 1, 39, 2, 'kthreadd') + // host pid 2 must stay unlabelled
  marker({ op: 'set', pid: 800, contid: '43', caller: orch }) + // already set: EEXIST
  marker({ op: 'set', pid: 801, contid: '44', caller: orch }, 801, Buffer.alloc(32, 1)) + // forged from inside
  sys(801, 800, 231, 0, 'cat') +
  sys(600, 1, 39, 600, 'crun');

const logFile = join(dir, 'audit.log');
const keyring = join(dir, 'keyring');
writeFileSync(logFile, log);
writeFileSync(keyring, w.keyring());

interface Ev {
  serial: number;
  contid: string | null;
  records: { type: string; fields: Record<string, string> }[];
}

test('replay labels a container tree from authentic markers and reports refusals and forgeries', () => {
  const r = run(['replay', '--keyring', keyring, logFile]);
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Ev);
  const bySerial = (s: number): Ev => events.find((e) => e.serial === s)!;
  const comm = (e: Ev): string => e.records[0]?.fields['comm'] ?? '';
  const labelled = events.filter((e) => e.contid !== null);
  // init's exec and fork, its child's exec and exit, and the forged marker its child sent.
  assert.deepEqual(
    labelled.map((e) => `${e.serial}:${comm(e)}:${e.contid}`),
    ['104:"sh":42', '105:"sh":42', '106:"cat":42', '109::42', '110:"cat":42'],
  );
  assert.equal(events.filter((e) => comm(e) === '"kthreadd"')[0]?.contid, null);
  assert.equal(
    events.filter((e) => comm(e) === '"crun"').every((e) => e.contid === null),
    true,
  );
  const ops = events.flatMap((e) => e.records.filter((x) => x.type === 'CONTAINER_OP').map((x) => x.fields));
  // The second set finds a target with a child: EBUSY comes before EEXIST in the rule order.
  assert.deepEqual(
    ops.map((o) => `${o['op']} ${o['opid']} ${o['contid']} ${o['res']} ${o['errno'] ?? ''}`.trim()),
    ['set 800 42 1', 'set 800 43 0 EBUSY'],
  );
  const forged = events.flatMap((e) =>
    e.records.filter((x) => x.type === 'CONTID_FORGERY').map((x) => x.fields),
  );
  assert.equal(forged.length, 1);
  assert.equal(forged[0]!['pid'], '801');
  assert.equal(forged[0]!['contid'], '42');
  const cid = bySerial(104).records.find((x) => x.type === 'CONTAINER_ID');
  assert.deepEqual(cid?.fields, { record: '1', contid: '42' });
  assert.match(r.stderr, /1 forgery attempt;/);
  assert.match(r.stderr, /forgery at .* from pid 801 \(contid 42\)/);
});

test('replay in text format links CONTAINER_ID to its record and is byte-identical across runs', () => {
  const a = run(['replay', '--format', 'text', '--keyring', keyring, logFile]);
  const b = run(['replay', '--format', 'text', '--keyring', keyring, '-'], log);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.match(a.stdout, /type=SYSCALL msg=audit\(1700000000\.020:104\): .* key="t" record=1\n/);
  assert.match(a.stdout, /type=CONTAINER_ID msg=audit\(1700000000\.020:104\): record=1 contid=42\n/);
  assert.match(
    a.stdout,
    /type=CONTAINER_OP msg=audit\([0-9.:]+\): op=set opid=800 contid=42 old-contid=-1 .* res=1\n/,
  );
});

test('replay without a keyring honours no marker and labels nothing', () => {
  const r = run(['replay', logFile]);
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Ev);
  assert.equal(events.filter((e) => e.contid !== null).length, 0);
  assert.match(r.stderr, /4 forgery attempts/);
  // Genuine markers without a keyring: the summary says why they count as forgeries.
  assert.match(r.stderr, /no keyring was given, so no marker can be verified/);
  assert.match(r.stderr, /Labels need the keyring of the daemon that wrote the log: --keyring/);
});

test('replay of an ordinary auditd log says that it labels nothing, and why', () => {
  const plain = join(dir, 'plain.log');
  writeFileSync(plain, sys(900, 1, 59, 0, 'ls') + sys(901, 1, 59, 0, 'id'));
  const r = run(['replay', plain]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /no contid markers in the input, so nothing is labelled/);
  const k = run(['replay', '--keyring', keyring, logFile]);
  assert.doesNotMatch(k.stderr, /note:/);
});

test('replay --no-labels writes plain events', () => {
  const r = run(['replay', '--no-labels', '--format', 'text', logFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /CONTAINER_/);
  assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('type=SYSCALL')).length, 7);
});

const usage: [string, string[], number, RegExp][] = [
  [
    'an unknown command',
    ['frobnicate'],
    2,
    /^contid: Cannot run "frobnicate": it is not a command\nRun "contid --help"/,
  ],
  [
    'an unknown flag',
    ['replay', '--bogus', 'x'],
    2,
    /^contid replay: Unknown option '--bogus'.*\nRun "contid replay --help" for usage/s,
  ],
  [
    'a bad format',
    ['replay', '--format', 'xml', 'x'],
    2,
    /^contid replay: Cannot use --format: "xml" is not json or text\n/,
  ],
  ['no input', ['replay'], 2, /^contid replay: Cannot read the input: none is given/],
  [
    'a bad number',
    ['replay', '--timeout', 'soon', 'x'],
    2,
    /Cannot use --timeout: "soon" is not a whole number/,
  ],
  [
    'a number out of range',
    ['replay', '--max-in-flight', '99999999999999999999', 'x'],
    2,
    /--max-in-flight: "99999999999999999999" is out of range \(1 to 16,777,216\)/,
  ],
  [
    'a zero timeout',
    ['replay', '--timeout', '0', 'x'],
    2,
    /--timeout: "0" is out of range \(1 to 86,400,000\)/,
  ],
  [
    'a pid out of range',
    ['replay', '--pid', '4294967296', 'x'],
    2,
    /--pid: "4294967296" is out of range \(0 to 4,194,304\)/,
  ],
  [
    'a contid out of range',
    ['replay', '--contid', '18446744073709551615', 'x'],
    2,
    /--contid: "18446744073709551615" is out of range \(0 to 18446744073709551614\)/,
  ],
  [
    'an unknown syscall',
    ['replay', '--syscall', 'frob', 'x'],
    2,
    /--syscall: "frob" is not a syscall name or number/,
  ],
  ['an unknown record type', ['replay', '--type', 'FROB', 'x'], 2, /--type: "FROB" is not a record type/],
  ['a bad time', ['replay', '--since', 'soonish', 'x'], 2, /--since: "soonish" is not a time/],
  [
    'a date out of range',
    ['replay', '--until', '02/30/2026', 'x'],
    2,
    /--until: "02\/30\/2026" is out of range \(day 1 to 28/,
  ],
  [
    '--contid without labels',
    ['replay', '--no-labels', '--contid', '4', 'x'],
    2,
    /^contid replay: Cannot use --contid with --no-labels: the filter needs labels\n/,
  ],
  [
    'a run flag out of range',
    ['run', '--receive-buffer', '4294967296'],
    2,
    /^contid run: Cannot use receive-buffer \(--receive-buffer\): "4294967296" is out of range \(65536 to 2,147,483,647\)\nRun "contid run --help"/,
  ],
  [
    'a missing file',
    ['replay', '/nonexistent/audit.log'],
    1,
    /^contid replay: Cannot read "\/nonexistent\/audit.log": no such file or directory \(ENOENT\)\n$/,
  ],
  ['a directory', ['replay', '/tmp'], 1, /Cannot read "\/tmp".*EISDIR/],
  [
    'a bad keyring',
    ['replay', '--keyring', '/etc/hostname', '/dev/null'],
    1,
    /^contid replay: Cannot use keyring "\/etc\/hostname": line 1: expected "<start-id> <daemon-pid\|-> <secret>"\n$/,
  ],
];
for (const [name, args, code, message] of usage) {
  test(`replay fails clearly on ${name}`, () => {
    const r = run(args);
    assert.equal(r.code, code, r.stderr);
    assert.match(r.stderr, message);
  });
}

test('every command answers --help', () => {
  for (const args of [['--help'], ['replay', '--help']]) {
    const r = run(args);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: contid/);
  }
});

test('output to a file waits for it without piling up listeners', () => {
  // Some 20 MB of JSON written with -o: the file stream asks to wait after every buffer.
  const lines: string[] = [];
  for (let i = 0; i < 50_000; i++) lines.push(sys(3000 + (i % 500), 1, 39, 0, 'many'));
  const input = join(dir, 'many.log');
  const output = join(dir, 'many.json');
  writeFileSync(input, lines.join(''));
  const r = run(['replay', '--no-labels', '--format', 'json', '-o', output, input]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(output, 'utf8').split('\n').length - 1, 50_000);
  assert.doesNotMatch(r.stderr, /MaxListenersExceededWarning/);
});

test('replay stops quietly when its reader goes away (| head)', async () => {
  // Enough events to fill the pipe, so that contid waits for it to drain when the reader leaves.
  const lines: string[] = [];
  for (let i = 0; i < 20_000; i++) lines.push(sys(4000 + (i % 100), 1, 39, 4000, 'sh'));
  const log = join(dir, 'many.log');
  writeFileSync(log, lines.join(''));
  const child = spawn(process.execPath, [CLI, 'replay', '--format', 'json', log], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (stderr += d));
  // Read one chunk, then close the pipe, as head does after its lines.
  await once(child.stdout, 'data');
  child.stdout.destroy();
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, stderr);
  assert.doesNotMatch(stderr, /EPIPE|Error/);
});

test('replay sums up what it left out, cut off or timed apart: two files, the first cut off', () => {
  const syscall = (sec: string, serial: number, extra = ''): string =>
    `type=SYSCALL msg=audit(${sec}:${serial}): arch=c000003e syscall=59 success=yes exit=0 a0=1${extra} items=1 ppid=1 pid=5 auid=0 uid=0 ses=1 comm="ls" exe="/bin/ls" key=(null)`;
  const first = join(dir, 'cut.log');
  const second = join(dir, 'next.log');
  writeFileSync(
    first,
    [
      syscall('1700000000.000', 1, ' a1'), // a1 with no value
      'type=PROCTITLE msg=audit(1700000000.000:1): proctitle=6C73',
      // Copied while auditd wrote it: no final newline.
      'type=USER_AUTH msg=audit(1700000000.100:2): pid=1 uid=0 auid=0 ses=1 msg=\'op=PAM:authentication acct="root" res=success\'',
    ].join('\n'),
  );
  writeFileSync(
    second,
    [
      "type=USER_LOGIN msg=audit(1700000000.200:3): pid=1 uid=0 auid=0 ses=1 msg='op=login id=0 res=success'",
      syscall('1700086400.000', 4), // a day ahead
      syscall('1700000000.300', 5),
      'type=CWD msg=audit(1700000000.300:5): cwd="/"',
      'type=PATH msg=audit(1700000000.300:5): item=0 name="/bin/ls" inode=1 dev=00:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL',
      'type=PROCTITLE msg=audit(1700000000.300:5): proctitle=6C73',
      'type=CONTAINER_OP msg=audit(1700000000.300:6): op=set opid=5 contid=31337 old-contid=-1 res=1',
      '',
    ].join('\n'),
  );
  const r = run(['replay', first, second]);
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Ev);
  assert.deepEqual(
    events.map((e) => [e.serial, e.records.map((x) => x.type).join(',')]).sort((a, b) => +a[0]! - +b[0]!),
    [
      [1, 'SYSCALL,PROCTITLE'],
      [2, 'USER_AUTH'],
      [3, 'USER_LOGIN'],
      [4, 'SYSCALL'],
      [5, 'SYSCALL,CWD,PATH,PROCTITLE'],
    ],
  );
  assert.match(
    r.stderr,
    /^ {2}input: 1 last line of a file without a newline \(read; the record may be cut off\)$/m,
  );
  assert.match(
    r.stderr,
    /^ {2}left out: 1 contid record and 0 record= links of an earlier run \(computed again\), 1 word without a value \(not in JSON fields\)$/m,
  );
  assert.match(
    r.stderr,
    /^ {2}clock: 1 record whose time the stream did not bear out \(timed from their arrival\)$/m,
  );
  assert.match(r.stderr, /^ {2}line 3: Last line of the input has no newline.*\(ERR_UNTERMINATED_LINE\)/m);
  assert.match(
    r.stderr,
    /^ {2}line 1: Record SYSCALL has a word with no value.*\(ERR_FIELD_WITHOUT_VALUE\)/m,
  );
});
