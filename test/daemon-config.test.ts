import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseRunArgs } from '../src/cli/run-args.js';
import { UsageError } from '../src/cli/usage.js';
import {
  CONFIG_KEYS,
  ConfigError,
  DEFAULT_CONFIG,
  hostLogPath,
  keyringPath,
  parseConfigFile,
  resolveConfig,
} from '../src/daemon/config.js';
import { parseProcStat } from '../src/daemon/proc-seed.js';
import { auditdRulesText, contidRuleOwner, contidRules } from '../src/daemon/rules.js';
import { formatRule } from '../src/kernel/netlink.js';

const etc = (path: string): string => readFileSync(new URL(`../../etc/${path}`, import.meta.url), 'utf8');

test('etc/contid.conf documents every setting with its default', () => {
  const text = etc('contid.conf');
  const uncommented = text.replace(/^#([a-z-]+ = )/gm, '$1');
  assert.deepEqual(resolveConfig(parseConfigFile(uncommented), {}), {
    ...DEFAULT_CONFIG,
    hostLog: '/var/log/contid/audit.log',
    keyring: '/var/lib/contid/keyring',
  });
  for (const key of CONFIG_KEYS.keys()) assert.match(text, new RegExp(`^#${key} = `, 'm'), key);
});

test('config files refuse unknown keys, repeats and bad values, with the line', () => {
  assert.throws(() => parseConfigFile('sourc = auto'), {
    name: 'ConfigError',
    message: /^Cannot use config line 1: "sourc" is not a setting$/,
  });
  assert.throws(() => parseConfigFile('format = text\nformat = json', 'f'), {
    message: 'Cannot use f line 2: setting "format" is repeated',
  });
  assert.throws(() => parseConfigFile('backlog-limit = -1'), ConfigError);
  assert.throws(() => parseConfigFile('host-log = relative.log'), /not an absolute path/);
  assert.throws(() => parseConfigFile('just words'), {
    message: 'Cannot read config line 1: expected "key = value"',
  });
  assert.deepEqual(parseConfigFile('# c\n\nhost-log = none\nseed-proc = no\n'), {
    hostLog: '',
    seedProc: false,
  });
});

test('flags override the file; the host log defaults by mode', () => {
  const args = parseRunArgs([
    '--source',
    'plugin',
    '--host-log',
    '/tmp/x.log',
    '-f',
    'json',
    '--state-dir',
    '/s',
  ]);
  assert.equal(args.help, false);
  const config = resolveConfig(parseConfigFile('format = text\nsource = unicast'), args.flags);
  assert.equal(config.source, 'plugin');
  assert.equal(config.format, 'json');
  assert.equal(keyringPath(config), '/s/keyring');
  assert.equal(hostLogPath(config, 'plugin'), '/tmp/x.log');
  assert.equal(hostLogPath(DEFAULT_CONFIG, 'unicast'), '/var/log/contid/audit.log');
  assert.equal(hostLogPath(DEFAULT_CONFIG, 'multicast'), null);
  assert.equal(hostLogPath({ ...DEFAULT_CONFIG, hostLog: '' }, 'unicast'), null);
  assert.throws(() => parseRunArgs(['--source', 'kernel']), UsageError);
  assert.throws(() => parseRunArgs(['extra']), UsageError);
  assert.equal(parseRunArgs(['-h']).help, true);
});

test('the event store settings: a path or none, retention by age and size, bad values refused', () => {
  assert.deepEqual(
    parseConfigFile('store = /var/lib/contid/events.db\nstore-max-age = 90d\nstore-max-size = 20G'),
    {
      store: '/var/lib/contid/events.db',
      storeMaxAgeMs: 90 * 86_400_000,
      storeMaxBytes: 20 * 1024 ** 3,
    },
  );
  assert.deepEqual(parseConfigFile('store = none\nstore-max-age = none\nstore-max-size = none'), {
    store: '',
    storeMaxAgeMs: null,
    storeMaxBytes: null,
  });
  assert.equal(DEFAULT_CONFIG.store, '');
  assert.throws(
    () => parseConfigFile('store = events.db', 'f'),
    /Cannot use store \(f line 1\): "events\.db" is not an absolute path/,
  );
  assert.throws(() => parseConfigFile('store-max-age = 90', 'f'), {
    name: 'ConfigError',
    message:
      'Cannot use store-max-age (f line 1): "90" is not a duration (a number and s, m, h, d or w: 90d)',
  });
  assert.throws(() => parseRunArgs(['--store-max-size', '10K']), {
    name: 'UsageError',
    message: /^Cannot use store-max-size \(--store-max-size\): "10K" is less than 1M$/,
  });
  assert.equal(parseRunArgs(['--store', '/s/e.db']).flags.store, '/s/e.db');
});

test('contid rules cover the lifecycle syscalls of both arches and are recognised by owner pid', () => {
  const rules = contidRules(4242);
  assert.deepEqual(rules.map(formatRule), [
    '-a always,exit -F arch=b64 -S clone,fork,vfork,execve,exit_group,execveat,clone3 -F pid!=4242 -F key=contid',
    '-a always,exit -F arch=b32 -S fork,execve,clone,vfork,exit_group,execveat,clone3 -F pid!=4242 -F key=contid',
  ]);
  assert.deepEqual(rules.map(contidRuleOwner), [4242, 4242]);
  // auditd's pid-less rules and other keys are never taken for contid's.
  assert.equal(contidRuleOwner({ ...rules[0]!, fields: [] }), null);
  assert.equal(contidRuleOwner({ ...rules[0]!, key: 'other' }), null);
  assert.equal(contidRuleOwner({ ...rules[0]!, syscalls: [59] }), null);
  for (const line of auditdRulesText().split('\n')) assert.ok(etc('audit/contid.rules').includes(line), line);
});

test('/proc/PID/stat parsing copes with spaces and parentheses in comm', () => {
  const stat = '123 (a) b (c)) S 45 123 123 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10 rest';
  assert.deepEqual(parseProcStat(stat), { ppid: 45, comm: 'a) b (c)', startTime: 98765 });
  assert.equal(parseProcStat('garbage'), null);
});

test('batch-wait: how often the kernel socket is read while records come, 1 to 1000 ms, flag over file', () => {
  assert.equal(DEFAULT_CONFIG.batchWaitMs, 100);
  const config = resolveConfig(
    parseConfigFile('batch-wait = 200'),
    parseRunArgs(['--batch-wait', '150']).flags,
  );
  assert.equal(config.batchWaitMs, 150);
  assert.equal(resolveConfig(parseConfigFile('batch-wait = 200'), {}).batchWaitMs, 200);
  assert.throws(() => parseConfigFile('batch-wait = 0'), ConfigError);
  assert.throws(() => parseConfigFile('batch-wait = 1001'), ConfigError);
});
