/* The thread group leader calls pthread_exit; the remaining thread then
 * kills the group with SIGKILL: no exit_group record, and the leader's own
 * exit was reported long before the group died.
 * Usage: leaderexit MILLISECONDS */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long ms;

static void *worker(void *arg) {
  (void)arg;
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
  kill(getpid(), SIGKILL);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  ms = atol(argv[1]);
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 3;
  pthread_exit(NULL);
}
