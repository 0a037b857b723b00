/* A parent blocked in vfork: this process forks P; P creates X with
 * clone(CLONE_VFORK) and stays blocked until X exits, so no record of P
 * appears while X runs. X (whose records name ppid=P) runs PROGRAM, sleeps
 * SECONDS (longer than any hold of a provisional event), runs PROGRAM again
 * and exits; then P exits.
 * Usage: vblock SECONDS PROGRAM */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void run(const char *program) {
  pid_t y = fork();
  if (y == 0) {
    execl(program, program, (char *)NULL);
    _exit(127);
  }
  waitpid(y, NULL, 0);
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  pid_t p = fork();
  if (p == 0) {
    /* CLONE_VFORK without CLONE_VM: X has its own memory, P sleeps in clone. */
    long x = syscall(SYS_clone, CLONE_VFORK | SIGCHLD, 0, 0, 0, 0);
    if (x == 0) {
      run(argv[2]);
      struct timespec t = {atoi(argv[1]), 0};
      nanosleep(&t, NULL);
      run(argv[2]);
      _exit(0);
    }
    _exit(x > 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(p, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
