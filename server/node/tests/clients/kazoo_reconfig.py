"""kazoo's reconfig against a three-member ensemble with reconfigEnabled=true.

Arguments: the connection string, a server line for an observer that is not running, one
for a participant that is not running, and the super user's user:password (ZooKeeper lets only
the super user reconfig; a client without it is refused). Every check raises on a wrong answer; the script
prints OK and exits 0 only if all held.
"""
import sys
import threading

try:
    from kazoo.client import KazooClient
    from kazoo.exceptions import (
        BadArgumentsError,
        BadVersionError,
        NewConfigNoQuorumError,
        NoAuthError,
    )
except ImportError:
    sys.exit(f"kazoo is not installed for {sys.executable}; run the tests with scripts/test.sh")


def parse(data):
    lines = data.decode().splitlines()
    servers = [l for l in lines if l.startswith("server.")]
    assert lines[-1].startswith("version="), lines
    return servers, int(lines[-1][len("version="):], 16)


def main(hosts, observer, participant, super_user):
    anonymous = KazooClient(hosts=hosts, timeout=10)
    anonymous.start(timeout=10)
    try:
        anonymous.reconfig(joining=observer, leaving=None, new_members=None)
        raise AssertionError("a reconfig without the super user succeeded")
    except NoAuthError:
        pass
    anonymous.stop()

    zk = KazooClient(hosts=hosts, timeout=10, auth_data=[("digest", super_user)])
    zk.start(timeout=10)
    data, stat = zk.get("/zookeeper/config")
    servers, version = parse(data)
    assert len(servers) == 3 and all(":participant;" in s for s in servers), servers
    assert stat.mzxid == version and stat.version == -1, stat

    changed = threading.Event()

    def on_change(event):
        if event.path == "/zookeeper/config":
            changed.set()

    zk.get("/zookeeper/config", watch=on_change)

    # An observer may be added before it runs, as in ZooKeeper.
    data, stat = zk.reconfig(joining=observer, leaving=None, new_members=None, from_config=version)
    grown, new_version = parse(data)
    assert observer in grown and len(grown) == 4, grown
    assert new_version > version and stat.mzxid == new_version, (version, new_version, stat)
    assert changed.wait(10), "the config watch did not fire"

    for args, error in [
        # The change must start from the current version.
        (dict(joining=None, leaving="4", new_members=None, from_config=version), BadVersionError),
        (dict(joining="server.x=nonsense", leaving=None, new_members=None), BadArgumentsError),
        (dict(joining=None, leaving="9", new_members=None), BadArgumentsError),
        (dict(joining=observer, leaving=None, new_members=",".join(servers)), BadArgumentsError),
        # A participant that is not running cannot catch up: nothing changes.
        (dict(joining=participant, leaving=None, new_members=None), NewConfigNoQuorumError),
    ]:
        try:
            zk.reconfig(**args)
            raise AssertionError(f"reconfig {args} succeeded")
        except error:
            pass
    data, _ = zk.get("/zookeeper/config")
    assert parse(data) == (grown, new_version), data

    # Remove the observer by id, then state the whole membership (non-incremental).
    data, _ = zk.reconfig(joining=None, leaving="4", new_members=None)
    assert parse(data)[0] == servers, data
    data, _ = zk.reconfig(joining=None, leaving=None, new_members=",".join(servers))
    assert parse(data)[0] == servers, data
    zk.stop()
    print("OK")


if __name__ == "__main__":
    main(*sys.argv[1:])
