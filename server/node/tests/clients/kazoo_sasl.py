"""kazoo's SASL DIGEST-MD5 login against a server with a JAAS users file.

Arguments: host:port, a user and its password, then the super user (zookeeper.superUser) and
its password. The login must succeed and give the identity sasl:<user> (an ACL naming it lets
the session in, and the super user too, no one else); a wrong password must fail with
AuthFailed. Prints OK and exits 0 only if all held.
"""
import sys
import time

try:
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoAuthError
    from kazoo.protocol.states import KeeperState
    from kazoo.security import make_acl
except ImportError:
    sys.exit(f"kazoo is not installed for {sys.executable}; run the tests with scripts/test.sh")


def client(hosts, user, password):
    return KazooClient(
        hosts=hosts,
        timeout=10,
        sasl_options={"mechanism": "DIGEST-MD5", "username": user, "password": password},
    )


def main(hosts, user, password, super_user, super_password):
    zk = client(hosts, user, password)
    zk.start(timeout=10)
    zk.create("/sasl-only", b"for " + user.encode(), acl=[make_acl("sasl", user, all=True)])
    assert zk.get("/sasl-only")[0] == b"for " + user.encode()
    zk.stop()

    admin = client(hosts, super_user, super_password)
    admin.start(timeout=10)
    assert admin.get("/sasl-only")[0] == b"for " + user.encode()
    admin.stop()

    anonymous = KazooClient(hosts=hosts, timeout=10)
    anonymous.start(timeout=10)
    try:
        anonymous.get("/sasl-only")
        raise AssertionError("read a sasl-only node without logging in")
    except NoAuthError:
        pass
    anonymous.stop()

    # kazoo opens the session first and logs in after; the server's AUTH_FAILED ends it.
    wrong = client(hosts, user, password + "-wrong")
    states = []
    callback = wrong._session_callback

    def record(state):
        states.append(state)
        callback(state)

    wrong._session_callback = record
    try:
        wrong.start(timeout=5)
    except Exception:
        pass
    deadline = time.monotonic() + 10
    while KeeperState.AUTH_FAILED not in states:
        if time.monotonic() > deadline:
            raise AssertionError(f"a wrong password was taken: {states}")
        time.sleep(0.05)
    assert not wrong.connected, states
    wrong.stop()
    print("OK")


if __name__ == "__main__":
    main(*sys.argv[1:])
