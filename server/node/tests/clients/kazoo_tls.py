"""kazoo over TLS (use_ssl) against the TLS client port, with a client certificate.

Arguments: host:port of the TLS port, the CA's PEM file, the client's certificate and key
(one PEM file, given as kazoo's certfile and keyfile). Every check raises on a wrong answer; the script prints OK and exits 0 only if
all held.
"""
import sys

try:
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoNodeError
except ImportError:
    sys.exit(f"kazoo is not installed for {sys.executable}; run the tests with scripts/test.sh")


def main(hosts, ca, identity):
    zk = KazooClient(
        hosts=hosts,
        timeout=10,
        use_ssl=True,
        verify_certs=True,
        ca=ca,
        certfile=identity,
        keyfile=identity,
    )
    zk.start(timeout=10)
    zk.create("/kazoo-tls", b"secret", makepath=True)
    data, stat = zk.get("/kazoo-tls")
    assert data == b"secret" and stat.version == 0, (data, stat)
    zk.set("/kazoo-tls", b"changed")
    assert zk.get("/kazoo-tls")[0] == b"changed"
    zk.delete("/kazoo-tls")
    try:
        zk.get("/kazoo-tls")
        raise AssertionError("deleted node still there")
    except NoNodeError:
        pass
    zk.stop()
    print("OK")


if __name__ == "__main__":
    main(*sys.argv[1:])
