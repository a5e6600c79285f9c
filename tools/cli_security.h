/*  =========================================================================
    cli_security - the TLS and token options every network subcommand takes

        --tls-ca FILE     verify the edge's certificate with this CA (TLS on)
                          (env TETHER_TLS_CA)
        --tls-cert FILE   client certificate for mutual TLS (with --tls-key)
        --tls-key FILE    its private key
        --token TOKEN     bearer token (env TETHER_TOKEN); @FILE reads it
                          from FILE
    A subcommand adds CLI_SECURITY_OPTIONS to its getopt_long table and
    hands unknown option values to cli_security_option.
    =========================================================================
*/
#ifndef CLI_SECURITY_H_INCLUDED
#define CLI_SECURITY_H_INCLUDED

#include "tether.h"
#include <stdbool.h>

enum
{
    CLI_OPT_TLS_CA = 1001,
    CLI_OPT_TLS_CERT,
    CLI_OPT_TLS_KEY,
    CLI_OPT_TOKEN
};

#define CLI_SECURITY_OPTIONS                                                   \
    {"tls-ca", required_argument, NULL, CLI_OPT_TLS_CA},                       \
        {"tls-cert", required_argument, NULL, CLI_OPT_TLS_CERT},               \
        {"tls-key", required_argument, NULL, CLI_OPT_TLS_KEY},                 \
    {                                                                          \
        "token", required_argument, NULL, CLI_OPT_TOKEN                        \
    }

#define CLI_SECURITY_USAGE                                                     \
    "Security: [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]\n"             \
    "          [--token TOKEN|@FILE]  (env TETHER_TLS_CA, TETHER_TOKEN)\n"

typedef struct
{
    const char *ca; //  borrowed from argv or the environment
    const char *cert;
    const char *key;
    const char *token;
} cli_security_t;

//  Defaults from the environment: TETHER_TLS_CA, TETHER_TOKEN.
void cli_security_init (cli_security_t *self);

//  Take option `opt` with `arg`.  Returns true when it was a security
//  option.
bool cli_security_option (cli_security_t *self, int opt, const char *arg);

//  Apply to a client / an agent.  Returns 0, or -1 after printing why
//  (prefixed with `who`) on stderr.
int cli_security_client (cli_security_t *self,
                         tether_client_t *client,
                         const char *who);
int cli_security_agent (cli_security_t *self,
                        tether_agent_t *agent,
                        const char *who);

#endif
