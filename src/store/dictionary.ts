/**
 * The preset dictionary stored payloads are deflated with: the text that
 * recurs in audit records (field names in the kernel's order, common
 * values, auditd's enriched part, contid's own records). A single event is
 * a few hundred bytes, too short for deflate to find much repetition in
 * itself; with this it compresses about twice as well (docs/store.md).
 *
 * Payloads written with it name it by their codec byte (payload.ts): this
 * text must never change. A better dictionary is a new codec.
 */
const TEXT = [
  'type=CONTID_FORGERY msg=audit(: reason=wrong-sender pid= uid=0 auid=4294967295 contid=-1 start=? record=1\n',
  'type=CONTAINER_OP msg=audit(: op=drop opid= contid=-1 old-contid= pid= uid=0 auid= exe="/usr/bin/crun" res=1\n',
  'type=CONTAINER_OP msg=audit(: op=set opid= contid= old-contid=-1 pid= uid=0 auid=4294967295 exe="/usr/bin/runc" res=0 errno=EBUSY\n',
  'type=USER_START msg=audit(: pid= uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg=\'op=PAM:session_open grantors=pam_unix acct="root" exe="/usr/sbin/cron" hostname=? addr=? terminal=cron res=success\'\x1dUID="root" AUID="unset"\n',
  'type=SOCKADDR msg=audit(: saddr=020000507F0000010000000000000000\x1dSADDR={ saddr_fam=inet laddr=127.0.0.1 lport=80 }\n',
  'type=SOCKADDR msg=audit(: saddr=0100\x1dSADDR={ saddr_fam=local path= }\n',
  'type=OBJ_PID msg=audit(: opid= oauid=4294967295 ouid=0 oses=4294967295 obj=unconfined ocomm=""\x1dOAUID="unset" OUID="root"\n',
  'type=BPRM_FCAPS msg=audit(: fver=0 fp=0 fi=0 fe=0 old_pp=000001fffeffffff old_pi=0 old_pe=000001fffeffffff old_pa=0 pp=000001fffeffffff pi=0 pe=000001fffeffffff pa=0 frootid=0\n',
  'type=PATH msg=audit(: item=1 name="/lib64/ld-linux-x86-64.so.2" inode= dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID="root" OGID="root"\n',
  'type=PATH msg=audit(: item=0 name="/usr/bin/" inode= dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=CREATE cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID="root" OGID="root"\n',
  'type=PATH msg=audit(: item=0 name="/bin/sh" inode= dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID="root" OGID="root"\n',
  'type=CWD msg=audit(: cwd="/"\n',
  'type=EXECVE msg=audit(: argc=3 a0="/bin/sh" a1="-c" a2=\n',
  'type=SYSCALL msg=audit(: arch=c000003e syscall=257 success=no exit=-2 a0=ffffff9c a1= a2=0 a3=0 items=1 ppid= pid= auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="" exe="/usr/bin/" subj=unconfined key=(null)\x1dARCH=x86_64 SYSCALL=openat AUID="unset" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"\n',
  'type=SYSCALL msg=audit(: arch=c00000b7 syscall=221 success=yes exit=0 a0= a1= a2= a3= items=2 ppid= pid= auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses= comm="" exe="/bin/busybox" key=(null)\x1dARCH=aarch64 SYSCALL=execve AUID="unset" UID="root" GID="root"\n',
  'type=SYSCALL msg=audit(: arch=c000003e syscall=231 a0=0 a1=e7 a2=3c a3= items=0 ppid= pid= auid=4242 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses= comm="sh" exe="/usr/bin/dash" key=(null)\x1dARCH=x86_64 SYSCALL=exit_group AUID="unset" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"\n',
  'type=SYSCALL msg=audit(: arch=c000003e syscall=56 success=yes exit= a0=1200011 a1=0 a2=0 a3= items=0 ppid= pid= auid=4242 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses= comm="bash" exe="/usr/bin/bash" key=(null)\x1dARCH=x86_64 SYSCALL=clone AUID="unset" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"\n',
  'type=CONTAINER_ID msg=audit(: record=1 contid=\n',
  'type=PROCTITLE msg=audit(: proctitle=2F62696E2F7368002D63\n',
  'type=SYSCALL msg=audit(: arch=c000003e syscall=59 success=yes exit=0 a0= a1= a2= a3= items=2 ppid= pid= auid=4242 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses= comm="" exe="/usr/bin/" key=(null)\x1dARCH=x86_64 SYSCALL=execve AUID="unknown(4242)" UID="root" GID="root" EUID="root" SUID="root" FSUID="root" EGID="root" SGID="root" FSGID="root"\n',
].join('');

/** The dictionary's bytes. */
export const AUDIT_DICTIONARY: Buffer = Buffer.from(TEXT, 'latin1');
