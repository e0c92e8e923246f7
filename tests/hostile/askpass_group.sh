#!/usr/bin/env bash
# Once a bug (docs/security.md, "Findings"), now fixed: when the client of a pending
# confirmation goes away, the agent kills its askpass, but only that one
# process. An askpass that is a wrapper script (a shell that starts the real
# dialog as a child: zenity, kdialog, a custom prompt) leaves the dialog
# behind, re-parented to init, still asking the user about a request that
# no longer exists.
#
# shellcheck source=tests/hostile/lib.sh
. "$(dirname "$0")/lib.sh"
hostile_init "$@"
cat >"$E2E_TMP/askpass" <<ASKPASS
#!/bin/sh
sleep 300 &
echo \$! >"$E2E_TMP/dialog.pid"
wait
ASKPASS
chmod 755 "$E2E_TMP/askpass"
HOSTILE_ASKPASS=$E2E_TMP/askpass hostile_start_agent
e2e_keygen key ed25519 ""
e2e_run ssh-add -c "$E2E_TMP/key"
expect_rc "ssh-add -c" 0

"$HOSTILE_CLIENT" sign "$E2E_AGENT_SOCK" "$E2E_TMP/key.pub" 0 1500 >/dev/null &
client=$!
hostile_wait_for 5 test -s "$E2E_TMP/dialog.pid"
dialog=$(cat "$E2E_TMP/dialog.pid" 2>/dev/null)
check "the agent ran the askpass wrapper, which started its dialog" test -n "$dialog"
check "the dialog (pid ${dialog:-none}) is running" kill -0 "${dialog:-none}"
wait "$client"
gone() { [ -n "$dialog" ] && ! kill -0 "$dialog" 2>/dev/null; }
check "the client hung up: the dialog is gone within 5 s" hostile_wait_for 5 gone
[ -n "$dialog" ] && kill "$dialog" 2>/dev/null
e2e_finish
