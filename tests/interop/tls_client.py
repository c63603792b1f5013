"""An independent TLS client (Python's ssl and urllib) for tests/tls.rs.

Usage: tls_client.py URL CAFILE
Prints one JSON object: the status and body of a GET trusting CAFILE, the protocol the
server picks by ALPN when offered h2 and http/1.1 and the TLS version, and the error a
client that trusts only the system's CAs gets.
"""

import json
import ssl
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request


def main():
    url, cafile = sys.argv[1], sys.argv[2]
    trusting = ssl.create_default_context(cafile=cafile)
    with urllib.request.urlopen(url, context=trusting, timeout=10) as response:
        status = response.status
        body = response.read().decode()

    parsed = urllib.parse.urlsplit(url)
    alpn = ssl.create_default_context(cafile=cafile)
    alpn.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as tcp:
        with alpn.wrap_socket(tcp, server_hostname=parsed.hostname) as tls:
            selected = tls.selected_alpn_protocol()
            tls_version = tls.version()

    try:
        urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=10)
        untrusted = "no error"
    except urllib.error.URLError as error:
        untrusted = type(error.reason).__name__ + ": " + getattr(error.reason, "verify_message", "")

    print(json.dumps({
        "status": status,
        "body": body,
        "tls_version": tls_version,
        "alpn": selected,
        "untrusted": untrusted,
    }))


if __name__ == "__main__":
    main()
