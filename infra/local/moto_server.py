"""Runs moto server on loopback for ThreadStorm's local stack and tests.

Prints `MOTO_READY <port>` once it answers, then serves until its standard input closes, so the
server never outlives the process that started it (tests, the local runner), even after a crash.
"""

import argparse
import collections
import functools
import json
import logging
import re
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

# DynamoDB applies each item write atomically, condition included. moto serves requests on several
# threads without a lock, so a conditional write can interleave with another request (an UpdateItem
# on a new item even shows a key-only item to a concurrent condition). Serialising the item
# operations makes concurrency tests prove ThreadStorm's conditions, not moto's races.
_ITEM_LOCK = threading.RLock()


def _serialised(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _ITEM_LOCK:
            return method(*args, **kwargs)

    return locked


for _name in (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
):
    setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))


# Every request served, by who sent it and `Service.Operation`, so the local runner can report what
# a post costs in AWS requests. Each function names itself `app/threadstorm-<function>` in its user
# agent, local tooling (the stack bootstrap, the runner's event source mappings, tests)
# `app/threadstorm-local`. `GET /_threadstorm/requests` reads the counts, `DELETE` resets them.
_COUNTS_PATH = "/_threadstorm/requests"
_COUNTS_LOCK = threading.Lock()
_COUNTS = collections.defaultdict(collections.Counter)
_APP = re.compile(r"app/threadstorm-([A-Za-z0-9-]+)")
_SERVICES = {
    "DynamoDB": "DynamoDB",
    "AmazonSQS": "SQS",
    "TrentService": "KMS",
    "secretsmanager": "SecretsManager",
}
_dispatch = DomainDispatcherApplication.__call__


def _operation(environ) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    service, _, operation = target.partition(".")
    for prefix, name in _SERVICES.items():
        if service.startswith(prefix):
            return f"{name}.{operation}"
    return f"other.{environ.get('REQUEST_METHOD', '?')}"


def _counted(self, environ, start_response):
    if environ.get("PATH_INFO") == _COUNTS_PATH:
        with _COUNTS_LOCK:
            if environ.get("REQUEST_METHOD") == "DELETE":
                for counter in _COUNTS.values():
                    counter.clear()
            body = json.dumps({k: dict(v) for k, v in _COUNTS.items()}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    agent = environ.get("HTTP_USER_AGENT", "") + " " + environ.get("HTTP_X_AMZ_USER_AGENT", "")
    app = _APP.search(agent)
    who = app.group(1) if app else "unknown"
    with _COUNTS_LOCK:
        _COUNTS[who][_operation(environ)] += 1
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _counted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--log-requests", action="store_true", help="log every request moto serves")
    args = parser.parse_args()
    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(f"MOTO_READY {port}", flush=True)

    # Block until the parent closes our stdin (or exits): then stop.
    sys.stdin.read()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
