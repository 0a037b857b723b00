// Owners named by privileged callers (the OCI hook's `oci:<container id>`)
// and create-only sets: one tenant's hook cannot join or take another's ID.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MarkerCaller } from '../marker/format.js';
import type { ContainerOp } from './labeller.js';
import { ORCH, World } from '../../test/support/labeller-world.js';

/** The orchestrator (100) and its fresh children 101–104. */
function world(): World {
  const w = new World();
  w.seen(100, 1);
  for (const child of [101, 102, 103, 104]) {
    w.fork(100, child);
    w.seen(child, 100);
  }
  return w;
}

/** A set with the fields of a hook's (or an injecting orchestrator's) request. */
function set(
  w: World,
  pid: number,
  contid: string,
  extra: { owner?: string; create?: boolean },
  caller: MarkerCaller = ORCH,
): ContainerOp {
  const ops = w.marker({ op: 'set', pid, contid, caller, ...extra }).ops;
  assert.equal(ops.length, 1);
  return ops[0]!;
}

void describe('named owners and create-only sets', () => {
  void it('a create-only set of a live ID is refused with ENOTUNIQ, even by the same owner', () => {
    const w = world();
    assert.equal(set(w, 101, '91', { owner: 'oci:a', create: true }).errno, null);
    const op = set(w, 102, '91', { owner: 'oci:a', create: true });
    assert.equal(op.errno, 'ENOTUNIQ');
    assert.match(op.body, /^op=set opid=102 contid=91 old-contid=-1 .* res=0 errno=ENOTUNIQ$/);
    assert.equal(w.contid(102), null);
  });

  void it('a create-only set of an ID that is not live creates it', () => {
    const w = world();
    assert.equal(set(w, 101, '91', { create: true }).errno, null);
    assert.equal(w.contid(101), '91');
  });

  void it('another named owner, or the same uid and executable without the name, cannot join', () => {
    const w = world();
    set(w, 101, '91', { owner: 'oci:a', create: true });
    // Every hook run is the same uid running the same node: only the name differs.
    assert.equal(set(w, 102, '91', { owner: 'oci:b' }).errno, 'ENOTUNIQ');
    assert.equal(set(w, 103, '91', {}).errno, 'ENOTUNIQ');
    assert.equal(w.contid(102), null);
    assert.equal(w.contid(103), null);
  });

  void it('the named owner injects more processes into its live ID', () => {
    const w = world();
    set(w, 101, '91', { owner: 'oci:a', create: true });
    const op = set(w, 102, '91', { owner: 'oci:a' }, { ...ORCH, exe: '/usr/local/bin/contid' });
    assert.equal(op.errno, null);
    assert.equal(w.contid(102), '91');
  });

  void it('an ID created without a name is not joined by a named owner', () => {
    const w = world();
    set(w, 101, '7', {});
    assert.equal(set(w, 102, '7', { owner: 'oci:a' }).errno, 'ENOTUNIQ');
    assert.equal(set(w, 103, '7', {}).errno, null);
  });

  void it('naming an owner is privileged: a delegated caller is refused with EPERM', () => {
    const w = world();
    // 101 becomes container 2 and is granted; it forks 105.
    set(w, 101, '2', {});
    assert.equal(w.grant(101).errno, null);
    w.fork(101, 105, 100);
    w.seen(105, 101);
    const nested: MarkerCaller = {
      pid: 101,
      uid: 0,
      auid: 4294967295,
      exe: '/usr/bin/lxc',
      privileged: false,
    };
    assert.equal(set(w, 105, '5', { owner: 'oci:x' }, nested).errno, 'EPERM');
    assert.equal(set(w, 105, '5', {}, nested).errno, null);
    assert.equal(w.contid(105), '5,^2');
  });
});
