// One-line forwards for what Swift cannot reach directly; see CChatSys.h for why each exists.
#include "CChatSys.h"
#include <unistd.h>
#include <fcntl.h>
#include <systemd/sd-daemon.h>

_Static_assert(sizeof(struct iovec) == 2 * sizeof(void *), "iovec is a pointer and a length");

const int CChatSys_SD_LISTEN_FDS_START = SD_LISTEN_FDS_START;

int CChatSys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) { return accept4(fd, addr, len, flags); }
int CChatSys_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int CChatSys_sd_notify(int unset_environment, const char *state) { return sd_notify(unset_environment, state); }
int CChatSys_sd_listen_fds_with_names(int unset_environment, char ***names) {
    return sd_listen_fds_with_names(unset_environment, names);
}
int CChatSys_sd_watchdog_enabled(int unset_environment, uint64_t *usec) { return sd_watchdog_enabled(unset_environment, usec); }
int CChatSys_sd_is_socket_inet(int fd, int family, int type, int listening, uint16_t port) {
    return sd_is_socket_inet(fd, family, type, listening, port);
}
