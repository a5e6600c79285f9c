/*  =========================================================================
    cli_security - the TLS and token options every network subcommand takes
    =========================================================================
*/
#include "cli_security.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
cli_security_init (cli_security_t *self)
{
    memset (self, 0, sizeof *self);
    const char *ca = getenv ("TETHER_TLS_CA");
    const char *token = getenv ("TETHER_TOKEN");
    self->ca = ca && *ca ? ca : NULL;
    self->token = token && *token ? token : NULL;
}

bool
cli_security_option (cli_security_t *self, int opt, const char *arg)
{
    switch (opt) {
        case CLI_OPT_TLS_CA:
            self->ca = arg;
            return true;
        case CLI_OPT_TLS_CERT:
            self->cert = arg;
            return true;
        case CLI_OPT_TLS_KEY:
            self->key = arg;
            return true;
        case CLI_OPT_TOKEN:
            self->token = arg;
            return true;
        default:
            return false;
    }
}

//  The token: the value, or the first line of FILE for "@FILE".  Returns
//  a new string (caller owns it) or NULL after printing why.
static char *
s_token (const char *value, const char *who)
{
    if (*value != '@')
        return strdup (value);
    FILE *file = fopen (value + 1, "r");
    char line[8192];
    if (!file || !fgets (line, sizeof line, file)) {
        fprintf (stderr, "%s: cannot read the token from '%s'\n", who,
                 value + 1);
        if (file)
            fclose (file);
        return NULL;
    }
    fclose (file);
    size_t len = strlen (line);
    while (len > 0 && isspace ((unsigned char) line[len - 1]))
        line[--len] = 0;
    return strdup (line);
}

//  Apply the settings to `client` or, when it is NULL, to `agent`.
static int
s_apply (cli_security_t *self,
         tether_client_t *client,
         tether_agent_t *agent,
         const char *who)
{
    if (!self->cert != !self->key) {
        fprintf (stderr, "%s: --tls-cert and --tls-key go together\n", who);
        return -1;
    }
    if (self->ca || self->cert) {
        int rc = client ? tether_client_set_tls (client, self->ca, self->cert,
                                                 self->key)
                        : tether_agent_set_tls (agent, self->ca, self->cert,
                                                self->key);
        if (rc) {
            fprintf (stderr, "%s: cannot read the TLS files\n", who);
            return -1;
        }
    }
    if (self->token) {
        char *token = s_token (self->token, who);
        if (!token)
            return -1;
        if (client)
            tether_client_set_token (client, token);
        else
            tether_agent_set_token (agent, token);
        free (token);
    }
    return 0;
}

int
cli_security_client (cli_security_t *self,
                     tether_client_t *client,
                     const char *who)
{
    return s_apply (self, client, NULL, who);
}

int
cli_security_agent (cli_security_t *self,
                    tether_agent_t *agent,
                    const char *who)
{
    return s_apply (self, NULL, agent, who);
}
