/*  =========================================================================
    tconfig - one table of named settings, read from file, env and flags

    A program describes each setting once: its path in the ZPL config file
    (read with CZMQ zconfig), its environment variable, its command-line
    flag, its type, bounds and help text.  tconfig_load applies, in order of
    increasing precedence: the defaults already in the targets, the config
    file (--config FILE, else the program's env var, else none), the
    environment, then the flags.  Every value is checked against its type
    and bounds; a bad one is an error naming the setting and where it came
    from, so a program refuses to start rather than run with a surprise.
    =========================================================================
*/
#ifndef TETHER_TCONFIG_H
#define TETHER_TCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum
{
    TCONFIG_STRING = 1, //  target: char ** (heap, owned by the target)
    TCONFIG_UINT,       //  target: uint32_t *
    TCONFIG_DURATION,   //  target: uint32_t * in ms; "250ms", "10s",
                        //  "2m", "1h"; a bare number is ms
    TCONFIG_SIZE,       //  target: uint32_t * in bytes; "512", "64KiB",
                        //  "4MiB", "1GiB" (also K, M, G, KB, MB, GB)
    TCONFIG_BOOL        //  target: bool *; true/false/1/0/yes/no/on/off
} tconfig_type_t;

typedef struct
{
    const char *path;    //  ZPL path, "router/bind"; NULL = none
    const char *env;     //  environment variable; NULL = none
    const char *flag;    //  "--bind"; NULL = none
    tconfig_type_t type; //  how to parse the value
    void *target;        //  where the value goes (see tconfig_type_t)
    uint32_t min;        //  inclusive bounds for numbers
    uint32_t max;        //  0 = no upper bound
    const char *help;    //  one line for --help
} tconfig_option_t;

//  Apply file, environment and flags to the targets.  `config_env` names the
//  env var holding a config file path (may be NULL); `--config FILE` on the
//  command line wins over it.  Flags take `--flag VALUE` or `--flag=VALUE`;
//  a BOOL flag alone means true.  `--help`/`-h` sets *help (when `help` is
//  not NULL) and stops.  Returns 0 on success, -1 with a message in `err`
//  on any unknown flag, unreadable file or bad value.
int tconfig_load (const tconfig_option_t *options,
                  size_t count,
                  int argc,
                  char **argv,
                  const char *config_env,
                  bool *help,
                  char *err,
                  size_t err_size);

//  Print one line per option (flag, env var, config path, current value,
//  help) to `out`.
void
tconfig_print_help (FILE *out, const tconfig_option_t *options, size_t count);

//  Free every STRING target and set it to NULL.
void tconfig_free_strings (const tconfig_option_t *options, size_t count);

//  Parse a duration ("500ms", "10s", "2m", "1h", bare = ms) into *ms.
//  Returns 0, or -1 when malformed or above UINT32_MAX ms.
int tconfig_parse_duration (const char *text, uint32_t *ms);

//  Parse a size ("4MiB", "64KiB", "512", ...) into *bytes.  Returns 0, or
//  -1 when malformed or above UINT32_MAX.
int tconfig_parse_size (const char *text, uint32_t *bytes);

#endif
