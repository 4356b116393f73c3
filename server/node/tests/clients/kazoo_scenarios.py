"""Real-client scenarios with kazoo against a server given as host:port.

Every check raises on a wrong answer; the script prints OK and exits 0 only if all held.
"""
import sys
import threading
import time

try:
    from kazoo.client import KazooClient
    from kazoo.exceptions import BadVersionError, NoNodeError, NodeExistsError, NotEmptyError
except ImportError:
    sys.exit(f"kazoo is not installed for {sys.executable}; run the tests with scripts/test.sh")


def client(hosts):
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=10)
    return zk


def crud(zk):
    zk.ensure_path("/crud/a/b")
    assert zk.exists("/crud/a/b") is not None
    path = zk.create("/crud/x", b"v1")
    assert path == "/crud/x"
    data, stat = zk.get("/crud/x")
    assert data == b"v1" and stat.version == 0 and stat.dataLength == 2
    stat2 = zk.set("/crud/x", b"v2", version=0)
    assert stat2.version == 1 and stat2.czxid == stat.czxid and stat2.mzxid > stat.mzxid
    try:
        zk.set("/crud/x", b"v3", version=0)
        raise AssertionError("stale version accepted")
    except BadVersionError:
        pass
    try:
        zk.create("/crud/x", b"")
        raise AssertionError("duplicate create accepted")
    except NodeExistsError:
        pass
    try:
        zk.delete("/crud/a")
        raise AssertionError("delete of non-empty node accepted")
    except NotEmptyError:
        pass
    assert sorted(zk.get_children("/crud")) == ["a", "x"]
    zk.delete("/crud", recursive=True)
    assert zk.exists("/crud") is None
    try:
        zk.get("/crud")
        raise AssertionError("get of deleted node succeeded")
    except NoNodeError:
        pass


def ephemeral_sequential(hosts, zk):
    other = client(hosts)
    zk.ensure_path("/seq")
    names = [other.create("/seq/n-", b"", ephemeral=True, sequence=True) for _ in range(3)]
    assert names == ["/seq/n-%010d" % i for i in range(3)], names
    assert zk.exists(names[0]).ephemeralOwner == other.client_id[0]
    other.stop()
    other.close()
    assert zk.get_children("/seq") == [], "ephemerals survive their session's close"


def watches(zk):
    zk.ensure_path("/w")
    events = []
    seen = threading.Event()

    def on_event(ev):
        events.append((ev.type, ev.path))
        seen.set()

    zk.get("/w", watch=on_event)
    zk.set("/w", b"1")
    assert seen.wait(5), "data watch did not fire"
    assert events == [("CHANGED", "/w")], events
    seen.clear()
    zk.get_children("/w", watch=on_event)
    zk.create("/w/c")
    assert seen.wait(5), "child watch did not fire"
    assert events[-1] == ("CHILD", "/w"), events
    seen.clear()
    zk.exists("/w/missing", watch=on_event)
    zk.create("/w/missing")
    assert seen.wait(5), "exists watch on a missing node did not fire"
    assert events[-1] == ("CREATED", "/w/missing"), events
    zk.delete("/w", recursive=True)


def transaction(zk):
    zk.create("/tx", b"")
    t = zk.transaction()
    t.create("/tx/a", b"a")
    t.set_data("/tx", b"changed")
    t.check("/tx", 1)
    results = t.commit()
    assert results[0] == "/tx/a" and results[2] is True, results
    t = zk.transaction()
    t.create("/tx/b", b"")
    t.check("/tx", 99)
    results = t.commit()
    assert type(results[1]).__name__ == "BadVersionError", results
    assert zk.exists("/tx/b") is None, "failed transaction left a node behind"
    zk.delete("/tx", recursive=True)


def lock(hosts):
    a, b = client(hosts), client(hosts)
    la, lb = a.Lock("/lock", "a"), b.Lock("/lock", "b")
    assert la.acquire(timeout=5)
    assert not lb.acquire(blocking=False), "two holders of one lock"
    order = []
    acquired = []

    def take_b():
        acquired.append(lb.acquire(timeout=10))
        order.append("b")

    t = threading.Thread(target=take_b)
    t.start()
    # b queues behind a: its contender node appears, and it must not get the lock yet.
    deadline = time.monotonic() + 10
    while len(la.contenders()) < 2:
        assert time.monotonic() < deadline, "b never queued for the lock"
        time.sleep(0.01)
    assert not order, "b took the lock while a held it"
    order.append("a-release")
    la.release()
    t.join(10)
    assert not t.is_alive(), "b did not get the lock within 10 s of its release"
    assert acquired == [True], acquired
    assert order == ["a-release", "b"], order
    lb.release()
    a.stop(), b.stop()


def election(hosts):
    a, b = client(hosts), client(hosts)
    leaders = []
    won = threading.Event()

    def lead(name):
        leaders.append(name)
        won.set()
        time.sleep(0.5)

    ea = a.Election("/election", "a")
    eb = b.Election("/election", "b")
    ta = threading.Thread(target=ea.run, args=(lead, "a"))
    ta.start()
    assert won.wait(5)
    tb = threading.Thread(target=eb.run, args=(lead, "b"))
    tb.start()
    ta.join(10)
    tb.join(10)
    assert leaders == ["a", "b"], leaders
    a.stop(), b.stop()


def main(hosts):
    zk = client(hosts)
    crud(zk)
    ephemeral_sequential(hosts, zk)
    watches(zk)
    transaction(zk)
    lock(hosts)
    election(hosts)
    zk.stop()
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1])
