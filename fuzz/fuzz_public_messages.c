/*  =========================================================================
    fuzz_public_messages - libFuzzer target: the public messages as the
    edge parses them

    Byte 0 picks a message type, the rest is its bytes as they would arrive
    over gRPC: SubscriberInfo (AgentRequestSubscribe), AgentRequest
    (AgentRequestPublish), AgentResponse (AgentResponsePublish), or
    ListAgentsRequest (ListAgents).  The edge unpacks each with protobuf-c
    and reads a few fields; this target does the same, and checks what the
    edge relies on:
    - unpack either fails or gives non-NULL strings and a consistent
      repeated/map count;
    - AgentRequest: the edge names an anonymous request by appending field
      1 (tag 0x0a, length 32, 32 hex digits) to the bytes it forwards,
      relying on protobuf's last-one-wins rule.  After the append, the
      bytes must still unpack, the id must be the appended one and every
      other field unchanged;
    - every message without unknown fields packs again to bytes that
      unpack to the same fields.
    =========================================================================
*/
#include "fuzz_protobuf.h"
#include "tether.pb-c.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CHECK(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf (stderr, "fuzz_public_messages: %s:%d: %s\n", __FILE__,    \
                     __LINE__, #cond);                                         \
            abort ();                                                          \
        }                                                                      \
    } while (0)

static const char s_id[] = "0123456789abcdef0123456789abcdef";

static void
s_request_same (Tether__V1__AgentRequest *a,
                Tether__V1__AgentRequest *b,
                bool same_id)
{
    if (same_id)
        S_CHECK (strcmp (a->id, b->id) == 0);
    S_CHECK (strcmp (a->agent_id, b->agent_id) == 0);
    S_CHECK (strcmp (a->call, b->call) == 0);
    S_CHECK (a->payload.len == b->payload.len);
    S_CHECK (a->payload.len == 0
             || memcmp (a->payload.data, b->payload.data, a->payload.len) == 0);
    S_CHECK (a->n_headers == b->n_headers);
    S_CHECK (a->cancel == b->cancel);
}

static void
s_agent_request (const uint8_t *data, size_t size)
{
    Tether__V1__AgentRequest *req =
        tether__v1__agent_request__unpack (NULL, size, data);
    if (!req)
        return;
    S_CHECK (req->id && req->agent_id && req->call);
    S_CHECK (req->n_headers == 0 || req->headers);
    for (size_t i = 0; i < req->n_headers; i++)
        S_CHECK (req->headers[i]->key && req->headers[i]->value);

    //  The edge's id append.
    uint8_t *longer = (uint8_t *) malloc (size + 34);
    S_CHECK (longer);
    if (size)
        memcpy (longer, data, size);
    longer[size] = 0x0a;
    longer[size + 1] = 32;
    memcpy (longer + size + 2, s_id, 32);
    Tether__V1__AgentRequest *named =
        tether__v1__agent_request__unpack (NULL, size + 34, longer);
    S_CHECK (named);
    S_CHECK (strcmp (named->id, s_id) == 0);
    s_request_same (req, named, false);
    tether__v1__agent_request__free_unpacked (named, NULL);
    free (longer);

    //  Round trip, unless protobuf-c kept unknown fields (it packs them
    //  back as they came, even ones no decoder accepts).
    if (fuzz_has_unknown_fields (&req->base)) {
        tether__v1__agent_request__free_unpacked (req, NULL);
        return;
    }
    size_t packed_size = tether__v1__agent_request__get_packed_size (req);
    uint8_t *packed = (uint8_t *) malloc (packed_size + 1);
    S_CHECK (packed);
    S_CHECK (tether__v1__agent_request__pack (req, packed) == packed_size);
    Tether__V1__AgentRequest *again =
        tether__v1__agent_request__unpack (NULL, packed_size, packed);
    S_CHECK (again);
    s_request_same (req, again, true);
    tether__v1__agent_request__free_unpacked (again, NULL);
    free (packed);
    tether__v1__agent_request__free_unpacked (req, NULL);
}

static void
s_subscriber_info (const uint8_t *data, size_t size)
{
    Tether__V1__SubscriberInfo *info =
        tether__v1__subscriber_info__unpack (NULL, size, data);
    if (!info)
        return;
    S_CHECK (info->agent_id);
    for (size_t i = 0; i < info->n_labels; i++)
        S_CHECK (info->labels[i]->key && info->labels[i]->value);
    if (fuzz_has_unknown_fields (&info->base)) {
        tether__v1__subscriber_info__free_unpacked (info, NULL);
        return;
    }
    size_t packed_size = tether__v1__subscriber_info__get_packed_size (info);
    uint8_t *packed = (uint8_t *) malloc (packed_size + 1);
    S_CHECK (packed);
    S_CHECK (tether__v1__subscriber_info__pack (info, packed) == packed_size);
    Tether__V1__SubscriberInfo *again =
        tether__v1__subscriber_info__unpack (NULL, packed_size, packed);
    S_CHECK (again);
    S_CHECK (strcmp (again->agent_id, info->agent_id) == 0);
    S_CHECK (again->n_labels == info->n_labels);
    tether__v1__subscriber_info__free_unpacked (again, NULL);
    free (packed);
    tether__v1__subscriber_info__free_unpacked (info, NULL);
}

static void
s_agent_response (const uint8_t *data, size_t size)
{
    Tether__V1__AgentResponse *resp =
        tether__v1__agent_response__unpack (NULL, size, data);
    if (!resp)
        return;
    S_CHECK (resp->request_id && resp->status_message);
    //  The edge maps status_code to a gRPC status; any int32 is possible.
    int32_t code = resp->status_code;
    S_CHECK (code == resp->status_code);
    tether__v1__agent_response__free_unpacked (resp, NULL);
}

static void
s_list_request (const uint8_t *data, size_t size)
{
    Tether__V1__ListAgentsRequest *req =
        tether__v1__list_agents_request__unpack (NULL, size, data);
    if (!req)
        return;
    S_CHECK (req->prefix);
    tether__v1__list_agents_request__free_unpacked (req, NULL);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 4) {
        case 0:
            s_subscriber_info (data + 1, size - 1);
            break;
        case 1:
            s_agent_request (data + 1, size - 1);
            break;
        case 2:
            s_agent_response (data + 1, size - 1);
            break;
        default:
            s_list_request (data + 1, size - 1);
            break;
    }
    return 0;
}
