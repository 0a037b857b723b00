/* A threaded process whose threads each fork and exec PROGRAM: the forks
 * are recorded with the process's pid (the tgid), the threads themselves as
 * clone3 or CLONE_THREAD clones.
 * Usage: threads N PROGRAM */
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *program;

static void *run(void *arg) {
  (void)arg;
  pid_t c = fork();
  if (c == 0) {
    execl(program, program, (char *)NULL);
    _exit(127);
  }
  waitpid(c, NULL, 0);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  int n = atoi(argv[1]);
  program = argv[2];
  pthread_t t[16];
  if (n < 1 || n > 16) return 2;
  for (int i = 0; i < n; i++)
    if (pthread_create(&t[i], NULL, run, NULL) != 0) return 3;
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  return 0;
}
