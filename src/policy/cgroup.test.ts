import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CgroupIndex, chooseAnchor, parseCgroupFile } from './cgroup.js';

/** A cgroup v1 file as on these hosts (hybrid: v1 controllers plus an empty unified line). */
function v1(path: string, memory = path): string {
  return (
    `9:name=systemd:${path}\n8:pids:${path}\n7:blkio:${path}\n6:freezer:${path}\n5:devices:${path}\n` +
    `4:memory:${memory}\n3:cpuset:${path}\n2:cpuacct:${path}\n1:cpu:${path}\n0::/\n`
  );
}

function v2(path: string): string {
  return `0::${path}\n`;
}

const HOST = v1('/', '/process_api/b7f5');

void describe('parseCgroupFile', () => {
  void it('splits id:controllers:path and keeps colons in paths', () => {
    assert.deepEqual(parseCgroupFile('4:memory:/a:b\n0::/x\n'), [
      { hierarchy: '4:memory', path: '/a:b' },
      { hierarchy: '0:', path: '/x' },
    ]);
  });

  void it('skips blank and malformed lines', () => {
    assert.deepEqual(parseCgroupFile('\ngarbage\n1:cpu\n2:cpu:relative\n'), []);
  });
});

void describe('chooseAnchor', () => {
  void it('prefers name=systemd over other v1 controllers when the unified path is the root', () => {
    assert.deepEqual(chooseAnchor(v1('/ctr1'), [HOST]), { hierarchy: '9:name=systemd', path: '/ctr1' });
  });

  void it('prefers the unified hierarchy when it differs', () => {
    assert.deepEqual(chooseAnchor(v2('/machine.slice/crun-x.scope'), [v2('/init.scope')]), {
      hierarchy: '0:',
      path: '/machine.slice/crun-x.scope',
    });
  });

  void it('returns null for a container that shares the host cgroups (no cgroup manager)', () => {
    assert.equal(chooseAnchor(HOST, [HOST]), null);
    assert.equal(chooseAnchor(v1('/'), [HOST]), null);
  });

  void it('ignores hierarchies where the container equals any host reference', () => {
    const daemon = v1('/', '/daemon');
    const anchor = chooseAnchor(`4:memory:/daemon\n8:pids:/c9\n`, [HOST, daemon]);
    assert.deepEqual(anchor, { hierarchy: '8:pids', path: '/c9' });
  });
});

void describe('CgroupIndex', () => {
  void it('matches processes in the anchor or below it, and nothing else', () => {
    const index = new CgroupIndex([HOST]);
    assert.equal(index.register('78', v1('/ctr1')).kind, 'registered');
    assert.equal(index.match(v1('/ctr1')), '78');
    assert.equal(index.match(v1('/ctr1/inner')), '78');
    assert.equal(index.match(v1('/ctr10')), null, 'a sibling with a common prefix');
    assert.equal(index.match(HOST), null);
    assert.equal(index.match(''), null);
  });

  void it('the deepest anchor wins for nested containers', () => {
    const index = new CgroupIndex([HOST]);
    index.register('1', v1('/outer'));
    index.register('2', v1('/outer/inner'));
    assert.equal(index.match(v1('/outer/inner/x')), '2');
    assert.equal(index.match(v1('/outer/other')), '1');
  });

  void it('a container in the host cgroup is not registered', () => {
    const index = new CgroupIndex([HOST]);
    assert.deepEqual(index.register('5', HOST), { kind: 'host' });
    assert.equal(index.size, 0);
    assert.equal(index.match(HOST), null);
  });

  void it('a cgroup claimed by two IDs matches neither', () => {
    const index = new CgroupIndex([HOST]);
    index.register('5', v1('/shared'));
    assert.equal(index.register('5', v1('/shared')).kind, 'known');
    const r = index.register('6', v1('/shared'));
    assert.deepEqual(r, {
      kind: 'ambiguous',
      anchor: { hierarchy: '9:name=systemd', path: '/shared' },
      other: '5',
    });
    assert.equal(index.match(v1('/shared')), null);
    assert.equal(index.size, 0);
    // Once one of them drops, the cgroup is the other's again.
    assert.equal(index.unregister('5'), 1);
    assert.equal(index.size, 1);
    assert.equal(index.match(v1('/shared')), '6');
    assert.equal(index.unregister('6'), 1);
    assert.equal(index.size, 0);
    assert.equal(index.match(v1('/shared')), null);
  });

  void it('unregister forgets a dropped ID', () => {
    const index = new CgroupIndex([HOST]);
    index.register('5', v1('/a'));
    index.register('5', v2('/b'));
    assert.equal(index.unregister('5'), 2);
    assert.equal(index.match(v1('/a')), null);
    assert.equal(index.register('7', v1('/a')).kind, 'registered', 'the cgroup may be reused');
  });
});
