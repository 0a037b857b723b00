import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CONTID_UNSET, makeContainer, parseContid, renderChain, renderRequested } from './contid.js';
import { renderContainerId, renderContainerOp, renderUntrusted } from './records.js';

void describe('contid values and records', () => {
  const values: [string, bigint | null][] = [
    ['0', 0n],
    ['4515122123205246976', 4515122123205246976n],
    ['18446744073709551615', CONTID_UNSET],
    ['18446744073709551616', null],
    ['-1', null],
    ['+4', null],
    ['', null],
    ['4 ', null],
  ];
  for (const [text, value] of values) {
    void it(`parses "${text}" as ${value ?? 'invalid'}`, () => {
      assert.equal(parseContid(text), value);
    });
  }

  void it('renders the unset value as -1 and invalid values as ?', () => {
    assert.equal(renderRequested('18446744073709551615'), '-1');
    assert.equal(renderRequested('x'), '?');
  });

  void it('renders chains leaf to root with ,^', () => {
    const owner = { uid: 0, exe: '/x', container: null, name: null };
    const one = makeContainer(1n, null, owner);
    const two = makeContainer(2n, one, owner);
    const four = makeContainer(4n, two, owner);
    assert.equal(four.rendered, '4,^2,^1');
    assert.deepEqual(four.chain, ['4', '2', '1']);
    assert.equal(renderChain(['7']), '7');
    assert.equal(renderContainerId(1, four.rendered), 'record=1 contid=4,^2,^1');
  });

  void it('renders untrusted strings like the kernel: quoted, or hex when unsafe', () => {
    assert.equal(renderUntrusted('/usr/bin/runc'), '"/usr/bin/runc"');
    assert.equal(renderUntrusted('/tmp/a b'), '2F746D702F612062');
    assert.equal(renderUntrusted('/tmp/"q'), '2F746D702F2271');
  });

  void it('renders a refused CONTAINER_OP with res=0 and the errno', () => {
    assert.equal(
      renderContainerOp({
        op: 'set',
        opid: 9069,
        contid: '123456',
        oldContid: '-1',
        caller: { pid: 8724, uid: 0, auid: null, exe: null },
        errno: 'ENOTUNIQ',
      }),
      'op=set opid=9069 contid=123456 old-contid=-1 pid=8724 uid=0 auid=? exe=? res=0 errno=ENOTUNIQ',
    );
  });
});
