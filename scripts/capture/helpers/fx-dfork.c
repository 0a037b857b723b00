/* Scenario a: a double fork whose grandchild makes its first audited
 * syscall (execve) only after its parent has exited, so its records show
 * ppid=1. Usage: fx-dfork PROGRAM */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  pid_t c = fork();
  if (c == 0) {
    usleep(300000); /* not audited: the parent exits meanwhile */
    const char *name = strrchr(argv[1], '/');
    execl(argv[1], name ? name + 1 : argv[1], (char *)NULL);
    _exit(127);
  }
  _exit(c > 0 ? 0 : 1);
}
