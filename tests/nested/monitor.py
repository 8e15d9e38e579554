#!/usr/bin/env python3
"""monitor.py SOCKET COMMAND: send one command to a QEMU human monitor on a
Unix socket (-monitor unix:SOCKET,server=on,wait=off) and print what it
answers within about a second.  The nested rigs use it to sample a wedged
L1's vCPUs."""
import socket
import sys
import time

s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(1)
out = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
except socket.timeout:
    pass
print(out.decode(errors="replace"))
