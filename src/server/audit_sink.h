/*
 * keyward: the audit log's file (keyward-agent -l), fed by the dispatcher's
 * events (src/agent/audit.h). Unix.
 */
#ifndef KEYWARD_SERVER_AUDIT_SINK_H
#define KEYWARD_SERVER_AUDIT_SINK_H

#include "agent/audit.h"

/*
 * The audit log's file (keyward-agent -l). The event loop never waits for
 * it: audit_sink_event() formats the line and queues it, and a thread of
 * the sink's own writes it, so a slow or stuck sink (a FIFO whose reader
 * does not read, a full disk, a hung network file system) never holds up
 * a client.
 *
 * - The queue holds at most AUDIT_QUEUE_LINES lines and AUDIT_QUEUE_BYTES
 *   bytes. An event that does not fit is dropped and counted; the first
 *   drop is logged, and so is the count once an event fits again ("audit:
 *   dropped N events: sink is not keeping up").
 * - Every line is whole or absent. If a regular file takes only part of a
 *   line (disk full, RLIMIT_FSIZE: write(2) returns short, then fails),
 *   the file is cut back to where the line started. A FIFO or character
 *   device gets the rest of a line when it can take it.
 * - The first line written after events were lost is preceded by one that
 *   says how many: {"time":...,"event":"audit-lost","dropped":N,"failed":M}
 *   (dropped: the queue was full; failed: writing failed). Write errors are
 *   logged with the error of the call that failed, once until writing
 *   works again.
 */
#define AUDIT_QUEUE_LINES 1024
#define AUDIT_QUEUE_BYTES (1024 * 1024)
/* How long closing waits for a sink to take what is still queued. */
#define AUDIT_CLOSE_WAIT_MS 2000

struct audit_sink;

/*
 * Opens path for appending, or a copy of standard error for "-". A file
 * is created mode 0600, never opened through a symbolic link, and opened
 * non-blocking, so that a FIFO no process has open for reading is refused
 * at once (instead of open(2) waiting for a reader). Regular files, FIFOs
 * and character devices are accepted; anything else is refused. Returns 0,
 * or -1 with the reason in err. Nothing is written before
 * audit_sink_start(), which starts the writer thread: call it in the
 * process that serves (after any fork).
 */
int audit_sink_open(struct audit_sink **out, const char *path, char *err, size_t errsize);
int audit_sink_start(struct audit_sink *s, char *err, size_t errsize);

/* An audit_fn: ctx is the sink. Never blocks on the sink. */
void audit_sink_event(void *ctx, const struct audit_event *ev);

/*
 * Writes what is still queued (waiting at most AUDIT_CLOSE_WAIT_MS for a
 * sink that does not take it, and then logging what was lost), stops the
 * thread and closes the file. NULL does nothing.
 */
void audit_sink_close(struct audit_sink *s);

#endif
