/*
 * keyward: the provider helper protocol's message types, shared by the
 * agent's side (src/server/provider_host.c) and the helpers
 * (docs/providers.md has the whole protocol).
 */
#ifndef KEYWARD_PROTO_HELPER_MSG_H
#define KEYWARD_PROTO_HELPER_MSG_H

#define HELPER_MSG_LOAD      1 /* agent -> helper: string module, string PIN */
#define HELPER_MSG_KEYS      2 /* helper -> agent: uint32 n, n x (string blob, string comment) */
#define HELPER_MSG_SIGN      3 /* agent -> helper: string key blob, string data, uint32 flags */
#define HELPER_MSG_SIGNATURE 4 /* helper -> agent: string signature blob */
#define HELPER_MSG_FAIL      5 /* helper -> agent: string reason */

#endif
