/*  =========================================================================
    edge_auth - who is calling: TLS, client certificates, bearer tokens,
    and the CURVE keys of the DEALER

    Settings (docs/security.md):
    - --tls-cert/--tls-key: the listener speaks TLS; without them it is
      plaintext (and warns when the address is not loopback).
    - --tls-client-ca: client certificates are requested and, when given,
      verified against that CA (a bad one fails the handshake);
      --tls-require-client-cert also refuses handshakes without one.
    - --agent-token-key-file: agents may authenticate with an agent token.
    - --client-token-key-file: clients must present a client token.

    Agents must authenticate as soon as --tls-client-ca or
    --agent-token-key-file is set.  An agent call's identity is the set of
    names its verified certificate carries (subject CN and every SAN) plus
    the subject of a valid agent token: a subscription is accepted only for
    one of those names, and a response call tells the router those names
    in BIND, so that only the addressed agent may answer.  A call with no
    name gets UNAUTHENTICATED, a bad or expired token UNAUTHENTICATED, an
    id outside the names PERMISSION_DENIED.  Clients (AgentRequestPublish,
    ListAgents) must present a client token as soon as
    --client-token-key-file is set; its scope limits the agents they reach.
    The health check stays open to anyone (load balancers).

    Owner thread only; keys live in the edge struct and are wiped on
    teardown.
    =========================================================================
*/
#include "edge_internal.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <grpc/grpc_security.h>

//  Read a whole file into a NUL-terminated string.  Returns it (caller
//  owns it) or NULL.
static char *
s_read_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *data = NULL;
    size_t size = 0;
    if (fseek (file, 0, SEEK_END) == 0) {
        long end = ftell (file);
        if (end >= 0 && end < 16 * 1024 * 1024
            && fseek (file, 0, SEEK_SET) == 0) {
            data = (char *) malloc ((size_t) end + 1);
            assert (data);
            size = fread (data, 1, (size_t) end, file);
            data[size] = 0;
        }
    }
    fclose (file);
    return data;
}

static bool
s_loopback (const char *listen)
{
    return strncmp (listen, "127.", 4) == 0
           || strncmp (listen, "localhost:", 10) == 0
           || strncmp (listen, "[::1]:", 6) == 0
           || strncmp (listen, "ipv4:127.", 9) == 0
           || strncmp (listen, "unix:", 5) == 0;
}

int
edge_auth_setup (edge_t *self)
{
    const edge_config_t *cfg = self->cfg;
    char err[512];
    if (*cfg->agent_token_key_file) {
        self->agent_key = (token_key_t *) calloc (1, sizeof (token_key_t));
        assert (self->agent_key);
        if (token_key_load (self->agent_key, cfg->agent_token_key_file, err,
                            sizeof err)) {
            char quoted[600];
            tlog (TLOG_ERROR, "cannot load the agent token key", "reason=%s",
                  tlog_quote (err, quoted, sizeof quoted));
            return -1;
        }
    }
    if (*cfg->client_token_key_file) {
        self->client_key = (token_key_t *) calloc (1, sizeof (token_key_t));
        assert (self->client_key);
        if (token_key_load (self->client_key, cfg->client_token_key_file, err,
                            sizeof err)) {
            char quoted[600];
            tlog (TLOG_ERROR, "cannot load the client token key", "reason=%s",
                  tlog_quote (err, quoted, sizeof quoted));
            return -1;
        }
    }
    self->tls = *cfg->tls_cert != 0;
    self->agent_auth = *cfg->tls_client_ca || self->agent_key;
    self->client_auth = self->client_key != NULL;
    return 0;
}

void
edge_auth_teardown (edge_t *self)
{
    if (self->agent_key) {
        memset (self->agent_key, 0, sizeof (token_key_t));
        free (self->agent_key);
        self->agent_key = NULL;
    }
    if (self->client_key) {
        memset (self->client_key, 0, sizeof (token_key_t));
        free (self->client_key);
        self->client_key = NULL;
    }
}

grpc_server_credentials *
edge_auth_server_credentials (edge_t *self)
{
    const edge_config_t *cfg = self->cfg;
    if (!self->tls)
        return grpc_insecure_server_credentials_create ();
    char *cert = s_read_file (cfg->tls_cert);
    char *key = s_read_file (cfg->tls_key);
    char *ca = *cfg->tls_client_ca ? s_read_file (cfg->tls_client_ca) : NULL;
    grpc_server_credentials *creds = NULL;
    if (!cert || !key || (*cfg->tls_client_ca && !ca))
        tlog (TLOG_ERROR, "cannot read TLS files",
              "tls_cert=%s tls_key=%s tls_client_ca=%s", cfg->tls_cert,
              cfg->tls_key, *cfg->tls_client_ca ? cfg->tls_client_ca : "none");
    else {
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        grpc_ssl_client_certificate_request_type request =
            !ca ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
            : cfg->tls_require_client_cert
                ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
        creds =
            grpc_ssl_server_credentials_create_ex (ca, &pair, 1, request, NULL);
        if (!creds)
            tlog (TLOG_ERROR, "cannot use the TLS certificate or key",
                  "tls_cert=%s tls_key=%s", cfg->tls_cert, cfg->tls_key);
    }
    if (key)
        memset (key, 0, strlen (key));
    free (key);
    free (cert);
    free (ca);
    return creds;
}

void
edge_auth_announce (edge_t *self)
{
    const edge_config_t *cfg = self->cfg;
    tlog (TLOG_INFO, "edge security",
          "tls=%s client_certs=%s agent_auth=%s agent_tokens=%s "
          "client_tokens=%s router_curve=%s",
          self->tls ? "on" : "off",
          !*cfg->tls_client_ca           ? "off"
          : cfg->tls_require_client_cert ? "required"
                                         : "verified-if-sent",
          self->agent_auth ? "on" : "off", self->agent_key ? "on" : "off",
          self->client_key ? "on" : "off",
          *cfg->router_public_key ? "on" : "off");
    if (!self->tls && !s_loopback (self->listen))
        tlog (TLOG_WARN, "listening without TLS on a non-loopback address",
              "listen=%s hint=\"set --tls-cert and --tls-key in production "
              "(docs/security.md)\"",
              self->listen);
    if (!self->tls && (self->agent_key || self->client_key)
        && !s_loopback (self->listen))
        tlog (TLOG_WARN, "bearer tokens travel in clear text without TLS",
              "listen=%s", self->listen);
    if (*cfg->router_endpoint && !*cfg->router_public_key
        && strncmp (cfg->router_endpoint, "tcp://", 6) == 0)
        tlog (TLOG_WARN, "router traffic is not encrypted",
              "router=%s hint=\"set --router-public-key and "
              "--curve-cert-file\"",
              cfg->router_endpoint);
}

//  ---- CURVE ------------------------------------------------------------

int
edge_auth_curve (edge_t *self, zsock_t *dealer)
{
    const edge_config_t *cfg = self->cfg;
    if (!*cfg->router_public_key)
        return 0;
    if (!zsys_has_curve ()) {
        tlog (TLOG_ERROR, "this libzmq has no CURVE support", NULL);
        return -1;
    }
    zcert_t *cert = zcert_load (cfg->curve_cert_file);
    bool has_secret = false;
    if (cert)
        for (int i = 0; i < 32; i++)
            has_secret |= zcert_secret_key (cert)[i] != 0;
    if (!cert || !has_secret) {
        tlog (TLOG_ERROR, "cannot load the edge's CURVE certificate",
              "curve_cert_file=%s hint=\"the secret file: tether keygen "
              "writes FILE and FILE_secret\"",
              cfg->curve_cert_file);
        zcert_destroy (&cert);
        return -1;
    }
    //  The router's key: Z85 text, or a certificate file holding it.
    char server_key[41] = "";
    const char *text = cfg->router_public_key;
    if (strlen (text) == 40 && access (text, F_OK) != 0)
        snprintf (server_key, sizeof server_key, "%s", text);
    else {
        zcert_t *router = zcert_load (text);
        if (router)
            snprintf (server_key, sizeof server_key, "%s",
                      zcert_public_txt (router));
        zcert_destroy (&router);
    }
    uint8_t decoded[32];
    if (strlen (server_key) != 40 || !zmq_z85_decode (decoded, server_key)) {
        tlog (TLOG_ERROR, "--router-public-key is not a Z85 key or a cert file",
              "router_public_key=%s", text);
        zcert_destroy (&cert);
        return -1;
    }
    zcert_apply (cert, dealer);
    zsock_set_curve_serverkey (dealer, server_key);
    tlog (TLOG_DEBUG, "router link uses CURVE", "edge_public_key=%s",
          zcert_public_txt (cert));
    zcert_destroy (&cert);
    return 0;
}

//  ---- per call ---------------------------------------------------------

//  The bearer token of the call (caller owns it), or NULL when none.
static char *
s_bearer (gw_call_t *call)
{
    char *value = gw_call_metadata (call, "authorization");
    if (!value)
        return NULL;
    char *token = NULL;
    if (strncasecmp (value, "Bearer ", 7) == 0) {
        const char *start = value + 7;
        while (*start == ' ')
            start++;
        token = strdup (start);
        assert (token);
        size_t len = strlen (token);
        while (len > 0 && isspace ((unsigned char) token[len - 1]))
            token[--len] = 0;
    }
    free (value);
    return token ? token : strdup ("");
}

//  Append `name` to the comma-separated list in `list` when it can be an
//  agent id (no comma, not empty) and is not there yet.
static void
s_add_name (zlistx_t *names, const char *name, size_t len)
{
    if (len == 0 || memchr (name, ',', len) || memchr (name, 0, len))
        return;
    for (char *known = (char *) zlistx_first (names); known;
         known = (char *) zlistx_next (names))
        if (strlen (known) == len && memcmp (known, name, len) == 0)
            return;
    char *copy = strndup (name, len);
    assert (copy);
    zlistx_add_end (names, copy);
}

static void
s_add_cert_names (gw_call_t *call, zlistx_t *names)
{
    grpc_auth_context *ctx = grpc_call_auth_context (call->call);
    if (!ctx)
        return;
    if (grpc_auth_context_peer_is_authenticated (ctx)) {
        const char *props[] = {GRPC_X509_CN_PROPERTY_NAME,
                               GRPC_X509_SAN_PROPERTY_NAME};
        for (size_t i = 0; i < 2; i++) {
            grpc_auth_property_iterator it =
                grpc_auth_context_find_properties_by_name (ctx, props[i]);
            const grpc_auth_property *prop;
            while ((prop = grpc_auth_property_iterator_next (&it)))
                if (prop->value)
                    s_add_name (names, prop->value, prop->value_length);
        }
    }
    grpc_auth_context_release (ctx);
}

grpc_status_code
gw_auth_agent (gw_call_t *call, char **identity_p, char *why, size_t size)
{
    edge_t *edge = call->edge;
    *identity_p = NULL;
    if (!edge->agent_auth)
        return GRPC_STATUS_OK;
    zlistx_t *names = zlistx_new ();
    assert (names);
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    grpc_status_code code = GRPC_STATUS_OK;
    if (*edge->cfg->tls_client_ca)
        s_add_cert_names (call, names);
    char *token = edge->agent_key ? s_bearer (call) : NULL;
    if (token) {
        char *subject = NULL;
        token_result_t rc = token_verify (edge->agent_key, token, TOKEN_AGENT,
                                          (int64_t) time (NULL), &subject);
        if (rc == TOKEN_OK)
            s_add_name (names, subject, strlen (subject));
        else {
            code = GRPC_STATUS_UNAUTHENTICATED;
            snprintf (why, size, "agent token refused: %s",
                      token_strerror (rc));
        }
        free (subject);
        free (token);
    }
    if (code == GRPC_STATUS_OK && zlistx_size (names) == 0) {
        code = GRPC_STATUS_UNAUTHENTICATED;
        snprintf (why, size, "agents must authenticate: %s",
                  edge->agent_key && *edge->cfg->tls_client_ca
                      ? "a client certificate or an agent token is required"
                  : edge->agent_key ? "an agent token is required "
                                      "(authorization: Bearer TOKEN)"
                                    : "a client certificate is required");
    }
    if (code == GRPC_STATUS_OK) {
        size_t len = 0;
        for (char *name = (char *) zlistx_first (names); name;
             name = (char *) zlistx_next (names))
            len += strlen (name) + 1;
        char *identity = (char *) calloc (1, len + 1);
        assert (identity);
        for (char *name = (char *) zlistx_first (names); name;
             name = (char *) zlistx_next (names)) {
            if (*identity)
                strcat (identity, ",");
            strcat (identity, name);
        }
        *identity_p = identity;
    }
    zlistx_destroy (&names);
    return code;
}

bool
gw_identity_includes (const char *identity, const char *agent_id)
{
    size_t len = strlen (agent_id);
    const char *start = identity;
    while (true) {
        const char *comma = strchr (start, ',');
        size_t n = comma ? (size_t) (comma - start) : strlen (start);
        if (n == len && memcmp (start, agent_id, len) == 0)
            return true;
        if (!comma)
            return false;
        start = comma + 1;
    }
}

grpc_status_code
gw_auth_client (gw_call_t *call, char **scope_p, char *why, size_t size)
{
    edge_t *edge = call->edge;
    *scope_p = NULL;
    if (!edge->client_auth)
        return GRPC_STATUS_OK;
    char *token = s_bearer (call);
    if (!token) {
        snprintf (why, size,
                  "clients must authenticate: a client token is required "
                  "(authorization: Bearer TOKEN)");
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    char *scope = NULL;
    token_result_t rc = token_verify (edge->client_key, token, TOKEN_CLIENT,
                                      (int64_t) time (NULL), &scope);
    free (token);
    if (rc != TOKEN_OK) {
        snprintf (why, size, "client token refused: %s", token_strerror (rc));
        return GRPC_STATUS_UNAUTHENTICATED;
    }
    *scope_p = scope;
    return GRPC_STATUS_OK;
}
