"""Runs moto server on loopback for ThreadStorm's local stack and tests.

Prints `MOTO_READY <port>` once it answers, then serves until its standard input closes, so the
server never outlives the process that started it (tests, the local runner), even after a crash.
"""

import argparse
import functools
import logging
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

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
