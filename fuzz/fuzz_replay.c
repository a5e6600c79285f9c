/*  =========================================================================
    fuzz_replay - run a fuzz target over files, without libFuzzer

    Linked with one fuzz_*.c in place of libFuzzer's main, so the checked-in
    corpus is a regression test in every build (any compiler, sanitizers
    or not).  Arguments are files or directories (one level deep); each
    file is one input.  Exits 0 when every input ran; a failed check in
    the target aborts.
    =========================================================================
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
s_run_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "fuzz_replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, size = 0;
    uint8_t *data = (uint8_t *) malloc (cap);
    size_t n;
    while (data && (n = fread (data + size, 1, cap - size, file)) > 0) {
        size += n;
        if (size == cap) {
            cap *= 2;
            uint8_t *bigger = (uint8_t *) realloc (data, cap);
            if (!bigger)
                free (data);
            data = bigger;
        }
    }
    fclose (file);
    if (!data)
        return -1;
    LLVMFuzzerTestOneInput (data, size);
    free (data);
    return 0;
}

int
main (int argc, char **argv)
{
    int inputs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat (argv[i], &st) != 0) {
            fprintf (stderr, "fuzz_replay: no such file %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR (st.st_mode)) {
            if (s_run_file (argv[i]))
                return 1;
            inputs++;
            continue;
        }
        DIR *dir = opendir (argv[i]);
        if (!dir)
            return 1;
        struct dirent *entry;
        while ((entry = readdir (dir))) {
            if (entry->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf (path, sizeof path, "%s/%s", argv[i], entry->d_name);
            if (s_run_file (path)) {
                closedir (dir);
                return 1;
            }
            inputs++;
        }
        closedir (dir);
    }
    printf ("fuzz_replay: %d inputs ran\n", inputs);
    return inputs > 0 ? 0 : 1;
}
