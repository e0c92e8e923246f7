/*
 * stdio_bridge: a socat-free stand-in for
 *
 *     socat UNIX-LISTEN:SOCKET,fork EXEC:"COMMAND ..."
 *
 * for the stdin/stdout tests of keyward-relay (tests/relay/stdio.sh).
 *
 *   stdio_bridge [-p] -l SOCKET -s STATUS_FILE -- COMMAND [ARG...]
 *
 * For every client that connects to SOCKET it runs COMMAND with stdin and
 * stdout connected to the bridge by one socketpair (socat's default) or,
 * with -p, by two pipes (what a Windows program started from WSL gets),
 * and copies bytes both ways. When the client closes, the command's stdin
 * ends (the pipe is closed, or the socketpair shut down for writing); when
 * the command's stdout ends, the client's connection is shut down for
 * writing. COMMAND's stderr is the bridge's.
 *
 * When a command has exited, one line goes to STATUS_FILE:
 *     client N: exit S, M ms after the client closed
 *     client N: exit S before the client closed
 *     client N: killed: still running 10 s after the client closed
 * so a test can see that closing stdin ends the command, and how soon.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_GRACE_MS 10000

static bool use_pipes;
static const char *status_path;
static char **command;

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void status_line(const char *line)
{
    int fd = open(status_path, O_WRONLY | O_APPEND | O_CREAT, 0600);

    if (fd < 0)
        return;
    /* One write with O_APPEND: lines of concurrent clients never mix. */
    if (write(fd, line, strlen(line)) < 0)
        perror("stdio_bridge: status file");
    close(fd);
}

static int write_all(int fd, const char *p, size_t n)
{
    ssize_t w;

    while (n > 0) {
        w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static pid_t spawn(int in_fd, int out_fd, int *close_fds, int nclose)
{
    pid_t pid = fork();
    int i;

    if (pid != 0)
        return pid;
    if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0)
        _exit(127);
    for (i = 0; i < nclose; i++)
        close(close_fds[i]);
    signal(SIGPIPE, SIG_DFL);
    execvp(command[0], command);
    perror(command[0]);
    _exit(127);
}

/* One client: run the command and copy until both directions have ended. */
static void serve(int client, int n)
{
    char buf[65536], line[256];
    int sp[2], in[2], out[2], to_cmd, from_cmd, st, timeout;
    bool client_eof = false, cmd_eof = false;
    long long closed_at = -1;
    struct pollfd p[2];
    ssize_t got;
    pid_t pid;

    if (use_pipes) {
        if (pipe(in) != 0 || pipe(out) != 0)
            _exit(1);
        int others[] = {in[0], in[1], out[0], out[1], client};
        pid = spawn(in[0], out[1], others, 5);
        close(in[0]);
        close(out[1]);
        to_cmd = in[1];
        from_cmd = out[0];
    } else {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0)
            _exit(1);
        int others[] = {sp[0], sp[1], client};
        pid = spawn(sp[1], sp[1], others, 3);
        close(sp[1]);
        to_cmd = from_cmd = sp[0];
    }
    if (pid < 0)
        _exit(1);

    while (!client_eof || !cmd_eof) {
        p[0].fd = client_eof ? -1 : client;
        p[0].events = POLLIN;
        p[1].fd = cmd_eof ? -1 : from_cmd;
        p[1].events = POLLIN;
        timeout = -1;
        if (closed_at >= 0) {
            timeout = (int)(closed_at + EXIT_GRACE_MS - now_ms());
            if (timeout <= 0)
                break;
        }
        if (poll(p, 2, timeout) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents != 0) {
            got = read(client, buf, sizeof(buf));
            if (got <= 0) {
                client_eof = true;
                closed_at = now_ms();
                if (use_pipes)
                    close(to_cmd);
                else
                    shutdown(to_cmd, SHUT_WR);
            } else {
                (void)write_all(to_cmd, buf, (size_t)got);
            }
        }
        if (p[1].revents != 0) {
            got = read(from_cmd, buf, sizeof(buf));
            if (got <= 0) {
                cmd_eof = true;
                shutdown(client, SHUT_WR);
            } else {
                (void)write_all(client, buf, (size_t)got);
            }
        }
    }
    /* Wait for the command, at most EXIT_GRACE_MS after the client closed. */
    for (;;) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            st = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            if (closed_at >= 0)
                snprintf(line, sizeof(line),
                         "client %d: exit %d, %lld ms after the client closed\n", n, st,
                         now_ms() - closed_at);
            else
                snprintf(line, sizeof(line), "client %d: exit %d before the client closed\n", n,
                         st);
            break;
        }
        if (closed_at >= 0 && now_ms() - closed_at > EXIT_GRACE_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            snprintf(line, sizeof(line),
                     "client %d: killed: still running %d s after the client "
                     "closed\n",
                     n, EXIT_GRACE_MS / 1000);
            break;
        }
        usleep(10000);
    }
    status_line(line);
    close(client);
    _exit(0);
}

int main(int argc, char **argv)
{
    struct sockaddr_un sun;
    const char *path = NULL;
    int ch, lfd, client, n = 0;

    while ((ch = getopt(argc, argv, "+pl:s:")) != -1) {
        switch (ch) {
        case 'p':
            use_pipes = true;
            break;
        case 'l':
            path = optarg;
            break;
        case 's':
            status_path = optarg;
            break;
        default:
            goto usage;
        }
    }
    command = argv + optind;
    if (path == NULL || status_path == NULL || *command == NULL)
        goto usage;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path))
        goto usage;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    if ((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
        bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(lfd, 16) != 0) {
        perror(path);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_IGN); /* the per-client processes reap themselves */
    for (;;) {
        if ((client = accept(lfd, NULL, NULL)) < 0) {
            if (errno == EINTR)
                continue;
            perror("accept");
            return 1;
        }
        n++;
        switch (fork()) {
        case -1:
            perror("fork");
            close(client);
            break;
        case 0:
            close(lfd);
            signal(SIGCHLD, SIG_DFL); /* so that serve() can wait for its command */
            serve(client, n);
            break;
        default:
            close(client);
        }
    }
usage:
    fprintf(stderr, "usage: %s [-p] -l SOCKET -s STATUS_FILE -- COMMAND [ARG...]\n", argv[0]);
    return 2;
}
