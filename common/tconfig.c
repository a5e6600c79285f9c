/*  =========================================================================
    tconfig - one table of named settings, read from file, env and flags

    Precedence, lowest first: defaults in the targets, file, environment,
    flags.  Parsing never touches a target unless the whole value is valid.
    =========================================================================
*/
#include "tconfig.h"

#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

static int
s_parse_uint (const char *text, uint64_t *value, const char **rest)
{
    if (!text || !isdigit ((unsigned char) *text))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno)
        return -1;
    *value = v;
    *rest = end;
    return 0;
}

int
tconfig_parse_duration (const char *text, uint32_t *ms)
{
    uint64_t v;
    const char *unit;
    if (s_parse_uint (text, &v, &unit))
        return -1;
    uint64_t scale;
    if (*unit == 0 || strcmp (unit, "ms") == 0)
        scale = 1;
    else if (strcmp (unit, "s") == 0)
        scale = 1000;
    else if (strcmp (unit, "m") == 0)
        scale = 60 * 1000;
    else if (strcmp (unit, "h") == 0)
        scale = 3600 * 1000;
    else
        return -1;
    if (v > UINT32_MAX / scale)
        return -1;
    *ms = (uint32_t) (v * scale);
    return 0;
}

int
tconfig_parse_size (const char *text, uint32_t *bytes)
{
    uint64_t v;
    const char *unit;
    if (s_parse_uint (text, &v, &unit))
        return -1;
    static const struct
    {
        const char *name;
        uint64_t scale;
    } units[] = {{"", 1},         {"B", 1},         {"K", 1024},
                 {"KB", 1024},    {"KiB", 1024},    {"M", 1 << 20},
                 {"MB", 1 << 20}, {"MiB", 1 << 20}, {"G", 1 << 30},
                 {"GB", 1 << 30}, {"GiB", 1 << 30}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp (unit, units[i].name) == 0) {
            if (v > UINT32_MAX / units[i].scale)
                return -1;
            *bytes = (uint32_t) (v * units[i].scale);
            return 0;
        }
    return -1;
}

static int
s_parse_bool (const char *text, bool *value)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp (text, yes[i]) == 0) {
            *value = true;
            return 0;
        }
        if (strcasecmp (text, no[i]) == 0) {
            *value = false;
            return 0;
        }
    }
    return -1;
}

//  Set one option from text; `origin` says where the text came from, for
//  the error message.
static int
s_apply (const tconfig_option_t *opt,
         const char *text,
         const char *origin,
         char *err,
         size_t err_size)
{
    const char *name = opt->flag ? opt->flag : opt->path;
    uint32_t number = 0;
    switch (opt->type) {
        case TCONFIG_STRING: {
            char **target = (char **) opt->target;
            free (*target);
            *target = strdup (text);
            assert (*target);
            return 0;
        }
        case TCONFIG_BOOL:
            if (s_parse_bool (text, (bool *) opt->target) == 0)
                return 0;
            snprintf (err, err_size, "%s (from %s): '%s' is not a boolean",
                      name, origin, text);
            return -1;
        case TCONFIG_UINT: {
            uint64_t v;
            const char *rest;
            if (s_parse_uint (text, &v, &rest) || *rest || v > UINT32_MAX) {
                snprintf (err, err_size,
                          "%s (from %s): '%s' is not a whole number", name,
                          origin, text);
                return -1;
            }
            number = (uint32_t) v;
            break;
        }
        case TCONFIG_DURATION:
            if (tconfig_parse_duration (text, &number)) {
                snprintf (err, err_size,
                          "%s (from %s): '%s' is not a duration (like 500ms, "
                          "10s, 2m)",
                          name, origin, text);
                return -1;
            }
            break;
        case TCONFIG_SIZE:
            if (tconfig_parse_size (text, &number)) {
                snprintf (err, err_size,
                          "%s (from %s): '%s' is not a size (like 512, "
                          "64KiB, 4MiB)",
                          name, origin, text);
                return -1;
            }
            break;
    }
    if (number < opt->min || (opt->max && number > opt->max)) {
        snprintf (err, err_size,
                  "%s (from %s): %s is out of range [%" PRIu32 ", %" PRIu32 "]",
                  name, origin, text, opt->min,
                  opt->max ? opt->max : UINT32_MAX);
        return -1;
    }
    *(uint32_t *) opt->target = number;
    return 0;
}

static int
s_load_file (const tconfig_option_t *options,
             size_t count,
             const char *file,
             char *err,
             size_t err_size)
{
    zconfig_t *root = zconfig_load (file);
    if (!root) {
        snprintf (err, err_size, "cannot read config file '%s'", file);
        return -1;
    }
    int rc = 0;
    char origin[512];
    snprintf (origin, sizeof origin, "file %s", file);
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (!options[i].path)
            continue;
        zconfig_t *item = zconfig_locate (root, options[i].path);
        if (item && zconfig_value (item) && *zconfig_value (item))
            rc = s_apply (&options[i], zconfig_value (item), origin, err,
                          err_size);
    }
    zconfig_destroy (&root);
    return rc;
}

int
tconfig_load (const tconfig_option_t *options,
              size_t count,
              int argc,
              char **argv,
              const char *config_env,
              bool *help,
              char *err,
              size_t err_size)
{
    if (help)
        *help = false;
    //  Find --config first: the file is the lowest layer.
    const char *file = config_env ? getenv (config_env) : NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                snprintf (err, err_size, "--config needs a file name");
                return -1;
            }
            file = argv[++i];
        } else if (strncmp (argv[i], "--config=", 9) == 0)
            file = argv[i] + 9;
    }
    if (file && *file && s_load_file (options, count, file, err, err_size))
        return -1;

    for (size_t i = 0; i < count; i++) {
        const char *value = options[i].env ? getenv (options[i].env) : NULL;
        if (value && *value) {
            char origin[128];
            snprintf (origin, sizeof origin, "env %s", options[i].env);
            if (s_apply (&options[i], value, origin, err, err_size))
                return -1;
        }
    }

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            if (help)
                *help = true;
            return 0;
        }
        if (strcmp (arg, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp (arg, "--config=", 9) == 0)
            continue;
        const char *eq = strchr (arg, '=');
        size_t name_len = eq ? (size_t) (eq - arg) : strlen (arg);
        const tconfig_option_t *opt = NULL;
        for (size_t j = 0; j < count && !opt; j++)
            if (options[j].flag && strlen (options[j].flag) == name_len
                && strncmp (options[j].flag, arg, name_len) == 0)
                opt = &options[j];
        if (!opt) {
            snprintf (err, err_size, "unknown argument '%s' (try --help)", arg);
            return -1;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && opt->type == TCONFIG_BOOL)
            value = "true";
        if (!value) {
            if (i + 1 >= argc) {
                snprintf (err, err_size, "%s needs a value", opt->flag);
                return -1;
            }
            value = argv[++i];
        }
        if (s_apply (opt, value, "command line", err, err_size))
            return -1;
    }
    return 0;
}

void
tconfig_print_help (FILE *out, const tconfig_option_t *options, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const tconfig_option_t *opt = &options[i];
        char value[256] = "";
        switch (opt->type) {
            case TCONFIG_STRING: {
                const char *s = *(char **) opt->target;
                snprintf (value, sizeof value, "%s", s ? s : "");
                break;
            }
            case TCONFIG_BOOL:
                snprintf (value, sizeof value, "%s",
                          *(bool *) opt->target ? "true" : "false");
                break;
            case TCONFIG_DURATION:
                snprintf (value, sizeof value, "%" PRIu32 "ms",
                          *(uint32_t *) opt->target);
                break;
            case TCONFIG_UINT:
            case TCONFIG_SIZE:
                snprintf (value, sizeof value, "%" PRIu32,
                          *(uint32_t *) opt->target);
                break;
        }
        fprintf (out, "  %-28s %s\n", opt->flag ? opt->flag : "(file only)",
                 opt->help ? opt->help : "");
        fprintf (out, "  %-28s default %s; env %s; config %s\n", "", value,
                 opt->env ? opt->env : "-", opt->path ? opt->path : "-");
    }
    fprintf (out, "  %-28s %s\n", "--config FILE",
             "read settings from a ZPL file first (lowest precedence)");
}

void
tconfig_free_strings (const tconfig_option_t *options, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (options[i].type == TCONFIG_STRING) {
            char **target = (char **) options[i].target;
            free (*target);
            *target = NULL;
        }
}
