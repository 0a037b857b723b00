/**
 * The files contid ships under etc/, each read by the real program that
 * reads it on a host: the audit rules by auditctl, the systemd unit by
 * systemd-analyze, the config example by `contid run`. (The auditd plugin
 * file: test/auditd-plugin.test.ts; the OCI hook files: test/oci-files.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseRunArgs } from '../src/cli/run-args.js';
import { CONFIG_KEYS, DEFAULT_CONFIG_FILE } from '../src/daemon/config.js';
import { contidRuleOwner, contidRules } from '../src/daemon/rules.js';
import { formatRule } from '../src/kernel/netlink.js';
import { auditSkipReason, skipIfDaemonRegistered, withAuditState } from './support/audit-state.js';
import { auditdSkipReason } from './support/auditd.js';
import { which } from './support/crun.js';
import { startDaemonProcess } from './support/daemon-process.js';
import { waitForNoProcesses } from './support/processes.js';

const etcPath = (path: string): string => new URL(`../../etc/${path}`, import.meta.url).pathname;
const etc = (path: string): string => readFileSync(etcPath(path), 'utf8');

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'contid-etc-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

test(
  "etc/audit/contid.rules: auditctl -R loads exactly contid's rules without the pid, and auditctl -d removes them",
  { skip: auditSkipReason() ?? auditdSkipReason() },
  async (t) => {
    await withAuditState((ctx) => {
      // These rules audit every process on the machine: with audit disabled
      // while they are loaded, they produce no record at all.
      if (skipIfDaemonRegistered(t, ctx)) return;
      const { netlink, snapshot } = ctx;
      if (snapshot.status.enabled !== 0) netlink.setStatus({ enabled: false });
      const file = etcPath('audit/contid.rules');
      const load = spawnSync('auditctl', ['-R', file], { encoding: 'utf8' });
      assert.equal(load.status, 0, load.stderr);
      assert.equal(load.stderr, '');
      const before = new Set(snapshot.rules.map(formatRule));
      const added = netlink
        .listRules()
        .filter((r) => !before.has(formatRule(r)))
        .map(formatRule);
      const expected = contidRules(0).map((r) => formatRule({ ...r, fields: [] }));
      assert.deepEqual(added, expected);
      // The daemon never takes them for its own (it removes only rules with its pid).
      for (const r of netlink.listRules()) assert.equal(contidRuleOwner(r), null);

      const lines = etc('audit/contid.rules')
        .split('\n')
        .filter((l) => l.startsWith('-a '));
      assert.equal(lines.length, expected.length);
      for (const line of lines) {
        const del = spawnSync('auditctl', ['-d', ...line.slice(3).split(' ')], { encoding: 'utf8' });
        assert.equal(del.status, 0, `${line}: ${del.stderr}`);
      }
      assert.deepEqual(netlink.listRules().map(formatRule), snapshot.rules.map(formatRule));
    });
  },
);

test("etc/auditd-plugin/contid.conf: args parse as contid run flags within auditd 3.0's limits", () => {
  // The real check is test/auditd-plugin.test.ts (root, auditd); this one runs anywhere.
  const text = etc('auditd-plugin/contid.conf');
  for (const line of text.split('\n')) assert.ok(line.length <= 158, `auditd skips a longer line: ${line}`);
  const args = /^args = (.*)$/m.exec(text)?.[1]?.split(' ') ?? [];
  assert.ok(args.length <= 2, `auditd passes at most two words of args: ${args.join(' ')}`);
  assert.equal(args[0], 'run');
  const run = parseRunArgs(args.slice(1));
  assert.deepEqual(run, { help: false, config: null, flags: { source: 'plugin' } });
});

/** The unit's Exec*= command lines (without systemd's `-`/`@`/`+` prefixes). */
function execLines(unit: string): string[][] {
  return [...unit.matchAll(/^Exec[A-Za-z]*=[-@:+!]*(.+)$/gm)].map((m) => m[1]!.trim().split(/\s+/));
}

test(
  'etc/systemd/contid.service: systemd-analyze verify has nothing to say, and ExecStart is a valid contid run',
  {
    skip:
      which('systemd-analyze') === null ? 'systemd-analyze (Debian package systemd) is needed' : undefined,
  },
  (t) => {
    const unit = etc('systemd/contid.service');
    const commands = execLines(unit);
    const start = commands.find((c) => c[0] === '/usr/local/bin/contid');
    assert.ok(start !== undefined, 'ExecStart runs /usr/local/bin/contid');
    assert.equal(start[1], 'run');
    const args = parseRunArgs(start.slice(2));
    assert.equal(args.config, DEFAULT_CONFIG_FILE);
    assert.deepEqual(args.flags, {});

    // A root holding the unit and, as stand-ins, the programs it runs: verify
    // checks that they exist and are executable, on this machine's paths.
    const root = tempDir(t);
    const installed = join(root, 'etc/systemd/system/contid.service');
    mkdirSync(dirname(installed), { recursive: true });
    writeFileSync(installed, unit);
    for (const [program] of commands) {
      mkdirSync(join(root, dirname(program!)), { recursive: true });
      copyFileSync('/bin/true', join(root, program!));
    }
    const verify = spawnSync(
      'systemd-analyze',
      ['verify', `--root=${root}`, '/etc/systemd/system/contid.service'],
      { encoding: 'utf8' },
    );
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr, '', 'verify warns about nothing');
  },
);

test(
  'systemd-analyze verify does report a bad line (so that the test above can fail)',
  {
    skip:
      which('systemd-analyze') === null ? 'systemd-analyze (Debian package systemd) is needed' : undefined,
  },
  (t) => {
    const root = tempDir(t);
    const installed = join(root, 'etc/systemd/system/contid.service');
    mkdirSync(dirname(installed), { recursive: true });
    writeFileSync(installed, '[Service]\nExecStart=/bin/true\nKillSignal=SIGNOPE\n');
    mkdirSync(join(root, 'bin'));
    copyFileSync('/bin/true', join(root, 'bin/true'));
    const verify = spawnSync(
      'systemd-analyze',
      ['verify', `--root=${root}`, '/etc/systemd/system/contid.service'],
      {
        encoding: 'utf8',
      },
    );
    assert.match(verify.stderr, /SIGNOPE/);
  },
);

test(
  'etc/contid.conf with every setting uncommented is accepted by contid run, which starts and stops cleanly',
  { skip: auditSkipReason(), timeout: 120_000 },
  async (t) => {
    await withAuditState(async () => {
      const dir = tempDir(t);
      // Every key set to the value the file documents, except the places on
      // disk, which are this test's own.
      const own: Record<string, string> = {
        'host-log': join(dir, 'log', 'audit.log'),
        'state-dir': join(dir, 'state'),
        keyring: join(dir, 'state', 'keyring'),
        socket: join(dir, 'run', 'control.sock'),
      };
      let uncommented = 0;
      const text = etc('contid.conf').replace(
        /^#([a-z-]+) = (.*)$/gm,
        (_line, key: string, value: string) => {
          uncommented++;
          return `${key} = ${own[key] ?? value}`;
        },
      );
      assert.equal(uncommented, CONFIG_KEYS.size, 'every key is in the file');
      const config = join(dir, 'contid.conf');
      writeFileSync(config, text);
      const d = await startDaemonProcess(['--config', config], { ready: 'Listening on ', timeoutMs: 60_000 });
      process.kill(d.pid, 'SIGTERM');
      assert.equal(await d.exited, 0, d.stderr());
      assert.doesNotMatch(d.stderr(), /: (warning|error): /);
      assert.match(d.stderr(), new RegExp(`host log ${own['host-log']} \\(text\\)`));
      assert.deepEqual(await waitForNoProcesses(dir), []);
    });
  },
);
