/*  =========================================================================
    fuzz_protobuf - a protobuf-c helper shared by the fuzz targets

    protobuf-c keeps the unknown fields of a message and packs them back as
    they came, even ones that no decoder accepts (field number 0, found by
    fuzzing), so a round trip is only expected to hold for messages with no
    unknown field at any depth.
    =========================================================================
*/
#ifndef TETHER_FUZZ_PROTOBUF_H
#define TETHER_FUZZ_PROTOBUF_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

//  True when `msg` or any message inside it kept unknown fields.
static inline bool
fuzz_has_unknown_fields (const ProtobufCMessage *msg)
{
    if (!msg)
        return false;
    if (msg->n_unknown_fields)
        return true;
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[i];
        if (field->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *) msg;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *) (base + field->quantifier_offset);
            ProtobufCMessage *const *items =
                *(ProtobufCMessage *const *const *) (base + field->offset);
            for (size_t j = 0; j < n; j++)
                if (fuzz_has_unknown_fields (items[j]))
                    return true;
        } else if (fuzz_has_unknown_fields (*(
                       const ProtobufCMessage *const *) (base + field->offset)))
            return true;
    }
    return false;
}

#endif
