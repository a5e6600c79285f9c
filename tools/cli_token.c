/*  =========================================================================
    cli_token - `tether token` (mint bearer tokens) and `tether keygen`
    (make a CURVE certificate for an edge or the router)

    tether token --agent ID --key-file F [--ttl 24h]
    tether token --client --scope "site-a/,lab-" --key-file F [--ttl 24h]
        prints the token on stdout (docs/security.md).
    tether keygen --out FILE
        writes FILE (public certificate: copy it to the router's
        --curve-allow-dir, or give it to edges as --router-public-key) and
        FILE_secret (keep private: --curve-cert-file or
        --curve-secret-key-file), and prints the public key.
    =========================================================================
*/
#include "cli.h"
#include "token.h"

#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
s_token_usage (FILE *out)
{
    fprintf (
        out,
        "usage: tether token --agent ID --key-file FILE [--ttl 24h]\n"
        "       tether token --client --scope PREFIXES --key-file FILE "
        "[--ttl 24h]\n"
        "\n"
        "Prints a signed bearer token.  An agent token lets its holder\n"
        "subscribe and answer as agent ID (edge: --agent-token-key-file\n"
        "FILE).  A client token lets its holder call the agents whose ids\n"
        "start with one of PREFIXES (comma-separated; \"*\" = all) and\n"
        "list only those (edge: --client-token-key-file FILE).  TTL:\n"
        "90s, 30m, 24h, 7d.  Make a key with: openssl rand -hex 32 > FILE\n");
}

int
cli_token_main (int argc, char **argv)
{
    static const struct option options[] = {
        {"agent", required_argument, NULL, 'a'},
        {"client", no_argument, NULL, 'c'},
        {"scope", required_argument, NULL, 's'},
        {"key-file", required_argument, NULL, 'k'},
        {"ttl", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *agent = NULL, *scope = NULL, *key_file = NULL;
    bool client = false;
    int64_t ttl = 24 * 3600;
    int opt;
    optind = 1;
    while ((opt = getopt_long (argc, argv, "a:cs:k:t:h", options, NULL))
           != -1) {
        switch (opt) {
            case 'a':
                agent = optarg;
                break;
            case 'c':
                client = true;
                break;
            case 's':
                scope = optarg;
                break;
            case 'k':
                key_file = optarg;
                break;
            case 't':
                if (token_parse_ttl (optarg, &ttl) || ttl <= 0) {
                    fprintf (stderr, "tether token: bad --ttl '%s'\n", optarg);
                    return CLI_EXIT_USAGE;
                }
                break;
            case 'h':
                s_token_usage (stdout);
                return 0;
            default:
                s_token_usage (stderr);
                return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc || !key_file || (!agent == !client) || (client && !scope)
        || (agent && scope)) {
        s_token_usage (stderr);
        return CLI_EXIT_USAGE;
    }
    const char *subject = client ? scope : agent;
    if (!*subject || strchr (subject, '|')) {
        fprintf (stderr, "tether token: the %s must not be empty or hold '|'\n",
                 client ? "scope" : "agent id");
        return CLI_EXIT_USAGE;
    }
    token_key_t key;
    char err[512];
    if (token_key_load (&key, key_file, err, sizeof err)) {
        fprintf (stderr, "tether token: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    char *token = token_mint (&key, client ? TOKEN_CLIENT : TOKEN_AGENT,
                              subject, (int64_t) time (NULL) + ttl);
    memset (&key, 0, sizeof key);
    if (!token)
        return CLI_EXIT_FAILURE;
    printf ("%s\n", token);
    free (token);
    return 0;
}

static void
s_keygen_usage (FILE *out)
{
    fprintf (
        out,
        "usage: tether keygen --out FILE\n"
        "\n"
        "Makes a CURVE key pair for the edge <-> router link: FILE is the\n"
        "public certificate (for the router's --curve-allow-dir, or the\n"
        "edges' --router-public-key), FILE_secret the secret one (for\n"
        "--curve-cert-file or --curve-secret-key-file; keep it private).\n"
        "Prints the public key (Z85).\n");
}

int
cli_keygen_main (int argc, char **argv)
{
    static const struct option options[] = {
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *out = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long (argc, argv, "o:h", options, NULL)) != -1) {
        switch (opt) {
            case 'o':
                out = optarg;
                break;
            case 'h':
                s_keygen_usage (stdout);
                return 0;
            default:
                s_keygen_usage (stderr);
                return CLI_EXIT_USAGE;
        }
    }
    if (!out || !*out || optind != argc) {
        s_keygen_usage (stderr);
        return CLI_EXIT_USAGE;
    }
    if (!zsys_has_curve ()) {
        fprintf (stderr, "tether keygen: this libzmq has no CURVE support\n");
        return CLI_EXIT_FAILURE;
    }
    zcert_t *cert = zcert_new ();
    assert (cert);
    zcert_set_meta (cert, "created-by", "tether keygen");
    //  The secret file is written owner-only.
    mode_t old = umask (077);
    int rc = zcert_save (cert, out);
    umask (old);
    if (rc) {
        fprintf (stderr, "tether keygen: cannot write '%s'\n", out);
        zcert_destroy (&cert);
        return CLI_EXIT_FAILURE;
    }
    chmod (out, 0644);
    printf ("%s\n", zcert_public_txt (cert));
    zcert_destroy (&cert);
    return 0;
}
