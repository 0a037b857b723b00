/* Leaves by the raw exit syscall (60), which the audit rules do not cover:
 * the process ends without an exit_group record.
 * Usage: rawexit */
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
  syscall(SYS_exit, 0);
  return 1;
}
