/*
 * The setuid-root program of the control privilege tests: it stands for
 * `su` waiting at its prompt. Installed root-owned with mode 4755, so that
 * an unprivileged user who runs it gets euid 0 and every capability.
 *
 * usage: setuid-wait [FD]
 * Writes one byte to FD (when given) once it runs, then waits for a signal.
 */
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc > 1) {
    int fd = atoi(argv[1]);
    if (write(fd, "r", 1) != 1) return 1;
    close(fd);
  }
  for (;;) pause();
}
