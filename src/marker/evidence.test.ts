// What a replay proves with a keyring, on logs made as the live daemon makes
// them: records the daemon reads (hashed into seals as it reads them from
// netlink) and its markers, each naming the one before as it read it back.
import assert from 'node:assert/strict';
import { createCipheriv, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';

import { Sealer } from '../daemon/sealer.js';
import { parseLine, parseNetlink } from '../parse/parser.js';
import { isIssue } from '../parse/parser.js';
import { ReplayPipeline, type ReplayStats } from '../pipeline/replay.js';
import { formatEventText } from '../output/text.js';
import type { AuditRecord } from '../parse/record.js';
import type { EvidenceFinding } from './evidence.js';
import { encodeMarker, MARKER_TYPE, type MarkerBody, type MarkerStamp } from './format.js';
import type { Keyring } from './keyring.js';
import { recordValue, SealHasher, sealKey } from './seal.js';

const SECRET = Buffer.alloc(32, 7);
const KEYRING: Keyring = new Map([['S1', { startId: 'S1', daemonPid: 500, secret: SECRET }]]);
const ORCH = { pid: 100, uid: 0, auid: 4294967295, exe: '/usr/bin/crun', privileged: true };

/** A log as `contid run` leaves it: what the kernel sent, the daemon's markers and seals. */
class DaemonLog {
  #serial = 5000;
  #ms = 1_700_000_000_000;
  #seq = 0;
  #prev: MarkerStamp | null = null;
  readonly #sealer = new Sealer({ secret: SECRET });
  readonly lines: string[] = [];
  /** Line index of each marker, by seq. */
  readonly markers = new Map<number, number>();

  /** A record as the kernel sends it; the daemon reads (and seals) it. Returns its line index. */
  record(typeName: string, type: number, body: string, more: [string, number, string][] = []): number {
    this.#ms += 20;
    const time = `${Math.floor(this.#ms / 1000)}.${String(this.#ms % 1000).padStart(3, '0')}`;
    const serial = ++this.#serial;
    for (const [name, t, text] of [[typeName, type, body] as [string, number, string], ...more]) {
      const read = parseNetlink(t, Buffer.from(`audit(${time}:${serial}): ${text}`, 'latin1'));
      assert.ok(!isIssue(read));
      this.#sealer.add(read);
      this.lines.push(`type=${name} msg=audit(${time}:${serial}): ${text}`);
    }
    if (type === MARKER_TYPE) {
      // Read back: the next marker names it.
      this.#prev = { time, serial };
      if (this.#seq === 1) this.#sealer.begin(serial);
    }
    return this.lines.length - 1 - more.length;
  }

  /** A SYSCALL event and its PROCTITLE (the kernel's last record, which closes it in a log). */
  syscall(pid: number, ppid: number, nr: number, exit = 0): number {
    return this.record(
      'SYSCALL',
      1300,
      `arch=c000003e syscall=${nr} success=yes exit=${exit} a0=1200011 a1=0 a2=0 a3=0 items=0 ppid=${ppid} ` +
        `pid=${pid} auid=4242 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 ` +
        `comm="sh" exe="/bin/sh" key="contid"`,
      [['PROCTITLE', 1327, 'proctitle=7368']],
    );
  }

  /** Host processes forking and exiting, `n` records. */
  busy(n: number, base = 20_000): void {
    for (let i = 0; i < n; i++) this.syscall(base + i, 1, i % 2 === 0 ? 59 : 231);
  }

  marker(body: MarkerBody): number {
    const seq = ++this.#seq;
    const m = this.#prev === null ? { start: 'S1', seq, body } : { start: 'S1', seq, prev: this.#prev, body };
    const at = this.record(
      `UNKNOWN[${MARKER_TYPE}]`,
      MARKER_TYPE,
      `pid=500 uid=0 auid=4294967295 ses=4294967295 msg='${encodeMarker(m, SECRET)}'`,
    );
    this.markers.set(seq, at);
    return at;
  }

  /** A seal of every whole bucket read so far (what `contid run` writes at stop). */
  seal(): number {
    const body = this.#sealer.seal(0, { final: true, lossy: false });
    assert.ok(body !== null, 'something to seal');
    return this.marker(body);
  }
}

/** Start, a labelled container (pid 300), host traffic, three seals, stop. */
function sampleLog(): DaemonLog {
  const log = new DaemonLog();
  log.marker({ op: 'start', daemonPid: 500 });
  log.busy(150);
  log.syscall(200, 1, 56, 300); // crun forks the container's init
  log.marker({ op: 'set', pid: 300, ppid: 200, contid: '42', caller: ORCH });
  log.syscall(300, 200, 59); // the init execs
  log.syscall(300, 200, 56, 301); // and forks
  log.syscall(301, 300, 59);
  log.busy(150, 30_000);
  log.seal();
  log.busy(200, 40_000);
  log.seal();
  log.busy(200, 50_000);
  log.seal();
  log.marker({ op: 'stop' });
  return log;
}

function replay(text: string, format: 'json' | 'text' = 'json'): { out: string; stats: ReplayStats } {
  const p = new ReplayPipeline({ format, keyring: KEYRING });
  const out = Buffer.concat([p.push(text), p.end()]).toString('utf8');
  return { out, stats: p.stats() };
}

function replayLines(lines: readonly string[]): ReplayStats {
  return replay(`${lines.join('\n')}\n`).stats;
}

function problems(stats: ReplayStats, check: EvidenceFinding['check']): EvidenceFinding[] {
  return stats.evidenceProblems.filter((f) => f.check === check);
}

/** The index of the `n`th SYSCALL line after line `from`. */
function syscallAfter(lines: readonly string[], from: number, n: number): number {
  let seen = 0;
  for (let i = from + 1; i < lines.length; i++) {
    if (lines[i]!.startsWith('type=SYSCALL ') && ++seen === n) return i;
  }
  throw new Error(`No SYSCALL line ${n} after line ${from}`);
}

/** The serial of a log line. */
function serialOf(line: string): number {
  return Number(/msg=audit\([0-9.]+:([0-9]+)\)/.exec(line)![1]);
}

/** The contid of the events of `pid`, in JSON output. */
function contidsOf(out: string, pid: number): (string | null)[] {
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { contid: string | null; records: { fields: Record<string, string> }[] })
    .filter((e) => e.records[0]?.fields['pid'] === String(pid))
    .map((e) => e.contid);
}

void describe('evidence: gaps, order, chains and seals', () => {
  void it('an untouched log: every seal intact, one run of spans, no marker missing or moved', () => {
    const stats = replayLines(sampleLog().lines);
    assert.equal(stats.labels?.forgeries, 0);
    assert.deepEqual(stats.evidenceProblems, []);
    const e = stats.evidence!;
    assert.equal(e.intact, 3);
    assert.equal(e.broken + e.gaps + e.order + e.chain + e.place + e.late, 0);
    assert.equal(stats.intactSpans.length, 1, 'consecutive spans merge');
    const [span] = stats.intactSpans;
    assert.equal(span!.seals, 3);
    assert.ok(span!.to - span!.from > 500, `${span!.from}-${span!.to}`);
  });

  void it('a deleted record breaks exactly the span that holds it', () => {
    const log = sampleLog();
    const victim = log.lines[syscallAfter(log.lines, log.markers.get(3)!, 25)]!;
    const stats = replayLines(log.lines.filter((l) => l !== victim));
    const broken = problems(stats, 'seal');
    assert.equal(broken.length, 1);
    const seal = broken[0] as Extract<EvidenceFinding, { check: 'seal' }>;
    assert.equal(seal.result, 'broken');
    assert.ok(seal.from <= serialOf(victim) && serialOf(victim) <= seal.to);
    assert.equal(seal.seen, seal.records - 1);
    assert.equal(stats.evidence!.intact, 2);
  });

  void it('a changed record breaks its span, with as many records as sealed', () => {
    const log = sampleLog();
    const at = syscallAfter(log.lines, log.markers.get(4)!, 10);
    const lines = [...log.lines];
    lines[at] = lines[at]!.replace(' exit=0 ', ' exit=1 ');
    assert.notEqual(lines[at], log.lines[at]);
    const stats = replayLines(lines);
    const [seal] = problems(stats, 'seal') as Extract<EvidenceFinding, { check: 'seal' }>[];
    assert.ok(seal !== undefined && seal.result === 'broken');
    assert.equal(seal.seen, seal.records);
    assert.ok(seal.from <= serialOf(lines[at]) && serialOf(lines[at]) <= seal.to);
    assert.equal(stats.evidence!.intact, 2);
  });

  void it('an added record breaks the span its serial falls in', () => {
    const log = sampleLog();
    const at = syscallAfter(log.lines, log.markers.get(4)!, 10);
    // A PATH record in the event, as if the process had opened /x.
    const stamp = /msg=audit\([0-9.:]+\)/.exec(log.lines[at]!)![0];
    const forged = `type=PATH ${stamp}: item=0 name="/x" inode=1 dev=00:01 mode=0100644 nametype=NORMAL`;
    const lines = [...log.lines.slice(0, at + 1), forged, ...log.lines.slice(at + 1)];
    const stats = replayLines(lines);
    const [seal] = problems(stats, 'seal') as Extract<EvidenceFinding, { check: 'seal' }>[];
    assert.ok(seal !== undefined && seal.result === 'broken');
    assert.equal(seal.seen, seal.records + 1);
    assert.equal(stats.evidence!.intact, 2);
  });

  void it('a record of a span already judged, added at the end, is reported late', () => {
    const log = sampleLog();
    const old = log.lines[syscallAfter(log.lines, log.markers.get(2)!, 10)]!;
    const stats = replayLines([...log.lines.slice(0, -1), old.replace(' pid=', ' pid=7'), log.lines.at(-1)!]);
    const late = problems(stats, 'late');
    assert.equal(late.length, 1);
    assert.equal(stats.evidence!.intact, 3, 'the verdicts were given before it came');
  });

  void it('a deleted set marker: the container shows as host, and the replay names the missing marker', () => {
    const log = sampleLog();
    const set = log.markers.get(2)!;
    const { out: before } = replay(`${log.lines.join('\n')}\n`);
    assert.deepEqual(contidsOf(before, 300), ['42', '42']);
    const lines = log.lines.filter((_, i) => i !== set);
    const { out, stats } = replay(`${lines.join('\n')}\n`);
    assert.deepEqual(contidsOf(out, 300), [null, null], 'the deletion works');
    const [gap] = problems(stats, 'gap') as Extract<EvidenceFinding, { check: 'gap' }>[];
    assert.deepEqual(gap && [gap.start, gap.from, gap.to], ['S1', 2, 2]);
    // The next marker named it as the one before.
    const [chain] = problems(stats, 'chain') as Extract<EvidenceFinding, { check: 'chain' }>[];
    assert.equal(chain?.seq, 3);
    assert.equal(chain.prev, /msg=audit\(([0-9.:]+)\)/.exec(log.lines[set]!)![1]);
    assert.equal(stats.evidence!.missing, 1);
    // The marker is a record of its span, too.
    assert.equal(stats.evidence!.broken, 1);
  });

  void it("a set marker moved after its target's fork: EBUSY, and the replay reports it out of place", () => {
    const log = sampleLog();
    const set = log.markers.get(2)!;
    const lines = [...log.lines];
    const fork = syscallAfter(log.lines, set, 2);
    assert.match(log.lines[fork]!, / syscall=56 .* pid=300 /);
    const [marker] = lines.splice(set, 1);
    lines.splice(fork + 1, 0, marker!); // after the init's fork (and its PROCTITLE)
    const { out, stats } = replay(`${lines.join('\n')}\n`);
    assert.match(out, /"op":"set"[^}]*"res":"0","errno":"EBUSY"/, 'the set now fails');
    const [place] = problems(stats, 'place') as Extract<EvidenceFinding, { check: 'place' }>[];
    assert.equal(place?.seq, 2);
    assert.equal(place.afterSerial, serialOf(log.lines[fork]!));
    // Seals do not see order: every span is still intact.
    assert.equal(stats.evidence!.intact, 3);
    assert.equal(stats.evidence!.broken, 0);
  });

  void it('a marker moved past the next marker of its start is a replay, a gap and a chain break', () => {
    const log = sampleLog();
    const set = log.markers.get(2)!;
    const next = log.markers.get(3)!;
    const lines = [...log.lines];
    const [marker] = lines.splice(set, 1);
    lines.splice(next, 0, marker!);
    const stats = replayLines(lines);
    assert.deepEqual(
      stats.forgeries.map((f) => f.reason),
      ['replayed'],
    );
    assert.equal(problems(stats, 'gap').length, 1);
    assert.equal(problems(stats, 'chain').length, 1);
  });

  void it('a marker whose stamp was moved to a later serial is out of serial order, and breaks its span', () => {
    const log = sampleLog();
    const set = log.markers.get(2)!;
    const lines = [...log.lines];
    const later = serialOf(log.lines[log.markers.get(3)! + 1]!);
    lines[set] = lines[set]!.replace(/:[0-9]+\)/, `:${later})`);
    const stats = replayLines(lines);
    const [order] = problems(stats, 'order') as Extract<EvidenceFinding, { check: 'order' }>[];
    assert.equal(order?.seq, 3);
    assert.ok(stats.evidence!.broken >= 1);
  });

  void it("contid's host log of a log verifies as the log does (CONTAINER_ID, record=N)", () => {
    const log = sampleLog();
    const first = replay(`${log.lines.join('\n')}\n`, 'text');
    assert.match(
      first.out,
      / record=1\ntype=PROCTITLE .*\ntype=CONTAINER_ID msg=audit\([0-9.:]+\): record=1 contid=42\n/,
    );
    assert.match(
      first.out,
      /type=CONTID_EVIDENCE msg=audit\([0-9.:]+\): check=seal start=S1 seq=\d+ .* result=intact\n/,
    );
    const again = replay(first.out, 'json');
    assert.deepEqual(again.stats.evidenceProblems, []);
    assert.equal(again.stats.evidence!.intact, 3);
  });

  void it('a log cut after a seal judges it at the end; a log without seals says nothing is shown intact', () => {
    const log = sampleLog();
    const stats = replayLines(log.lines.slice(0, log.markers.get(5)! + 1));
    assert.equal(stats.evidence!.intact, 3);
    assert.ok(stats.evidence!.pendingAtEnd >= 1);
    const bare = new DaemonLog();
    bare.marker({ op: 'start', daemonPid: 500 });
    bare.busy(10);
    bare.marker({ op: 'stop' });
    const none = replayLines(bare.lines);
    assert.equal(none.evidence!.intact + none.evidence!.broken, 0);
  });
});

void describe('seal canonical form', () => {
  const key = sealKey(SECRET);
  const hashOf = (text: string): string => {
    const r = parseLine(text, 1);
    assert.ok(!isIssue(r));
    return recordValue(key, r).toString('hex');
  };

  void it('a netlink record hashes as auditd and the host log write it (newline, bytes that are not UTF-8)', () => {
    const payload = Buffer.concat([
      Buffer.from("audit(1700000000.001:77): pid=1 uid=0 auid=4242 ses=3 msg='a\nb "),
      Buffer.from([0xff, 0xc3, 0x28]),
      Buffer.from("'"),
    ]);
    const netlink = parseNetlink(1100, payload);
    assert.ok(!isIssue(netlink));
    const written = formatEventText({
      node: null,
      time: netlink.time,
      timeMs: netlink.timeMs,
      serial: 77,
      records: [netlink],
      closedBy: 'standalone',
    });
    assert.equal(written.split('\n').length, 2, 'one line: the newline is a space');
    const auditd =
      "type=USER_AUTH msg=audit(1700000000.001:77): pid=1 uid=0 auid=4242 ses=3 msg='a b \ufffd\ufffd('";
    assert.equal(written, `${auditd}\n`);
    assert.equal(recordValue(key, netlink).toString('hex'), hashOf(auditd));
  });

  void it('covers the type, the stamp and the fields, not node= or the enriched part', () => {
    const base = 'type=SYSCALL msg=audit(1700000000.001:77): arch=c000003e syscall=59 pid=1';
    assert.equal(hashOf(`node=a ${base}`), hashOf(base));
    assert.equal(hashOf(`${base}\x1dARCH=x86_64 SYSCALL=execve`), hashOf(base));
    assert.notEqual(hashOf(base.replace('SYSCALL', 'PATH')), hashOf(base));
    assert.notEqual(hashOf(base.replace(':77', ':78')), hashOf(base));
    assert.notEqual(hashOf(base.replace('.001', '.002')), hashOf(base));
    assert.notEqual(hashOf(base.replace('pid=1', 'pid=2')), hashOf(base));
    assert.notEqual(
      recordValue(sealKey(Buffer.alloc(32, 8)), parseLine(base, 1) as never).toString('hex'),
      hashOf(base),
    );
    assert.equal(hashOf(`${base} record=1`), hashOf(base), "contid's link is not part of it");
  });

  void it('batches compute what a length-prefixed AES-128 CBC-MAC of each record gives', () => {
    const key = sealKey(SECRET);
    const reference = (r: AuditRecord): string => {
      const text = Buffer.from(`${r.type} ${r.time}:${r.serial} ${r.body.replaceAll('\n', ' ')}`, 'utf8');
      const message = Buffer.alloc(16 + Math.ceil(text.length / 16) * 16);
      message.writeUInt32LE(text.length, 0);
      text.copy(message, 16);
      const aesKey = createHmac('sha256', key).update('contid-seal record v1').digest().subarray(0, 16);
      const cbc = createCipheriv('aes-128-cbc', aesKey, Buffer.alloc(16));
      cbc.setAutoPadding(false);
      const out = Buffer.concat([cbc.update(message), cbc.final()]);
      return out.subarray(out.length - 16).toString('hex');
    };
    // Lengths across block boundaries, long records among short ones, more
    // than a batch; netlink records with newlines among them (made canonical
    // in the batch, whose bytes past a record are left from earlier ones).
    const records: AuditRecord[] = [];
    for (let i = 0; i < 5000; i++) {
      const r =
        i % 10 === 3
          ? parseNetlink(1100, `audit(1700000000.001:${i}): pid=1 msg='op=x\n${'y\n'.repeat(i % 40)}'`)
          : parseLine(
              `type=PATH msg=audit(1700000000.${String(i % 1000).padStart(3, '0')}:${i}): name="${'x'.repeat((i * 7919) % (i % 97 === 0 ? 9000 : 300))}"`,
              i + 1,
            );
      assert.ok(!isIssue(r));
      records.push(r);
    }
    const got = new Map<number, string>();
    const hasher = new SealHasher(key, {
      add: (serial, _time, value, offset) => {
        got.set(serial, Buffer.from(value.subarray(offset, offset + 16)).toString('hex'));
      },
    });
    for (const r of records) hasher.add(r);
    hasher.flush();
    assert.equal(got.size, records.length);
    for (const r of records) assert.equal(got.get(r.serial), reference(r), `record ${r.serial}`);
  });
});

void describe('the daemon sealer', () => {
  void it('seals only what the stream has been past for the margin, and counts records read after their seal', () => {
    const sealer = new Sealer({ secret: SECRET, marginMs: 5000 });
    const rec = (serial: number): ReturnType<typeof parseNetlink> =>
      parseNetlink(1300, `audit(1700000000.001:${serial}): arch=c000003e syscall=59 pid=${serial}`);
    sealer.begin(1000);
    for (let s = 1001; s <= 1400; s++) sealer.add(rec(s) as never);
    sealer.note(0);
    assert.equal(sealer.seal(1000, { lossy: false }), null, 'not yet 5 s past');
    for (let s = 1401; s <= 1500; s++) sealer.add(rec(s) as never);
    sealer.note(2000);
    const first = sealer.seal(6000, { lossy: false });
    assert.ok(first !== null);
    // Sealing starts a bucket after the start marker's, ends with the last whole bucket read by then.
    assert.deepEqual([first.from, first.to, first.records], [1088, 1343, 256]);
    sealer.add(rec(1200) as never);
    const second = sealer.seal(8000, { lossy: true });
    assert.ok(second !== null);
    assert.deepEqual(
      [second.from, second.to, second.records, second.late, second.lossy],
      [1344, 1471, 128, 1, true],
    );
    assert.equal(sealer.stats().late, 1);
  });
});
