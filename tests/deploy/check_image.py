#!/usr/bin/python3
"""Check the Dockerfile's runtime stage without Docker.

The runtime image installs a short list of Debian packages and copies the
programs built in the build stage.  This check proves, on this Debian
machine, that the list is enough: every shared library the built programs
load (ldd) comes either from one of those packages or from a package they
depend on (dpkg's Depends, followed recursively), or is shipped from the
build tree (libtether) by a COPY in the Dockerfile.  It also checks that
the files docker-compose.yml mounts and the Dockerfile copies exist.

Usage: check_image.py --root DIR BINARY...
Exit code 77 (skipped) without dpkg.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

#   In every Debian image (essential or required), so never listed.
BASE = {"libc6", "libgcc-s1"}


def fail(msg):
    print("FAIL: " + msg)
    return 1


def runtime_packages(dockerfile):
    """The packages `apt-get install`ed in the last stage."""
    text = open(dockerfile, encoding="utf-8").read()
    text = re.sub(r"\\\n", " ", text)           # join continued lines
    last = re.split(r"^FROM\s", text, flags=re.M)[-1]
    pkgs = set()
    for m in re.finditer(r"apt-get install ([^&\n]*)", last):
        pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs, last


def depends(pkg, cache):
    """Installed packages `pkg` depends on (Depends, Pre-Depends)."""
    if pkg in cache:
        return cache[pkg]
    r = subprocess.run(["dpkg-query", "-W", "-f",
                        "${Depends}, ${Pre-Depends}", pkg],
                       capture_output=True, text=True)
    out = set()
    for clause in r.stdout.split(","):
        for alt in clause.split("|"):
            name = alt.strip().split(" ")[0].split(":")[0]
            if name and installed(name):
                out.add(name)
                break
    cache[pkg] = out
    return out


def installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", pkg],
                       capture_output=True, text=True)
    return r.returncode == 0 and "ok installed" in r.stdout


def closure(pkgs):
    seen, todo, cache = set(), list(pkgs), {}
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(depends(p, cache) - seen)
    return seen


def candidates(path):
    """`path` and its merged-/usr twins, as dpkg may have recorded it."""
    out = []
    for c in (path, os.path.realpath(path)):
        out.append(c)
        if c.startswith("/usr/lib/"):
            out.append(c[len("/usr"):])
        elif c.startswith("/lib/"):
            out.append("/usr" + c)
    return out


def owners(paths):
    """{path: Debian package shipping it}, with one dpkg -S call."""
    asked = sorted({c for p in paths for c in candidates(p)})
    r = subprocess.run(["dpkg", "-S"] + asked, capture_output=True,
                       text=True)
    found = {}
    for line in r.stdout.splitlines():
        pkgs, _, path = line.partition(": ")
        found[path.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    result = {}
    for p in paths:
        for c in candidates(p):
            if c in found:
                result[p] = found[c]
                break
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    if not (shutil.which("dpkg") and shutil.which("dpkg-query")
            and shutil.which("ldd")):
        print("SKIP: needs dpkg, dpkg-query and ldd")
        return 77
    errors = 0
    dockerfile = os.path.join(args.root, "Dockerfile")
    listed, runtime_stage = runtime_packages(dockerfile)
    with open(dockerfile, encoding="utf-8") as f:
        dockerfile_text = f.read()
    print("runtime packages: %s" % " ".join(sorted(listed)))
    missing = [p for p in listed if not installed(p)]
    if missing:
        print("SKIP: runtime packages not installed here: %s"
              % " ".join(missing))
        return 77
    have = closure(listed) | BASE
    libs = {}       # binary -> [(soname, path)]
    for binary in args.binaries:
        if not os.access(binary, os.X_OK):
            continue
        ldd = subprocess.run(["ldd", binary], capture_output=True,
                             text=True).stdout
        libs[binary] = [m.groups() for m in
                        (re.match(r"\s*(\S+) => (\S+)", line)
                         for line in ldd.splitlines()) if m]
    owner = owners({path for pairs in libs.values() for _, path in pairs
                    if path != "not"})
    for binary, pairs in libs.items():
        before = errors
        for soname, path in pairs:
            if re.match(r"lib(a|t|l|ub|hwa)san\.so", soname):
                continue        # a sanitized build's runtime
            if path == "not":
                errors += fail("%s: %s not found" % (binary, soname))
                continue
            pkg = owner.get(path)
            if pkg is None:
                #   From the build tree: must be copied into the image.
                stem = soname.split(".so")[0]
                shipped = (re.search(re.escape(stem) + r"\.so",
                                     dockerfile_text)
                           and "COPY --from=build /out/lib/" in runtime_stage)
                if not shipped:
                    errors += fail("%s: %s (%s) is built here but the image "
                                   "does not ship it" % (binary, soname, path))
                continue
            if pkg not in have:
                errors += fail("%s: %s comes from %s, which the runtime "
                               "stage does not install" % (binary, soname,
                                                           pkg))
        if errors == before:
            print("%s: every library is in the runtime image" % binary)
    #   Files the image and compose file need.
    for rel in ("config/router.cfg", "config/edge.cfg",
                "deploy/entrypoint.sh", "deploy/prometheus.yml",
                "deploy/haproxy.cfg"):
        if not os.path.exists(os.path.join(args.root, rel)):
            errors += fail("missing %s" % rel)
    if not os.access(os.path.join(args.root, "deploy/entrypoint.sh"),
                     os.X_OK):
        errors += fail("deploy/entrypoint.sh is not executable")
    print("image check: %s" % ("OK" if errors == 0 else
                               "%d problem(s)" % errors))
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
