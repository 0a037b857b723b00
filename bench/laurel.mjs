// The Laurel configuration every benchmark gives Laurel (run.mjs reads a log through it,
// exec-cpu.mjs runs it as auditd's plugin): a private directory, so it never reads /etc/laurel
// nor writes /var/log/laurel; no `user` key, so it does not drop privileges; and the enrichment
// and label propagation that roughly match what contid does per event (bench/README.md).

/**
 * Laurel's config.toml. `directory`: its working directory; `auditlog`: the `[auditlog]` keys
 * (`file`, and for a plugin `size`, `generations`); `statusreportPeriod`: seconds, when given.
 */
export function laurelConfig({ directory, auditlog, statusreportPeriod }) {
  const log = Object.entries(auditlog).map(
    ([k, v]) => `${k} = ${typeof v === 'number' ? v : JSON.stringify(v)}`,
  );
  return `directory = "${directory}"
${statusreportPeriod === undefined ? '' : `statusreport-period = ${statusreportPeriod}\n`}[auditlog]
${log.join('\n')}
[translate]
universal = true
user-db = true
[enrich]
pid = true
container = true
script = true
[label-process]
label-keys = [ "contid-bench" ]
propagate-labels = [ "contid-bench" ]
`;
}
