"""A scripted HTTP(S) server for the fetch.sh tests: it answers each request by the first
rule that matches, and logs every connection and request (with its Authorization and
Range headers) as JSON lines, so a test can say where credentials went.

Usage: python3 scripted_registry.py CONFIG.json

CONFIG: {"bind": "127.0.0.1", "tls": {"cert": PEM, "key": PEM} or null,
         "log": PATH, "port_file": PATH, "rules": [RULE, ...]}
RULE:   {"path": REGEX (searched in the request path),
         "times": N (only the first N matching requests),
         "unless_auth": VALUE (skipped when the Authorization header equals VALUE),
         and one action:
         "proxy": "http://host:port"  forward the request (without Authorization) and
                                       stream the answer; "drop_after": N closes the
                                       connection after N body bytes
         "silent": true               accept and never answer
         "endless": true              200 without a length, zeros forever
         "drip": SECONDS              200 with "length" (default 1 GiB), a byte every SECONDS
         or "status" with "headers" and "body" (text) or "body_file" (path)}
"{self}" in a header value or a text body is replaced by this server's host:port.
"""

import http.client
import json
import os
import socket
import ssl
import sys
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

conf = json.load(open(sys.argv[1]))
rules = conf["rules"]
counts = [0] * len(rules)
lock = threading.Lock()
log = open(conf["log"], "a", buffering=1)


def record(entry):
    with lock:
        log.write(json.dumps(entry) + "\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def verify_request(self, request, client_address):
        record({"connect": True})
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.answer()

    def do_HEAD(self):
        self.answer()

    def pick(self):
        with lock:
            for i, rule in enumerate(rules):
                if not re.search(rule["path"], self.path):
                    continue
                if rule.get("unless_auth") is not None and (
                    self.headers.get("Authorization") == rule["unless_auth"]
                ):
                    continue
                if "times" in rule and counts[i] >= rule["times"]:
                    continue
                counts[i] += 1
                return rule
        return None

    def answer(self):
        record(
            {
                "method": self.command,
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "range": self.headers.get("Range"),
            }
        )
        rule = self.pick()
        if rule is None:
            return self.reply(404, {}, b'{"errors":[{"code":"NOT_FOUND","message":"no rule"}]}')
        if "proxy" in rule:
            return self.proxy(rule)
        if rule.get("silent"):
            time.sleep(3600)
            return
        if rule.get("endless"):
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = bytes(65536)
            try:
                while True:
                    self.wfile.write(chunk)
            except OSError:
                pass
            self.close_connection = True
            return
        if "drip" in rule:
            self.send_response(200)
            self.send_header("Content-Length", str(rule.get("length", 1 << 30)))
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(rule["drip"])
            except OSError:
                pass
            self.close_connection = True
            return
        me = "%s:%d" % (self.server.server_address[0], self.server.server_address[1])
        headers = {k: v.replace("{self}", me) for k, v in rule.get("headers", {}).items()}
        if "body_file" in rule:
            body = open(rule["body_file"], "rb").read()
        else:
            body = rule.get("body", "").replace("{self}", me).encode()
        self.reply(rule.get("status", 200), headers, body)

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def proxy(self, rule):
        target = rule["proxy"].split("://", 1)[1]
        host, port = target.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("authorization", "host", "connection")
        }
        conn.request(self.command, self.path, headers=headers)
        resp = conn.getresponse()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "date", "server"):
                self.send_header(k, v)
        self.end_headers()
        left = rule.get("drop_after")
        while self.command != "HEAD":
            data = resp.read(65536 if left is None else min(65536, left))
            if not data:
                break
            self.wfile.write(data)
            if left is not None:
                left -= len(data)
                if left <= 0:
                    self.wfile.flush()
                    # An abrupt end, as a dropped connection looks to the client.
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    break
        conn.close()


server = Server((conf["bind"], 0), Handler)
if conf.get("tls"):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(conf["tls"]["cert"], conf["tls"]["key"])
    # The handshake happens in each connection's thread, so a client that never speaks
    # TLS holds up no one.
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
with open(conf["port_file"] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(conf["port_file"] + ".tmp", conf["port_file"])
server.serve_forever()
