/*
 * sd_activate: starts a program the way systemd's socket activation does,
 * for tests/install/systemd_socket_activation.sh.
 *
 *   sd_activate [--fds N] [--wrong-pid] [--no-listen] [--no-fd] SOCKET PROGRAM [ARG ...]
 *
 * Binds the Unix socket SOCKET (mode 0600), listens on it, puts it on fd 3,
 * sets LISTEN_FDS=1, LISTEN_PID to its own pid and LISTEN_FDNAMES, and execs
 * PROGRAM in the same process, as systemd does in the child it forks: the
 * program's pid is the pid LISTEN_PID names. The options pass what a
 * misconfigured manager might instead: N sockets (the others at SOCKET.2,
 * SOCKET.3, ...), a LISTEN_PID that is not the program's, a socket that does
 * not listen, or LISTEN_FDS=1 with nothing on fd 3.
 *
 * Exit status: 2 on a usage or set-up error; otherwise PROGRAM's.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define FIRST_FD 3 /* SD_LISTEN_FDS_START */
#define MAX_FDS  8
#define PARK_FD  100 /* sockets wait here while fds 3... are being filled */

static void fail(const char *what, const char *arg)
{
    fprintf(stderr, "sd_activate: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "",
            strerror(errno));
    exit(2);
}

static int make_socket(const char *path, bool do_listen)
{
    struct sockaddr_un sun;
    mode_t old;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        fail("bind", path);
    }
    strcpy(sun.sun_path, path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
        fail("socket", NULL);
    old = umask(0177);
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
        fail("bind", path);
    umask(old);
    if (do_listen && listen(fd, SOMAXCONN) != 0)
        fail("listen", path);
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"fds", required_argument, NULL, 'n'},
        {"wrong-pid", no_argument, NULL, 'w'},
        {"no-listen", no_argument, NULL, 'l'},
        {"no-fd", no_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    bool wrong_pid = false, do_listen = true, no_fd = false;
    char path[4096], value[64], names[MAX_FDS * 8];
    int nfds = 1, ch, i, fd;

    while ((ch = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            nfds = atoi(optarg);
            break;
        case 'w':
            wrong_pid = true;
            break;
        case 'l':
            do_listen = false;
            break;
        case 'f':
            no_fd = true;
            break;
        default:
            nfds = -1;
        }
    }
    if (nfds < 1 || nfds > MAX_FDS || argc - optind < 2) {
        fprintf(stderr, "usage: sd_activate [--fds N] [--wrong-pid] [--no-listen] [--no-fd] "
                        "SOCKET PROGRAM [ARG ...]\n");
        return 2;
    }

    names[0] = '\0';
    if (!no_fd) {
        for (i = 0; i < nfds; i++) {
            if (i == 0)
                snprintf(path, sizeof(path), "%s", argv[optind]);
            else
                snprintf(path, sizeof(path), "%s.%d", argv[optind], i + 1);
            fd = make_socket(path, do_listen);
            if (dup2(fd, PARK_FD + i) < 0)
                fail("dup2", NULL);
            close(fd);
            strcat(names, i == 0 ? "agent" : ":agent");
        }
        for (i = 0; i < nfds; i++) {
            /* dup2 leaves the new fd without FD_CLOEXEC: it survives exec. */
            if (dup2(PARK_FD + i, FIRST_FD + i) < 0)
                fail("dup2", NULL);
            close(PARK_FD + i);
        }
    } else {
        close(FIRST_FD);
        strcat(names, "agent");
    }

    snprintf(value, sizeof(value), "%d", nfds);
    setenv("LISTEN_FDS", value, 1);
    snprintf(value, sizeof(value), "%ld", (long)(wrong_pid ? getppid() : getpid()));
    setenv("LISTEN_PID", value, 1);
    setenv("LISTEN_FDNAMES", names, 1);
    execvp(argv[optind + 1], argv + optind + 1);
    fail("exec", argv[optind + 1]);
    return 2;
}
