/* A host shim: spawns a child that waits until FIFO can be read (the test
 * labels it meanwhile) and execs CHILD; waits for SIGUSR1 from it, then
 * spawns PROGRAM as runc would be (the shim blocked as in vfork): the
 * records of the spawned child come before the shim's own clone record.
 * Usage: shim FIFO CHILD PROGRAM */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static volatile sig_atomic_t planted;

static void on_usr1(int sig) {
  (void)sig;
  planted = 1;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  signal(SIGUSR1, on_usr1);
  /* posix_spawn (clone3, as runtimes start processes): the record does not
   * show the child's pid namespace, so its own clones are judged as those
   * of a process that may be in a container's namespace. */
  pid_t c;
  char *child[] = {"/bin/sh", "-c", "read _ < \"$0\"; exec \"$1\"", argv[1], argv[2], NULL};
  if (posix_spawn(&c, "/bin/sh", NULL, NULL, child, environ) != 0) return 3;
  while (!planted) pause();
  waitpid(c, NULL, 0);
  /* As vfork, without sharing memory: the shim sleeps in clone until the
   * child execs. The child's failed exec is its first record, certainly
   * before the shim's clone record. */
  long r = syscall(SYS_clone, CLONE_VFORK | SIGCHLD, 0, 0, 0, 0);
  if (r == 0) {
    execl("/nonexistent/runc", "runc", (char *)NULL);
    execl(argv[3], argv[3], (char *)NULL);
    _exit(127);
  }
  int status = 0;
  waitpid((pid_t)r, &status, 0);
  while (waitpid(-1, NULL, 0) > 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
