#!/usr/bin/env python3
"""An S3-compatible server on 127.0.0.1 for trying and testing a lake on S3 (moto's S3, in memory).

    infra/s3.py [--port N] [--bucket NAME]    serve in the foreground until Ctrl-C (``make s3``)

It listens on 127.0.0.1 only, on ``--port`` (default: a free port), creates ``--bucket`` (default
``govlake``) and prints the settings that point govlake at it on stdout, one ``export`` line each::

    eval "$(infra/s3.py | head -7)"     # in another shell, while it runs; or copy the lines

The keys are moto's test keys (moto accepts any): nothing here is a real credential. Everything it
holds is lost when it stops. ``tests/_s3.py`` runs the same server for the tests.

Writes one at a time: moto checks a conditional put (``If-None-Match: *``, how delta-rs and S3A commit
a Delta version without overwriting another writer's) and then stores the object in two steps, so two
racing puts could both succeed where S3 lets one. The server takes each write (PUT, POST, DELETE) under
one lock, which makes the check and the put atomic, as on S3; reads run in parallel.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

ACCESS_KEY_ID = "govlake-test"
SECRET_ACCESS_KEY = "govlake-test-secret"  # moto's server accepts any key: not a credential
REGION = "us-east-1"


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(endpoint: str, timeout: float = 1.0) -> bool:
    """Whether the server at ``endpoint`` answers an HTTP request (any status)."""
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, urllib.error.URLError):
        return False


def create_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` (moto takes an unsigned request; nothing when it exists)."""
    request = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # BucketAlreadyOwnedByYou
            raise


def environment(endpoint: str, bucket: str, prefix: str = "lake") -> dict[str, str]:
    """The variables that put govlake's lake on this server."""
    return {"GOVLAKE_LAKE": f"s3://{bucket}/{prefix}", "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY, "AWS_REGION": REGION,
            # boto and the AWS CLI otherwise look for ~/.aws; pyarrow's SDK would query the EC2 metadata service
            "AWS_EC2_METADATA_DISABLED": "true"}


class _OneWriteAtATime:
    """WSGI middleware: every request that changes the store runs alone (see the module docstring).

    With ``trace`` (a file), one line per write: time, method, path, query, the conditional headers
    (If-None-Match, If-Match), the body's length and the answer's status.
    """

    def __init__(self, app, trace: str | None = None):
        self.app, self.lock = app, threading.Lock()
        self.trace = open(trace, "a", buffering=1) if trace else None  # noqa: SIM115 (open while serving)

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return self.app(environ, start_response)
        status = []

        def recording(code, headers, exc_info=None):
            status.append(code)
            return start_response(code, headers, exc_info)

        with self.lock:
            body = list(self.app(environ, recording if self.trace else start_response))  # inside the lock
            if self.trace:
                self.trace.write("\t".join([
                    f"{time.time():.3f}", environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""),
                    environ.get("QUERY_STRING", ""), "if-none-match=" + environ.get("HTTP_IF_NONE_MATCH", ""),
                    "if-match=" + environ.get("HTTP_IF_MATCH", ""), "length=" + environ.get("CONTENT_LENGTH", ""),
                    (status or ["?"])[0]]) + "\n")
            return body


def serve(port: int, bucket: str | None, *, quiet: bool = False, trace: str | None = None) -> None:
    """Run moto's S3 on 127.0.0.1:``port`` until interrupted."""
    import logging

    from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    app = _OneWriteAtATime(create_backend_app("s3"), trace)  # S3 alone, whatever the request's Host
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    endpoint = f"http://127.0.0.1:{port}"
    if bucket:
        def announce() -> None:
            while not answers(endpoint):
                time.sleep(0.05)
            create_bucket(endpoint, bucket)
            if not quiet:
                for key, value in environment(endpoint, bucket).items():
                    print(f"export {key}={value}", flush=True)
                print(f"s3: serving on {endpoint}, bucket {bucket}; Ctrl-C stops it (its contents are lost)",
                      file=sys.stderr, flush=True)
        threading.Thread(target=announce, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="infra/s3.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--bucket", default="govlake", help="bucket to create (default govlake; '' for none)")
    parser.add_argument("--quiet", action="store_true", help="print nothing (the tests' server)")
    parser.add_argument("--trace", metavar="FILE", help="append one line per write request to FILE (method, "
                        "path, conditional headers, status): to see what a client really sends")
    args = parser.parse_args(argv)
    try:
        import moto.server  # noqa: F401
    except ImportError:
        print("s3: moto is not installed; run `make setup` (uv sync: the dev group has moto[server])",
              file=sys.stderr)
        return 1
    serve(args.port or free_port(), args.bucket or None, quiet=args.quiet, trace=args.trace)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
