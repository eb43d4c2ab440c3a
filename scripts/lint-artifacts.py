#!/usr/bin/env python3
"""pkilint over everything a test run signed (issue 11, item 4).

    lint-artifacts.py <dir> [<shard>/<shards>]

<dir> holds the DER files the worker wrote with CERTFLOW_ARTIFACTS_DIR set:
cert-*.der (end-entity and CA certificates: lint_pkix_cert), crl-*.der (lint_crl, PKIX
profile) and ocsp-*.der (lint_ocsp_response). One process for all files (pkilint's own
commands start Python once per file). Prints every finding of severity ERROR or above and
a JSON summary line; exits 1 if there was any. With <shard>/<shards> (0/2, 1/2), only every
<shards>-th file from the <shard>-th on: scripts/test.js runs one process per core.

Two kinds of findings are counted apart and do not fail the run: dev mode names its own
host "localhost" (the HTTPS certificate's SAN, the CRL/AIA URLs), and pkilint's PKIX
profile refuses wildcard dNSNames ("*.example.test"), which RFC 5280 leaves undefined but
RFC 6125 and the CA/B Forum define (certflow's linter checks their syntax).
"""
import re
import contextlib
import io
import json
import os
import sys

from pkilint.bin import lint_crl, lint_ocsp_response, lint_pkix_cert

COMMANDS = {
    "cert": lambda path: lint_pkix_cert.main(["lint", "-s", "ERROR", path]),
    "crl": lambda path: lint_crl.main(["lint", "-t", "CRL", "-p", "PKIX", "-s", "ERROR", path]),
    "ocsp": lambda path: lint_ocsp_response.main(["lint", "-s", "ERROR", path]),
}


DEV_MODE = re.compile(r'"(https?://)?localhost(:\d+)?(/[^"]*)?"|invalid_domain_name_syntax \(ERROR\): Invalid domain name syntax: "\*\.[a-z0-9.-]+"')


def main(directory: str, shard: int = 0, shards: int = 1) -> int:
    counts = {kind: 0 for kind in COMMANDS}
    bad = []
    dev_mode = 0
    for name in sorted(os.listdir(directory))[shard::shards]:
        kind = name.split("-", 1)[0]
        if kind not in COMMANDS:
            continue
        path = os.path.join(directory, name)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                code = COMMANDS[kind](path)
            except SystemExit as e:  # argparse
                code = e.code or 1
        counts[kind] += 1
        if code == 0:
            continue
        findings = [l for l in out.getvalue().splitlines() if re.match(r"\s+\S+ \((ERROR|FATAL)\):", l)]
        real = [l for l in findings if not DEV_MODE.search(l)]
        dev_mode += len(findings) - len(real)
        if real or not findings:
            bad.append(name)
            print(f"pkilint: {name}:\n{out.getvalue().strip()}")
    print(json.dumps({"pkilint": counts, "errors": len(bad), "localhostOrWildcardFindings": dev_mode}))
    return 1 if bad else 0


if __name__ == "__main__":
    shard, shards = (int(n) for n in (sys.argv[2] if len(sys.argv) > 2 else "0/1").split("/"))
    sys.exit(main(sys.argv[1], shard, shards))
