/*  =========================================================================
    tfile - read a small file (a PEM certificate, a key) whole

    Pure libc, so libtether compiles it in with hidden symbols.
    =========================================================================
*/
#ifndef TETHER_TFILE_H
#define TETHER_TFILE_H

#include <stddef.h>

//  Bound for certificate and key files: far above any real PEM bundle.
#define TFILE_PEM_MAX (16 * 1024 * 1024)

//  Read the file at `path` into a NUL-terminated string.  Returns it
//  (caller owns it, free()), or NULL when the file cannot be opened, read
//  or is `max_size` bytes or larger.
char *tfile_read (const char *path, size_t max_size);

#endif
