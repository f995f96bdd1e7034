#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# rawhttp.py PORT [TOKEN] — send requests as exact bytes to 127.0.0.1:PORT and print what came
# back, for tests of input that well-behaved clients (curl, http.client) refuse to send:
# control bytes in the target, invalid percent-escapes, heads larger than any sane client's.
#
# Reads one request per line on stdin: METHOD<TAB>TARGET<TAB>EXTRA-HEADER<TAB>BODY (the header
# line without its CRLF),
# each field a Python bytes literal body (\x00, \r, \n escapes; "*N" after a field repeats
# its last character so that the total is N bytes, e.g. "a*200000"). Prints one line per
# request: STATUS<TAB>CONTENT-TYPE<TAB>BODY (the body with newlines as spaces), or
# "0<TAB>-<TAB>closed" when the server closed without answering. Every socket call has a
# 10 s timeout; a connection carries one request.
import ast
import socket
import sys


def field(text):
    reps = None
    if "*" in text and text.rsplit("*", 1)[1].isdigit():
        text, reps = text.rsplit("*", 1)
    raw = ast.literal_eval("b'" + text.replace("'", "\\'") + "'")
    if reps is not None and raw:
        raw = raw + raw[-1:] * (int(reps) - len(raw))
    return raw


def send(port, token, method, target, extra, body):
    head = method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if token:
        head += b"Authorization: Bearer " + token.encode() + b"\r\n"
    if body:
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    if extra:
        head += extra + b"\r\n"
    head += b"\r\n"
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        try:
            s.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed; read what it said
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    if not data:
        return "0\t-\tclosed"
    hdr, _, rest = data.partition(b"\r\n\r\n")
    lines = hdr.decode("latin-1").split("\r\n")
    status = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "0"
    ctype = "-"
    for l in lines[1:]:
        k, _, v = l.partition(":")
        if k.strip().lower() == "content-type":
            ctype = v.strip()
    return "%s\t%s\t%s" % (status, ctype, rest.decode("utf-8", "replace").replace("\n", " "))


def main():
    port = int(sys.argv[1])
    token = sys.argv[2] if len(sys.argv) > 2 else ""
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        parts = (line.split("\t") + ["", "", "", ""])[:4]
        print(send(port, token, *[field(p) for p in parts]), flush=True)


main()
