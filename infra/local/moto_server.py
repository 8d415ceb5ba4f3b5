"""Runs moto server on loopback for ThreadStorm's local stack and tests.

Prints `MOTO_READY <port>` once it answers, then serves until its standard input closes, so the
server never outlives the process that started it (tests, the local runner), even after a crash.
"""

import argparse
import logging
import sys

from moto.moto_server.threaded_moto_server import ThreadedMotoServer


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
