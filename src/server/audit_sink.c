/*
 * keyward: the audit log's file, written by a thread of its own (Unix;
 * keyward-agent.exe writes its own, see tools/keyward-agent-win.c). See
 * audit_sink.h.
 */
#include "server/audit_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

/* An audit-lost line, and a newline that ends a partial line left before. */
#define AUDIT_LOST_MAX 160

/* A condition variable whose timed waits use the monotonic clock. */
static void cond_init(pthread_cond_t *c)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}
/* Waits at most ms (or for ever if ms < 0); the mutex is held around it. */
static void cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, long ms)
{
    struct timespec ts;

    if (ms < 0) {
        pthread_cond_wait(c, m);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(c, m, &ts);
}
static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct audit_line {
    struct audit_line *next;
    size_t len; /* with its newline */
    char text[];
};

struct audit_sink {
    char *path; /* for messages */
    int fd;
    bool regular; /* a partial line can be cut off again */

    /* Shared by the event loop and the writer: under lock. */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the writer: a line is queued, or stop */
    pthread_cond_t done_cond;
    struct audit_line *head, *tail;
    size_t queued, queued_bytes;
    unsigned long dropped;     /* for the next audit-lost line */
    unsigned long drop_streak; /* dropped since an event last fit: for the agent's log */
    uint64_t stop_deadline;    /* when stopping: give up on a stuck sink at this time */
    bool stop;
    bool done; /* the writer has finished */
    bool started;
    pthread_t thread;

    /* The writer's own. */
    unsigned long lost_dropped; /* taken from dropped, not yet reported in the log */
    unsigned long failed;       /* events not written since a line last was */
    int fail_err;               /* the error that is losing them, logged once */
    bool partial;               /* a partial line is left: start the next on a line of its own */
    char buf[AUDIT_LOST_MAX + AUDIT_LINE_MAX];
};

static void sink_free(struct audit_sink *s)
{
    struct audit_line *l;

    while ((l = s->head) != NULL) {
        s->head = l->next;
        free(l);
    }
    if (s->fd >= 0)
        close(s->fd);
    free(s->path);
    free(s);
}

int audit_sink_open(struct audit_sink **out, const char *path, char *err, size_t errsize)
{
    struct audit_sink *s;
    struct stat st;
    int e;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    if (strcmp(path, "-") == 0) {
        free(s->path);
        s->path = strdup("standard error");
#ifdef F_DUPFD_CLOEXEC
        s->fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
#else
        s->fd = dup(STDERR_FILENO);
#endif
        if (s->fd < 0 || s->path == NULL) {
            snprintf(err, errsize, "cannot use stderr for the audit log: %s",
                     s->fd < 0 ? strerror(errno) : "out of memory");
            sink_free(s);
            return -1;
        }
    } else {
        /*
         * Created 0600 (whatever the umask says), appended to, never a
         * symlink. O_NONBLOCK: opening a FIFO with no reader fails (ENXIO)
         * rather than waiting for one; a FIFO stays non-blocking, and the
         * writer waits for it with poll().
         */
        s->fd = open(path,
                     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK,
                     0600);
        if (s->fd < 0) {
            e = errno;
#ifdef S_ISFIFO
            if (e == ENXIO && stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
                snprintf(err, errsize,
                         "cannot open audit log %s: it is a FIFO that no process has open for "
                         "reading; start its reader first",
                         path);
            else
#endif
                snprintf(err, errsize, "cannot open audit log %s: %s", path, strerror(e));
            sink_free(s);
            return -1;
        }
    }
    if (fstat(s->fd, &st) != 0) {
        snprintf(err, errsize, "cannot use audit log %s: %s", s->path, strerror(errno));
        sink_free(s);
        return -1;
    }
    s->regular = S_ISREG(st.st_mode);
    /* Standard error is whatever it is (a terminal, a pipe, the journal's socket). */
#ifdef S_ISFIFO
    if (!s->regular && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode) && strcmp(path, "-") != 0) {
#else
    if (!s->regular && !S_ISCHR(st.st_mode) && strcmp(path, "-") != 0) {
#endif
        snprintf(err, errsize,
                 "cannot use %s for the audit log: it is not a regular file, a FIFO or a "
                 "character device",
                 s->path);
        sink_free(s);
        return -1;
    }
    pthread_mutex_init(&s->lock, NULL);
    cond_init(&s->wake);
    cond_init(&s->done_cond);
    *out = s;
    return 0;
}

/*
 * Waits until the sink can take more (a FIFO or device opened
 * non-blocking). false: the sink is being closed and its time is up.
 */
static bool sink_wait_writable(struct audit_sink *s)
{
    struct pollfd pfd;
    bool give_up;

    for (;;) {
        pthread_mutex_lock(&s->lock);
        give_up = s->stop && now_ms() >= s->stop_deadline;
        pthread_mutex_unlock(&s->lock);
        if (give_up)
            return false;
        pfd.fd = s->fd;
        pfd.events = POLLOUT;
        pfd.revents = 0;
        /* Errors and hang-ups: the next write says which. */
        if (poll(&pfd, 1, 100) > 0)
            return true;
    }
}

/*
 * Writes len bytes, waiting for a non-blocking sink to take them. Returns
 * 0, or the error of the call that failed; *written says how far it got.
 */
static int sink_write_all(struct audit_sink *s, const char *buf, size_t len, size_t *written)
{
    size_t off = 0;
    long n;
    int e = 0;

    while (off < len) {
        n = (long)write(s->fd, buf + off, (unsigned)(len - off));
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (sink_wait_writable(s))
                continue;
            e = ETIMEDOUT; /* closing, and the sink took nothing for AUDIT_CLOSE_WAIT_MS */
            break;
        }
        e = n < 0 ? errno : EIO; /* write(2) took nothing without saying why */
        break;
    }
    *written = off;
    return e;
}

/*
 * After a failed write that left `written` bytes of a line in a regular
 * file: cuts the file back to where the line started. Only if the line is
 * still the end of the file (nobody appended after it), so that nothing
 * but our own partial line is ever removed. 0, or the error.
 */
static int sink_remove_partial(struct audit_sink *s, size_t written)
{
    struct stat st;
    off_t end;

    if ((end = lseek(s->fd, 0, SEEK_CUR)) < 0 || fstat(s->fd, &st) != 0)
        return errno;
    if ((off_t)written > end || st.st_size != end)
        return EBUSY; /* someone else appended after our line */
    if (ftruncate(s->fd, end - (off_t)written) != 0)
        return errno;
    return 0;
}

/* Writes one queued line, preceded by what the reader of the log must know. */
static void sink_write_line(struct audit_sink *s, const struct audit_line *l)
{
    const char *what;
    size_t len = 0, written;
    int e, re = 0;
    bool had_partial;

    had_partial = s->partial;
    if (s->partial)
        s->buf[len++] = '\n';
    if (s->lost_dropped > 0 || s->failed > 0) {
        len += audit_format_lost(s->lost_dropped, s->failed, time(NULL), s->buf + len,
                                 AUDIT_LOST_MAX - 1 - len);
        s->buf[len++] = '\n';
    }
    memcpy(s->buf + len, l->text, l->len);
    len += l->len;

    if ((e = sink_write_all(s, s->buf, len, &written)) == 0) {
        if (s->fail_err != 0)
            log_info("audit: writing to %s again; %lu events could not be written", s->path,
                     s->failed);
        s->partial = false;
        s->lost_dropped = s->failed = 0;
        s->fail_err = 0;
        return;
    }
    s->failed++;
    what = "";
    if (written > 0 && s->regular && (re = sink_remove_partial(s, written)) == 0) {
        /* As before this write: the newline that ended a partial line went too. */
        s->partial = had_partial;
        what = " (the partial line was removed)";
    } else if (written > 0) {
        s->partial = true;
        what = " (a partial line is left in it)";
        if (s->regular)
            log_error("audit: cannot remove a partial line from %s: %s", s->path,
                      re == EBUSY ? "the file grew after it" : strerror(re));
    }
    if (e != s->fail_err) {
        s->fail_err = e;
        log_error("audit: cannot write to %s: %s%s; events are lost until it works again", s->path,
                  e == ETIMEDOUT ? "it took nothing while the agent stopped" : strerror(e), what);
    }
}

static void *sink_thread_main(void *arg)
{
    struct audit_sink *s = arg;
    struct audit_line *l;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->head == NULL && !s->stop)
            cond_wait_ms(&s->wake, &s->lock, -1);
        if ((l = s->head) == NULL)
            break; /* stopping, and everything is written */
        s->head = l->next;
        if (s->head == NULL)
            s->tail = NULL;
        s->lost_dropped += s->dropped;
        s->dropped = 0;
        pthread_mutex_unlock(&s->lock);

        sink_write_line(s, l);

        pthread_mutex_lock(&s->lock);
        s->queued--;
        s->queued_bytes -= l->len;
        free(l);
    }
    s->lost_dropped += s->dropped;
    s->dropped = 0;
    s->done = true;
    pthread_cond_broadcast(&s->done_cond);
    pthread_mutex_unlock(&s->lock);
    if (s->lost_dropped > 0 || s->failed > 0)
        log_error("audit: %lu events were dropped and %lu not written before the agent stopped",
                  s->lost_dropped, s->failed);
    return NULL;
}

int audit_sink_start(struct audit_sink *s, char *err, size_t errsize)
{
    int e;
    sigset_t all, old;

    /*
     * The agent's signals are the event loop's business, not the writer's.
     * Those its own calls raise stay with their dispositions: faults, and
     * SIGXFSZ (which the program ignores, so that writing past
     * RLIMIT_FSIZE fails with EFBIG).
     */
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    sigdelset(&all, SIGXFSZ);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&s->thread, NULL, sink_thread_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        snprintf(err, errsize, "cannot start the audit log's writer thread: error %d", e);
        return -1;
    }
    s->started = true;
    return 0;
}

void audit_sink_event(void *ctx, const struct audit_event *ev)
{
    struct audit_sink *s = ctx;
    char line[AUDIT_LINE_MAX];
    size_t n = audit_format_json(ev, time(NULL), line, sizeof(line) - 1);
    struct audit_line *l;
    unsigned long recovered = 0;
    size_t waiting = 0;
    bool first_drop = false;

    if (n == 0) {
        /* Cannot happen within audit.h's bounds; say so rather than lose it quietly. */
        log_error("audit event %s too long for its line, not written", ev->event);
        return;
    }
    line[n++] = '\n';
    if ((l = malloc(sizeof(*l) + n)) != NULL) {
        l->next = NULL;
        l->len = n;
        memcpy(l->text, line, n);
    }
    pthread_mutex_lock(&s->lock);
    if (l == NULL || !s->started || s->stop || s->queued >= AUDIT_QUEUE_LINES ||
        s->queued_bytes + n > AUDIT_QUEUE_BYTES) {
        s->dropped++;
        first_drop = s->drop_streak++ == 0;
        waiting = s->queued;
        pthread_mutex_unlock(&s->lock);
        free(l);
        if (first_drop)
            log_error("audit: sink is not keeping up (%lu events waiting): dropping events "
                      "until it does",
                      (unsigned long)waiting);
        return;
    }
    if (s->tail != NULL)
        s->tail->next = l;
    else
        s->head = l;
    s->tail = l;
    s->queued++;
    s->queued_bytes += n;
    recovered = s->drop_streak;
    s->drop_streak = 0;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    if (recovered > 0)
        log_error("audit: dropped %lu events: sink is not keeping up", recovered);
}

void audit_sink_close(struct audit_sink *s)
{
    uint64_t give_up;
    unsigned long streak;
    bool done;

    if (s == NULL)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        s->stop_deadline = now_ms() + AUDIT_CLOSE_WAIT_MS;
        streak = s->drop_streak;
        pthread_cond_broadcast(&s->wake);
        /* A little longer than the writer's own bound: its last poll() may be under way. */
        give_up = s->stop_deadline + 500;
        while (!s->done && now_ms() < give_up)
            cond_wait_ms(&s->done_cond, &s->lock, (long)(give_up - now_ms()));
        done = s->done;
        pthread_mutex_unlock(&s->lock);
        if (streak > 0)
            log_error("audit: dropped %lu events: sink is not keeping up", streak);
        if (!done) {
            /*
             * Stuck in a blocking write(2) (standard error on a pipe that
             * nobody reads): leave it to the process's exit.
             */
            log_error("audit: %s is not taking the last events; they are lost", s->path);
            return;
        }
        pthread_join(s->thread, NULL);
    }
    sink_free(s);
}
