/* Scenario c: once labelled, vfork+exec, vfork+_exit (no exec), raw fork
 * (syscall 57), posix_spawn (clone3 CLONE_VM|CLONE_VFORK).
 * Usage: fx-vfork BINDIR FIFO PIDFILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  char p1[512], p2[512], p3[512];
  snprintf(p1, sizeof p1, "%s/fx-vchild1", argv[1]);
  snprintf(p2, sizeof p2, "%s/fx-vchild2", argv[1]);
  snprintf(p3, sizeof p3, "%s/fx-vchild3", argv[1]);
  FILE *f = fopen(argv[3], "w");
  fprintf(f, "%d\n", getpid());
  fclose(f);
  int fd = open(argv[2], O_RDONLY);
  char b;
  if (read(fd, &b, 1) != 1) return 3;
  close(fd);
  kill(getpid(), 0);
  pid_t c = vfork();
  if (c == 0) {
    execl(p1, "fx-vchild1", (char *)NULL);
    _exit(127);
  }
  waitpid(c, NULL, 0);
  c = vfork();
  if (c == 0) _exit(0); /* exit_group from a vfork child that never execs */
  waitpid(c, NULL, 0);
  c = (pid_t)syscall(SYS_fork);
  if (c == 0) {
    execl(p2, "fx-vchild2", (char *)NULL);
    _exit(127);
  }
  waitpid(c, NULL, 0);
  char *args[] = {"fx-vchild3", NULL};
  if (posix_spawn(&c, p3, NULL, NULL, args, environ) != 0) return 5;
  waitpid(c, NULL, 0);
  kill(getpid(), 0);
  return 0;
}
