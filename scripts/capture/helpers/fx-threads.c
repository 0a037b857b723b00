/* Scenario b: a process that, once labelled, makes threads (pthread_create:
 * clone3; raw clone with CLONE_THREAD), forks from a thread, and spawns a
 * process with posix_spawn (clone3 too). Usage: fx-threads BINDIR FIFO PIDFILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static const char *bindir;
static volatile int raw_done;

static void run(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", bindir, name);
  execl(path, name, (char *)NULL);
  _exit(127);
}

static void *worker(void *arg) {
  long n = (long)arg;
  kill(getpid(), 0); /* an audited syscall made by a thread: pid= is the tgid */
  if (n == 1) {
    pid_t c = fork(); /* a process forked by a thread: its ppid is the tgid */
    if (c == 0) run("fx-tchild");
    waitpid(c, NULL, 0);
  }
  return NULL;
}

static int raw_thread(void *arg) {
  (void)arg;
  kill(getpid(), 0);
  raw_done = 1;
  syscall(SYS_exit, 0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  bindir = argv[1];
  FILE *f = fopen(argv[3], "w");
  fprintf(f, "%d\n", getpid());
  fclose(f);
  int fd = open(argv[2], O_RDONLY); /* wait for the label */
  char b;
  if (read(fd, &b, 1) != 1) return 3;
  close(fd);
  kill(getpid(), 0);
  pthread_t t[3];
  for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  char *stack = malloc(1 << 16);
  if (clone(raw_thread, stack + (1 << 16),
            CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM, NULL) < 0)
    return 4;
  while (!raw_done) usleep(1000);
  usleep(20000);
  char path[512];
  snprintf(path, sizeof path, "%s/fx-spawned", bindir);
  char *args[] = {"fx-spawned", NULL};
  pid_t s;
  if (posix_spawn(&s, path, NULL, NULL, args, environ) != 0) return 5;
  waitpid(s, NULL, 0);
  kill(getpid(), 0);
  return 0;
}
