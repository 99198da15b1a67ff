"""The Python transport floor: a trivial WSGI app on werkzeug's threaded server.

moto_server runs on exactly this stack (werkzeug `run_simple(threaded=True)`, HTTP/1.1
keep-alive), so the latency of `GET /` here is the part of moto's latency that is HTTP
transport and server framework rather than moto's Lambda backend.

Usage: python floor_server.py PORT   (prints "floor listening on http://127.0.0.1:PORT")
"""

import logging
import sys

from werkzeug.serving import WSGIRequestHandler, make_server

BODY = b'{"ok":true}'


def app(environ, start_response):
    # Drain any request body so keep-alive stays in sync.
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]


class QuietHandler(WSGIRequestHandler):
    # HTTP/1.1 like werkzeug's threaded mode (and so moto_server) uses.
    protocol_version = "HTTP/1.1"

    def log_request(self, *args, **kwargs):
        # moto logs each request line; one line to a file costs a few microseconds, which
        # is noise next to moto's milliseconds, so the floor stays quiet.
        pass


def main() -> None:
    port = int(sys.argv[1])
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
    print(f"floor listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
