/*
 * keyward: Windows platform layer. See platform.h.
 *
 * Who may talk to the agent is decided twice. The pipe's DACL lets only our
 * user and SYSTEM open it, and denies network logons. Then every accepted
 * connection's client process is looked up and its token user compared with
 * ours; that second check is the boundary, because it does not depend on
 * how (or by whom) a pipe instance was created.
 */
#include "platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include "err.h"
#include "log.h"

/* Our own identity, from platform_init_user(). */
static PSID self_sid;
static DWORD self_sid_len;
static char self_sid_str[192];
/*
 * Tests only: KEYWARD_TEST_REFUSE_SID names a SID to refuse although it is
 * ours. Every Wine process runs as the same user, so this is the only way to
 * drive the refusal path end to end there. It can only narrow who is
 * served, never widen it.
 */
static PSID test_refused_sid;

/* Copies the user SID out of a process's token into a malloc'd buffer. */
static int process_user_sid(HANDLE process, PSID *sidp, DWORD *lenp)
{
    HANDLE token = NULL;
    TOKEN_USER *tu = NULL;
    DWORD size = 0, len;
    PSID sid = NULL;
    int r = KW_ERR_SYSTEM;

    if (!OpenProcessToken(process, TOKEN_QUERY, &token))
        goto out;
    /* The first call only reports the size it needs. */
    if (GetTokenInformation(token, TokenUser, NULL, 0, &size) ||
        GetLastError() != ERROR_INSUFFICIENT_BUFFER)
        goto out;
    if ((tu = malloc(size)) == NULL) {
        r = KW_ERR_ALLOC;
        goto out;
    }
    if (!GetTokenInformation(token, TokenUser, tu, size, &size) || !IsValidSid(tu->User.Sid))
        goto out;
    len = GetLengthSid(tu->User.Sid);
    if ((sid = malloc(len)) == NULL) {
        r = KW_ERR_ALLOC;
        goto out;
    }
    if (!CopySid(len, sid, tu->User.Sid))
        goto out;
    *sidp = sid;
    *lenp = len;
    sid = NULL;
    r = 0;
out:
    free(sid);
    free(tu);
    if (token != NULL)
        CloseHandle(token);
    return r;
}

/* "S-1-5-21-..." into buf, or "?" if the SID cannot be printed. */
static void sid_to_string(PSID sid, char *buf, size_t bufsize)
{
    char *s = NULL;

    if (ConvertSidToStringSidA(sid, &s)) {
        snprintf(buf, bufsize, "%s", s);
        LocalFree(s);
    } else {
        snprintf(buf, bufsize, "?");
    }
}

int platform_init_user(char *err, size_t errsize)
{
    const char *refuse;
    int r;

    if ((r = process_user_sid(GetCurrentProcess(), &self_sid, &self_sid_len)) != 0) {
        snprintf(err, errsize, "cannot read our own user SID (error %lu)", GetLastError());
        return r;
    }
    sid_to_string(self_sid, self_sid_str, sizeof(self_sid_str));
    refuse = getenv("KEYWARD_TEST_REFUSE_SID");
    if (refuse != NULL && *refuse != '\0' && !ConvertStringSidToSidA(refuse, &test_refused_sid)) {
        snprintf(err, errsize, "KEYWARD_TEST_REFUSE_SID=%s is not a SID", refuse);
        return KW_ERR_BAD_FORMAT;
    }
    return 0;
}

const char *platform_user_sid(void)
{
    return self_sid_str;
}

/*
 * Replaces an object's DACL with the one in sddl, marked protected so that
 * nothing is inherited. Returns 0 or the Windows error code.
 */
static DWORD set_dacl(HANDLE object, const char *sddl)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    PACL dacl = NULL;
    DWORD e;

    if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL))
        return GetLastError();
    if (!GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted)) {
        e = GetLastError();
        goto out;
    }
    if (!present) {
        e = ERROR_INVALID_SECURITY_DESCR;
        goto out;
    }
    e = SetSecurityInfo(object, SE_KERNEL_OBJECT,
                        DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, NULL, NULL,
                        dacl, NULL);
out:
    LocalFree(sd);
    return e;
}

/*
 * Windows Error Reporting would offer to send, or write, a dump of the
 * process; the process DACL lets other processes of our user query, wait for
 * and end the agent, but not read its memory or debug it. The user owns the
 * process and could rewrite that DACL, so this stops casual reads (a
 * same-user tool calling ReadProcessMemory), not a determined attacker
 * running as us.
 */
int platform_harden_process(void)
{
    char sddl[320];
    DWORD e;

    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
    if (self_sid == NULL)
        return KW_ERR_INTERNAL;
    snprintf(sddl, sizeof(sddl), "D:P(A;;0x%lx;;;%s)(A;;GA;;;SY)",
             (unsigned long)(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE | PROCESS_TERMINATE),
             self_sid_str);
    if ((e = set_dacl(GetCurrentProcess(), sddl)) != 0) {
        log_error("cannot restrict access to the agent process (error %lu)", e);
        return KW_ERR_SYSTEM;
    }
    return 0;
}

/* A UTF-8 pipe name as UTF-16 for the W functions; free() it. NULL on error. */
static wchar_t *utf8_to_wide(const char *s)
{
    wchar_t *w;
    int n;

    if ((n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0)) <= 0)
        return NULL;
    if ((w = calloc((size_t)n, sizeof(*w))) == NULL)
        return NULL;
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
        free(w);
        return NULL;
    }
    return w;
}

bool platform_pipe_in_use(const char *name)
{
    wchar_t *wname;
    HANDLE h;
    DWORD e;

    if ((wname = utf8_to_wide(name)) == NULL)
        return false; /* binding will report the bad name */
    /*
     * Identification level only: whoever holds the name may be hostile (a
     * squatter waiting for a client to impersonate), so do not lend it our
     * token.
     */
    h = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                    SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    e = GetLastError();
    free(wname);
    if (h != INVALID_HANDLE_VALUE) {
        CloseHandle(h);
        return true;
    }
    /* Every instance busy, or a DACL that keeps us out: a server is there either way. */
    return e == ERROR_PIPE_BUSY || e == ERROR_ACCESS_DENIED;
}

int platform_restrict_pipe(uv_pipe_t *listener)
{
    uv_os_fd_t pipe;
    char sddl[320];
    DWORD e;

    if (self_sid == NULL || uv_fileno((uv_handle_t *)listener, &pipe) != 0) {
        log_error("cannot restrict the pipe: no user SID or no pipe handle");
        return KW_ERR_INTERNAL;
    }
    /*
     * Our user and SYSTEM, full access. The deny entry for NETWORK
     * (S-1-5-2) stands in for PIPE_REJECT_REMOTE_CLIENTS, which libuv does
     * not pass when it creates the instances: a client that connects over
     * SMB holds a network logon token, and every such token carries the
     * NETWORK SID. libuv opens every instance with WRITE_DAC (for
     * uv_pipe_chmod()), which is what lets us set this.
     */
    snprintf(sddl, sizeof(sddl), "D:P(D;;GA;;;NU)(A;;GA;;;%s)(A;;GA;;;SY)", self_sid_str);
    if ((e = set_dacl(pipe, sddl)) != 0) {
        log_error("cannot set the pipe's DACL (error %lu)", e);
        return KW_ERR_SYSTEM;
    }
    return 0;
}

bool platform_peer_allowed(uv_pipe_t *conn, struct peer_info *peer)
{
    uv_os_fd_t pipe;
    HANDLE process = NULL;
    PSID sid = NULL;
    DWORD sid_len = 0;
    ULONG pid = 0;
    char str[192];
    bool allowed = false;

    peer->pid = -1;
    peer->uid = -1;
    peer->exe[0] = '\0';
    snprintf(peer->desc, sizeof(peer->desc), "unknown peer");
    if (self_sid == NULL || uv_fileno((uv_handle_t *)conn, &pipe) != 0)
        goto out;
    /*
     * Remote (SMB) clients are kept out by the DACL's deny-NETWORK entry.
     * GetNamedPipeClientComputerName() could tell them apart here too, but
     * Wine does not implement it (calling it aborts the process).
     */
    if (!GetNamedPipeClientProcessId(pipe, &pid)) {
        snprintf(peer->desc, sizeof(peer->desc), "unknown pid (error %lu)", GetLastError());
        goto out;
    }
    peer->pid = (long)pid;
    /* A process we may not even query (another user's, say) is refused. */
    if ((process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid)) == NULL) {
        snprintf(peer->desc, sizeof(peer->desc), "pid %lu (cannot open process: error %lu)", pid,
                 GetLastError());
        goto out;
    }
    if (process_user_sid(process, &sid, &sid_len) != 0) {
        snprintf(peer->desc, sizeof(peer->desc), "pid %lu (cannot read its user: error %lu)", pid,
                 GetLastError());
        goto out;
    }
    sid_to_string(sid, str, sizeof(str));
    snprintf(peer->desc, sizeof(peer->desc), "pid %lu user %s", pid, str);
    {
        /* The client's executable, for the audit log. */
        DWORD exe_len = (DWORD)sizeof(peer->exe);

        if (!QueryFullProcessImageNameA(process, 0, peer->exe, &exe_len))
            peer->exe[0] = '\0';
    }
    allowed = platform_sid_allowed(sid, sid_len, self_sid, self_sid_len);
    if (allowed && test_refused_sid != NULL && EqualSid(sid, test_refused_sid))
        allowed = false;
out:
    free(sid);
    if (process != NULL)
        CloseHandle(process);
    return allowed;
}
