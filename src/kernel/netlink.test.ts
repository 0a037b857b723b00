// AuditNetlink against the real kernel. Every test that changes audit
// state runs inside withAuditState: under the machine-wide lock, restored
// afterwards. Rules only match auid 4242, which only our children carry.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { acquireAuditLock } from '../../test/support/audit-lock.js';
import {
  auditSkipReason,
  skipIfDaemonRegistered,
  TEST_LOGINUID,
  withAuditState,
} from '../../test/support/audit-state.js';
import { startDaemonChild } from '../../test/support/daemon-child.js';
import { SyscallError } from './libc.js';
import { AuditNetlink, formatRule, normalizeRule, type AuditRule } from './netlink.js';

const skip = auditSkipReason() ?? false;
// Longer than the lock wait (120 s), so a busy lock fails with its own message.
const timeout = 180_000;

function auditctl(...args: string[]): string {
  return execFileSync('auditctl', args, { encoding: 'utf8' });
}

/** `auditctl -s` as name → number. */
function auditctlStatus(): Map<string, number> {
  const status = new Map<string, number>();
  for (const line of auditctl('-s').split('\n')) {
    const [name, value] = line.split(' ');
    if (name !== undefined && value !== undefined && /^\d+$/.test(value)) status.set(name, Number(value));
  }
  return status;
}

const testRule = (key: string): AuditRule => ({
  list: 'exit',
  action: 'always',
  arch: 'b64',
  syscalls: [59],
  fields: [{ name: 'auid', op: '=', value: TEST_LOGINUID }],
  key,
});

void test('getStatus reads the same status as auditctl -s', { skip, timeout }, async () => {
  // The lock keeps other tests from changing the status between the two reads.
  const lock = await acquireAuditLock();
  const netlink = new AuditNetlink();
  try {
    const status = netlink.getStatus();
    const reference = auditctlStatus();
    assert.equal(status.enabled, reference.get('enabled'));
    assert.equal(status.failure, reference.get('failure'));
    assert.equal(status.pid, reference.get('pid'));
    assert.equal(status.backlogLimit, reference.get('backlog_limit'));
    assert.equal(status.backlogWaitTime, reference.get('backlog_wait_time'));
    assert.ok(status.featureBitmap > 0, 'the kernel reports its audit features');
  } finally {
    netlink.close();
    lock.release();
  }
});

void test('close is idempotent and a closed socket refuses requests with EBADF', () => {
  const netlink = new AuditNetlink();
  assert.ok(netlink.fd >= 0);
  netlink.close();
  netlink.close();
  assert.equal(netlink.fd, -1);
  assert.throws(() => netlink.getStatus(), { code: 'EBADF' });
});

void test(
  'setStatus enables audit and raises the backlog limit, and both are restored',
  { skip, timeout },
  async () => {
    const before = await withAuditState(({ netlink, snapshot }) => {
      const limit = snapshot.status.backlogLimit === 8192 ? 8191 : 8192;
      netlink.setStatus({ enabled: true, backlogLimit: limit });
      let status = netlink.getStatus();
      assert.equal(status.enabled, 1);
      assert.equal(status.backlogLimit, limit);
      assert.equal(auditctlStatus().get('backlog_limit'), limit);
      netlink.setStatus({ enabled: false });
      status = netlink.getStatus();
      assert.equal(status.enabled, 0);
      assert.equal(status.backlogLimit, limit, 'a change leaves the other settings alone');
      netlink.setStatus({ enabled: true });
      return snapshot.status;
    });
    const netlink = new AuditNetlink();
    try {
      const after = netlink.getStatus();
      assert.equal(after.enabled, before.enabled);
      assert.equal(after.backlogLimit, before.backlogLimit);
    } finally {
      netlink.close();
    }
  },
);

void test('a rule is added, listed as auditctl lists it, and deleted', { skip, timeout }, async () => {
  await withAuditState(({ netlink }) => {
    const rule = testRule(`contid-test-${process.pid}`);
    netlink.addRule(rule);
    const listed = netlink.listRules();
    assert.deepEqual(listed.at(-1), normalizeRule(rule));
    assert.ok(auditctl('-l').split('\n').includes(formatRule(rule)), 'auditctl -l prints the same line');
    assert.equal(
      formatRule(rule),
      `-a always,exit -F arch=b64 -S execve -F auid=${TEST_LOGINUID} -F key=contid-test-${process.pid}`,
    );

    assert.throws(
      () => {
        netlink.addRule(rule);
      },
      {
        code: 'EEXIST',
        message: /^Cannot add the audit rule ".*": an identical rule exists \(EEXIST\)$/,
      },
    );
    netlink.deleteRule(rule);
    assert.equal(netlink.listRules().length, listed.length - 1);
    assert.throws(
      () => {
        netlink.deleteRule(rule);
      },
      { code: 'ENOENT', message: /no identical rule exists/ },
    );
  });
});

void test(
  'rules added by auditctl decode to what auditctl lists, and delete',
  { skip, timeout },
  async () => {
    await withAuditState(({ netlink }) => {
      const key = `contid-test-${process.pid}`;
      const auid = `auid=${TEST_LOGINUID}`;
      const commands = [
        [
          '-a',
          'always,exit',
          '-F',
          'arch=b64',
          '-S',
          'clone,fork,vfork,clone3',
          '-F',
          auid,
          '-F',
          'exit=-13',
          '-k',
          key,
        ],
        [
          '-a',
          'always,exit',
          '-F',
          'arch=b32',
          '-S',
          'execve',
          '-F',
          auid,
          '-F',
          'a0&0x10',
          '-F',
          'exe=/bin/true',
        ],
        [
          '-a',
          'never,exit',
          '-F',
          'arch=b64',
          '-S',
          'all',
          '-F',
          auid,
          '-F',
          'auid!=-1',
          '-k',
          key,
          '-k',
          'two',
        ],
        ['-a', 'always,exclude', '-F', auid, '-F', 'msgtype=2142'],
      ];
      const existing = netlink.listRules().length;
      for (const command of commands) auditctl(...command);
      const ours = netlink.listRules().slice(existing);
      const printed = auditctl('-l').trim().split('\n').slice(existing);
      assert.equal(ours.length, commands.length);
      assert.deepEqual(ours.map(formatRule), printed);
      for (const rule of ours) netlink.deleteRule(rule);
      assert.equal(netlink.listRules().length, existing);
    });
  },
);

void test(
  'sendUserMessage is refused with EINVAL for a type the kernel does not take from users',
  { skip, timeout },
  async () => {
    await withAuditState(({ netlink }) => {
      assert.throws(
        () => {
          netlink.sendUserMessage(999, 'op=test');
        },
        (error: unknown) => {
          assert.ok(error instanceof SyscallError);
          assert.equal(error.code, 'EINVAL');
          assert.equal(
            error.message,
            'Cannot send an audit user message of type 999: invalid argument (EINVAL)',
          );
          return true;
        },
      );
      // Control commands would run with the text as their argument: refused before sending.
      const before = netlink.getStatus();
      assert.throws(
        () => {
          netlink.sendUserMessage(1001, 'xxxx');
        },
        { code: 'EINVAL', message: /is an audit control command/ },
      );
      assert.deepEqual(netlink.getStatus().enabled, before.enabled);
      assert.throws(() => {
        netlink.sendUserMessage(2142, '');
      }, RangeError);
      assert.throws(() => {
        netlink.sendUserMessage(2142, 'a\0b');
      }, RangeError);
    });
  },
);

void test(
  'registering while another process is the daemon fails with EEXIST',
  { skip, timeout },
  async (t) => {
    await withAuditState(async (context) => {
      if (skipIfDaemonRegistered(t, context)) return;
      const { netlink } = context;
      const daemon = await startDaemonChild();
      try {
        assert.equal(netlink.getStatus().pid, daemon.pid);
        assert.throws(
          () => {
            netlink.registerDaemon();
          },
          {
            name: 'SyscallError',
            code: 'EEXIST',
            message: 'Cannot register as the audit daemon: another daemon is registered (EEXIST)',
          },
        );
        assert.throws(
          () => {
            netlink.unregisterDaemon();
          },
          { code: 'EACCES', message: /another process is registered/ },
        );
        assert.equal(netlink.getStatus().pid, daemon.pid);
      } finally {
        assert.equal(await daemon.stop(), 0);
      }
      assert.equal(netlink.getStatus().pid, 0);
    });
  },
);

void test('registering with a pid that is not ours fails with EINVAL', { skip, timeout }, async () => {
  await withAuditState(({ netlink }) => {
    assert.throws(
      () => {
        netlink.registerDaemon(1);
      },
      { code: 'EINVAL', message: /pid 1 is not the calling process/ },
    );
  });
});
