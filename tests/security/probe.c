/*
 * A static probe for tests/hardening_test.ts, copied into a scratch rootfs
 * (busybox has no keyctl, and its set-uid handling drops privileges itself):
 *
 *   probe keys   keyctl, add_key and request_key: "name: OK" or "name: EPERM"
 *   probe ids    "ruid=R euid=E": made set-uid root, shows whether exec raised euid
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/keyctl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long result) {
  printf("%s: %s\n", name, result < 0 ? strerrorname_np(errno) : "OK");
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "keys") == 0) {
    report("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1));
    report("add_key", syscall(SYS_add_key, "user", "gcr-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING));
    report("request_key", syscall(SYS_request_key, "user", "gcr-probe", NULL, KEY_SPEC_PROCESS_KEYRING));
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "ids") == 0) {
    printf("ruid=%d euid=%d\n", (int)getuid(), (int)geteuid());
    return 0;
  }
  fprintf(stderr, "usage: probe keys|ids\n");
  return 2;
}
