/*
 * A control-socket client that hands its connection to a child and then
 * executes another program, as an attacker would to borrow that program's
 * privilege: it connects, forks, and the process that connected execs
 * HELPER (a setuid-root program that waits); the child then sends REQUEST
 * on the inherited connection and prints the answer line.
 *
 * usage: connect-fork-exec SOCKET HELPER early|late REQUEST
 *   early  exec right after connect(), before the server may have looked
 *   late   first send {"op":"status"} and read its answer (printed with
 *          the prefix "first "), so the server has identified the caller
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Reads one line from fd into buf (NUL-terminated, newline kept). */
static int read_line(int fd, char *buf, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    ssize_t r = read(fd, buf + n, 1);
    if (r <= 0) break;
    n++;
    if (buf[n - 1] == '\n') break;
  }
  buf[n] = 0;
  return (int)n;
}

static int write_all(int fd, const char *text) {
  size_t len = strlen(text);
  while (len > 0) {
    ssize_t w = write(fd, text, len);
    if (w <= 0) return -1;
    text += w;
    len -= (size_t)w;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: connect-fork-exec SOCKET HELPER early|late REQUEST\n");
    return 2;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  strncpy(address.sun_path, argv[1], sizeof address.sun_path - 1);
  if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
    perror("connect");
    return 1;
  }
  char line[65536];
  if (strcmp(argv[3], "late") == 0) {
    if (write_all(fd, "{\"op\":\"status\"}\n") != 0) return 1;
    read_line(fd, line, sizeof line);
    printf("first %s", line);
    fflush(stdout);
  }
  int ready[2];
  if (pipe(ready) != 0) return 1;
  pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    /* Wait until the process that connected runs the helper. */
    close(ready[1]);
    char byte;
    if (read(ready[0], &byte, 1) != 1) return 1;
    size_t len = strlen(argv[4]);
    char *request = malloc(len + 2);
    memcpy(request, argv[4], len);
    request[len] = '\n';
    request[len + 1] = 0;
    if (write_all(fd, request) != 0) return 1;
    read_line(fd, line, sizeof line);
    printf("answer %s", line);
    return 0;
  }
  close(ready[0]);
  char fdtext[16];
  snprintf(fdtext, sizeof fdtext, "%d", ready[1]);
  execl(argv[2], argv[2], fdtext, (char *)NULL);
  perror("execl");
  return 1;
}
