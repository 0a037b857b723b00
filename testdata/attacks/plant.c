/* A process whose parent is a host process (a shim) plants a birth on it:
 * clone(CLONE_PARENT) makes a child of the shim, with this process's label,
 * that leaves at once by the raw exit syscall, never audited. Then it
 * signals the shim (SIGUSR1) and exits.
 * Usage: plant */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
  long c = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
  if (c == 0) syscall(SYS_exit, 0);
  kill(getppid(), SIGUSR1);
  return c > 0 ? 0 : 1;
}
