/* Scenario e: run INSIDE the container (static), sends the text of FILE as
 * a user message of TYPE over raw NETLINK_AUDIT, as a forger would.
 * Usage: fx-forge TYPE FILE. Prints the kernel's ACK error. */
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  char text[8192];
  int fd = open(argv[2], O_RDONLY);
  if (fd < 0) return 3;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 4;
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\0')) n--;
  text[n++] = '\0';
  int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
  if (s < 0) return 5;
  char buf[NLMSG_SPACE(8192)];
  memset(buf, 0, sizeof buf);
  struct nlmsghdr *h = (struct nlmsghdr *)buf;
  h->nlmsg_len = NLMSG_LENGTH(n);
  h->nlmsg_type = (unsigned short)atoi(argv[1]);
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  h->nlmsg_seq = 1;
  memcpy(NLMSG_DATA(h), text, n);
  struct sockaddr_nl k = {.nl_family = AF_NETLINK};
  if (sendto(s, buf, h->nlmsg_len, 0, (struct sockaddr *)&k, sizeof k) < 0) return 6;
  char ack[1024];
  ssize_t r = recv(s, ack, sizeof ack, 0);
  if (r >= (ssize_t)NLMSG_LENGTH(sizeof(int)) && ((struct nlmsghdr *)ack)->nlmsg_type == NLMSG_ERROR)
    printf("fx-forge type=%s ack error=%d\n", argv[1], *(int *)NLMSG_DATA((struct nlmsghdr *)ack));
  return 0;
}
