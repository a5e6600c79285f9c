#!/bin/sh
#   lint.sh ROOT - lint docker-compose.yml and deploy/*.yml with yamllint,
#   the Dockerfile with hadolint and deploy/haproxy.cfg with haproxy -c,
#   each when it is installed.  Exit 77 (skipped) when none is.
set -eu
root="${1:-.}"
ran=0
if command -v yamllint >/dev/null 2>&1; then
    echo "yamllint: docker-compose.yml deploy/prometheus.yml"
    yamllint --strict -c "$root/tests/deploy/yamllint.yml" \
        "$root/docker-compose.yml" "$root/deploy/prometheus.yml"
    ran=1
fi
if command -v hadolint >/dev/null 2>&1; then
    echo "hadolint: Dockerfile"
    hadolint "$root/Dockerfile"
    ran=1
fi
if command -v haproxy >/dev/null 2>&1; then
    echo "haproxy -c: deploy/haproxy.cfg"
    haproxy -c -q -f "$root/deploy/haproxy.cfg"
    ran=1
fi
#   Checks of our own that need no tool: the entry point is POSIX sh.
if command -v dash >/dev/null 2>&1; then
    dash -n "$root/deploy/entrypoint.sh"
fi
if [ "$ran" -eq 0 ]; then
    echo "SKIP: none of yamllint, hadolint, haproxy is installed"
    exit 77
fi
echo "lint: OK"
