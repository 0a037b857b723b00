import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applySetting, parseConfigFile } from '../daemon/config.js';
import { parseSinkSpec, expandSpec, SinkSpecError } from './sink-spec.js';

describe('sink specs', () => {
  it('parses each kind with its options and defaults', () => {
    const file = parseSinkSpec(
      'file:/var/log/contid/containers/{contid}/audit.log;max-file-bytes=1024;mode=0640',
    );
    assert.equal(file.kind, 'file');
    assert.equal(file.target, '/var/log/contid/containers/{contid}/audit.log');
    assert.equal(file.format, 'text');
    assert.equal(file.maxFileBytes, 1024);
    assert.equal(file.mode, 0o640);
    const unix = parseSinkSpec('unix:/run/audispd_events;root=/proc/{pid}/root;queue-events=16');
    assert.equal(unix.format, 'plugin');
    assert.equal(unix.root, '/proc/{pid}/root');
    assert.equal(unix.queueEvents, 16);
    const remote = parseSinkSpec('remote:127.0.0.1:60;netns=/proc/{pid}/ns/net');
    assert.equal(remote.target, '127.0.0.1:60');
    assert.equal(remote.netns, '/proc/{pid}/ns/net');
  });

  it('expands templates from the container, top down, digits only', () => {
    const spec = parseSinkSpec('file:/c/{contid}/{id}.log;root=/proc/{pid}/root');
    const nested = expandSpec(spec, { chain: ['5', '42'], pid: 812 });
    assert.equal(nested.target, '/c/42/5/5.log');
    assert.equal(nested.root, '/proc/812/root');
    assert.equal(expandSpec(spec, { chain: ['42'], pid: 1 }).target, '/c/42/42.log');
  });

  const bad: [string, RegExp][] = [
    ['tcp:1.2.3.4:60', /expected file:PATH/],
    ['file:relative/audit.log', /must be absolute/],
    ['file:/a;bogus=1', /unknown option "bogus"/],
    ['file:/a;format=plugin', /format "plugin" is not one of text, json/],
    ['remote:host', /expected remote:HOST:PORT/],
    ['file:/{name}/a', /unknown template "\{name\}"/],
    ['file:/a;mode=999', /"mode" must be octal/],
    ['file:/a;queue-events=0', /"queue-events" must be a whole number/],
    ['file:/a\nb', /control characters/],
    ['remote:auditd.local:60;netns=/proc/1/ns/net', /the host must be an IP address/],
  ];
  for (const [text, why] of bad) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseSinkSpec(text),
        (e: unknown) => e instanceof SinkSpecError && e.code === 'ERR_BAD_SINK_SPEC' && why.test(e.message),
      );
    });
  }

  it('container-sink may be repeated in the config file; none clears it', () => {
    const config = parseConfigFile(
      'container-sink = file:/a/{contid}.log\ncontainer-sink = unix:/run/r.sock\n',
    );
    assert.deepEqual(
      config.containerSinks?.map((s) => s.kind),
      ['file', 'unix'],
    );
    const flags = {};
    applySetting(flags, 'container-sink', 'none', '--container-sink');
    assert.deepEqual(flags, { containerSinks: [] });
    assert.throws(
      () => parseConfigFile('container-sink = ftp:/x\n'),
      /Cannot use container-sink \(config line 1\): sink /,
    );
  });
});
