/* A nested orchestrator inside a container that shares the host's pid
 * namespace: once granted (GOFIFO can be read), it forks a child, asks the
 * daemon (SOCKET, newline-delimited JSON) to label a process outside its
 * tree (OTHER: refused) and then its child with CONTID, prints both answers,
 * and lets the child exec PROGRAM ARGS.
 * Usage: ctl SOCKET GOFIFO PIDFILE OTHER CONTID PROGRAM ARGS... */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 7) return 2;
  FILE *f = fopen(argv[3], "w");
  if (f == NULL) return 3;
  fprintf(f, "%d\n", getpid());
  fclose(f);
  int go = open(argv[2], O_RDONLY);
  char b;
  if (go < 0 || read(go, &b, 1) != 1) return 4;
  close(go);
  int p[2];
  if (pipe(p) != 0) return 5;
  pid_t c = fork();
  if (c == 0) {
    close(p[1]);
    if (read(p[0], &b, 1) != 1) _exit(6);
    execv(argv[6], &argv[6]);
    _exit(127);
  }
  close(p[0]);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) return 7;
  char req[512];
  int n = snprintf(req, sizeof req,
                   "{\"op\":\"set\",\"pid\":%s,\"contid\":\"6\",\"id\":\"other\"}\n"
                   "{\"op\":\"set\",\"pid\":%d,\"contid\":\"%s\",\"id\":\"child\"}\n",
                   argv[4], (int)c, argv[5]);
  if (write(s, req, (size_t)n) != n) return 8;
  char buf[4096];
  size_t got = 0;
  int lines = 0;
  while (lines < 2 && got < sizeof buf - 1) {
    ssize_t r = read(s, buf + got, sizeof buf - 1 - got);
    if (r <= 0) break;
    for (ssize_t i = 0; i < r; i++)
      if (buf[got + (size_t)i] == '\n') lines++;
    got += (size_t)r;
  }
  close(s);
  fwrite(buf, 1, got, stdout);
  fflush(stdout);
  if (write(p[1], "g", 1) != 1) return 9;
  int status = 0;
  waitpid(c, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 10;
}
