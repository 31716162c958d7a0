// CChatSys: the C shim. It exposes to Swift the kernel interfaces Glibc's module map leaves out
// (epoll, eventfd, timerfd, signalfd) and libsystemd's sd-daemon API. Nothing here decides anything.
#ifndef CCHATSYS_H
#define CCHATSYS_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <termios.h>
#include <stdint.h>
#include <stddef.h>

// accept4 is declared only under _GNU_SOURCE, which the cSettings define does not pass to Swift's
// importer: forward it so Swift can accept with SOCK_NONBLOCK|SOCK_CLOEXEC in one call.
int CChatSys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

// pipe2 is _GNU_SOURCE-only for the same reason (used by tests and the client for self-pipes).
int CChatSys_pipe2(int fds[2], int flags);

// libsystemd's sd-daemon.h is wrapped rather than included so Swift sees plain C prototypes and the
// rest of the package does not need libsystemd's headers on its include path.
int CChatSys_sd_notify(int unset_environment, const char *state);
int CChatSys_sd_listen_fds_with_names(int unset_environment, char ***names);
int CChatSys_sd_watchdog_enabled(int unset_environment, uint64_t *usec);
int CChatSys_sd_is_socket_inet(int fd, int family, int type, int listening, uint16_t port);

// SD_LISTEN_FDS_START is a macro; Swift cannot import its value reliably through the module.
extern const int CChatSys_SD_LISTEN_FDS_START;

// The two epoll_data fields chatd uses, so Swift never has to touch the packed union.
static inline uint64_t CChatSys_epoll_event_u64(const struct epoll_event *event) { return event->data.u64; }
static inline uint32_t CChatSys_epoll_event_events(const struct epoll_event *event) { return event->events; }

// The client's crash path: a fatal-signal handler that only puts the saved terminal attributes back and
// re-raises. It lives in C because a signal handler must be async-signal-safe (tcsetattr is); a Swift
// closure may touch the runtime (lazy globals, reference counting), which is not.
void CChatSys_restore_terminal_on_fatal_signals(int fd, const struct termios *saved);

#endif
