/*  =========================================================================
    tether_ids - the characters allowed in agent ids and request ids
    =========================================================================
*/
#include "tether_ids.h"

static bool
s_agent_char (unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':'
           || c == '@' || c == '/' || c == '+' || c == '=' || c == '-';
}

bool
tether_agent_id_valid (const char *id, size_t len, size_t max_len)
{
    if (!id || len == 0 || len > max_len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_agent_char ((unsigned char) id[i]))
            return false;
    return true;
}

bool
tether_request_id_valid (const char *id, size_t len, size_t max_len)
{
    if (!id || len == 0 || len > max_len)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) id[i];
        if (c <= 0x20 || c >= 0x7F)
            return false;
    }
    return true;
}
