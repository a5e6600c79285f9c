/*  =========================================================================
    tfile - read a small file whole
    =========================================================================
*/
#include "tfile.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

char *
tfile_read (const char *path, size_t max_size)
{
    assert (path);
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *data = NULL;
    if (fseek (file, 0, SEEK_END) == 0) {
        long end = ftell (file);
        if (end >= 0 && (unsigned long) end < max_size
            && fseek (file, 0, SEEK_SET) == 0) {
            data = (char *) malloc ((size_t) end + 1);
            assert (data);
            size_t size = fread (data, 1, (size_t) end, file);
            if (ferror (file)) {
                free (data);
                data = NULL;
            } else
                data[size] = 0;
        }
    }
    fclose (file);
    return data;
}
