/*  =========================================================================
    tether_ids - the characters allowed in agent ids and request ids

    One rule for every component: the edge checks ids before it answers a
    caller (initial metadata, "agent up"), the router before it registers
    or routes them, so both refuse exactly the same ids.

    - agent id: 1 to max_len bytes of A-Z a-z 0-9 and . _ : @ / + = -
    - request id: 1 to max_len bytes of printable ASCII 0x21-0x7E (no
      space, no control character, nothing beyond ASCII)

    Pure functions on (pointer, length).  THREAD SAFETY: any thread.
    =========================================================================
*/
#ifndef TETHER_IDS_H
#define TETHER_IDS_H

#include <stdbool.h>
#include <stddef.h>

//  The rules in words, for status messages.
#define TETHER_AGENT_ID_CHARS   "A-Z a-z 0-9 . _ : @ / + = -"
#define TETHER_REQUEST_ID_CHARS "printable ASCII 0x21-0x7E"

//  True when `id` (`len` bytes, not necessarily NUL-terminated) is a valid
//  agent id of at most `max_len` bytes.
bool tether_agent_id_valid (const char *id, size_t len, size_t max_len);

//  True when `id` (`len` bytes) is a valid request id of at most `max_len`
//  bytes.
bool tether_request_id_valid (const char *id, size_t len, size_t max_len);

#endif
