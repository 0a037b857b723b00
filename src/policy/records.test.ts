import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CONTID_UNSET, makeContainer, parseContid, renderChain, renderRequested } from './contid.js';
import { splitFields } from '../parse/fields.js';
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

  void it("writes a set's name and metadata between the caller and the result, quoted or hex", () => {
    const caller = { pid: 8724, uid: 0, auid: 4294967295, exe: '/usr/bin/crun' };
    const base = { op: 'set', opid: 8730, contid: '42', oldContid: '-1', caller } as const;
    assert.equal(
      renderContainerOp({
        ...base,
        errno: null,
        name: 'web',
        meta: { image: 'nginx:1.27', note: 'two words' },
      }),
      'op=set opid=8730 contid=42 old-contid=-1 pid=8724 uid=0 auid=4294967295 exe="/usr/bin/crun" ' +
        'name="web" meta.image="nginx:1.27" meta.note=74776F20776F726473 res=1',
    );
    assert.equal(
      renderContainerOp({ ...base, errno: 'ENOTUNIQ', name: 'db' }),
      'op=set opid=8730 contid=42 old-contid=-1 pid=8724 uid=0 auid=4294967295 exe="/usr/bin/crun" ' +
        'name="db" res=0 errno=ENOTUNIQ',
    );
  });

  const HOSTILE = [
    'a\nb',
    'x" res=0 errno=EPERM "',
    "' pid=1 msg='",
    'type=CONTAINER_ID msg=audit(1.000:1): record=1 contid=31337',
    'ünï 🐳\u2028\u0085',
    '\x1dUID="root"',
    '',
  ];
  for (const text of HOSTILE) {
    void it(`a name or metadata value ${JSON.stringify(text)} stays one field of one line`, () => {
      const body = renderContainerOp({
        op: 'set',
        opid: 1,
        contid: '4',
        oldContid: '-1',
        caller: { pid: 2, uid: 0, auid: 0, exe: '/x' },
        errno: null,
        ...(text === '' ? {} : { name: text }),
        meta: { k: text, 'a/b.c': text },
      });
      assert.match(body, /^[\x21-\x7e ]+$/);
      const names: string[] = [];
      const values: string[] = [];
      splitFields(body, names, values);
      assert.deepEqual(names, [
        ...['op', 'opid', 'contid', 'old-contid', 'pid', 'uid', 'auid', 'exe'],
        ...(text === '' ? [] : ['name']),
        ...['meta.k', 'meta.a/b.c', 'res'],
      ]);
      const decoded = (raw: string): string =>
        raw.startsWith('"') ? raw.slice(1, -1) : Buffer.from(raw, 'hex').toString('utf8');
      assert.equal(decoded(values[names.indexOf('meta.k')]!), text);
      if (text !== '') assert.equal(decoded(values[names.indexOf('name')]!), text);
    });
  }
});
