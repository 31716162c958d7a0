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

#include <termios.h>
#include <string.h>

static struct termios CChatSys_saved_terminal;
static volatile sig_atomic_t CChatSys_terminal_fd = -1;

static void CChatSys_fatal_signal(int signal_number) {
    if (CChatSys_terminal_fd >= 0) tcsetattr(CChatSys_terminal_fd, TCSANOW, &CChatSys_saved_terminal);
    raise(signal_number);  // SA_RESETHAND restored the default action: die with the original signal
}

void CChatSys_restore_terminal_on_fatal_signals(int fd, const struct termios *saved) {
    memcpy(&CChatSys_saved_terminal, saved, sizeof CChatSys_saved_terminal);
    CChatSys_terminal_fd = fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = CChatSys_fatal_signal;
    action.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE};
    for (unsigned i = 0; i < sizeof fatal / sizeof fatal[0]; i++) sigaction(fatal[i], &action, NULL);
}
