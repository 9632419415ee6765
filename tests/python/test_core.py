"""tests/python/test_core.py: dragon._core against a real fabric: channels, errors, names, groups."""
import os
import signal
import sys

import pytest

import dragon
from dragon import _core, _fabric


@pytest.fixture(scope="module", autouse=True)
def joined():
    _fabric.ensure()


def test_fabric_identity():
    assert _core.node_count() >= 1
    assert 0 <= _core.node_index() < _core.node_count()
    assert _core.fabric_id()


def test_channel_roundtrip_and_descriptor():
    ch = _core.channel_create(capacity=4)
    d = ch.desc()
    assert isinstance(d, bytes) and len(d) == _core.DESC_SIZE
    other = _core.channel_attach(d)
    ch.send(b"hello")
    ch.send([b"a", memoryview(b"bc"), bytearray(b"d")])  # parts joined into one message
    assert other.recv() == b"hello"
    assert other.count() == (1, 4)
    assert other.poll(_core.POLLIN, 0) & _core.POLLIN
    assert other.recv() == b"abcd"
    ch.destroy()


def test_large_message_grows_receive_buffer():
    ch = _core.channel_create()
    big = os.urandom(3 << 20)
    ch.send(big)
    assert ch.recv() == big
    ch.send(b"x" * 100)
    buf = bytearray(10)
    fitted, n = ch.recv_into(buf)
    assert not fitted and n == 100          # too small: the message stays, its size is told
    buf = bytearray(200)
    assert ch.recv_into(buf, 1) == (True, 100)
    ch.destroy()


def test_timeouts_are_timeouterror():
    ch = _core.channel_create(capacity=1)
    with pytest.raises(TimeoutError) as ei:
        ch.recv(0.05)
    assert isinstance(ei.value, dragon.DragonError)
    assert ei.value.code == 5 and "DRAGON_ETIMEDOUT" in str(ei.value)
    ch.send(b"1")
    with pytest.raises(BlockingIOError):
        ch.send(b"2", timeout=0)              # full, do not wait
    assert ch.poll(_core.POLLIN | _core.POLLOUT, 0) == _core.POLLIN
    ch.destroy()


def test_bad_descriptors_are_valueerror():
    with pytest.raises(ValueError):
        _core.channel_attach(b"short")
    with pytest.raises(ValueError):
        _core.channel_attach(b"\xff" * _core.DESC_SIZE)


def test_destroyed_channel_is_connection_error():
    ch = _core.channel_create()
    other = _core.channel_attach(ch.desc())
    ch.destroy()
    with pytest.raises(ConnectionError):
        other.recv(1)
    with pytest.raises(ValueError):
        ch.recv(0)                             # our handle went with destroy


def test_names():
    ch = _core.channel_create(name="pytest-core-chan")
    kind, desc = _core.name_lookup("pytest-core-chan")
    assert kind == _core.NAME_CHANNEL and len(desc) >= _core.DESC_SIZE
    by_name = _core.channel_attach("pytest-core-chan", 5)
    ch.send(b"n")
    assert by_name.recv(5) == b"n"
    with pytest.raises(FileExistsError):
        _core.channel_create(name="pytest-core-chan")
    _core.name_register("pytest-user", _core.NAME_USER, b"payload")
    assert _core.name_lookup("pytest-user") == (_core.NAME_USER, b"payload")
    _core.name_remove("pytest-user")
    with pytest.raises((FileNotFoundError, TimeoutError)):
        _core.name_lookup("pytest-user", 0)
    ch.destroy()


def test_groups_exit_status_and_signals():
    gid = _core.group_create(["/bin/sh", "-c", "exit 7"], 2)
    assert _core.group_wait_all(gid, 30) == 7
    assert _core.group_wait_all(gid, 30) == 7  # a group can be waited for again
    gid = _core.group_create(["/bin/sleep", "100"], 1, _core.POLICY_NODE, _core.node_index())
    with pytest.raises(TimeoutError):
        _core.group_wait_all(gid, 0.05)
    _core.group_signal(gid, signal.SIGKILL)
    assert _core.group_wait_all(gid, 30) == 128 + signal.SIGKILL


def test_node_lost_status_is_one_number_everywhere():
    # libdragon's DRAGON_STATUS_NODE_LOST, beyond every exit code and every -N of a signal: what
    # a multiprocessing child's exitcode and a native Process's returncode are when its node left
    # the fabric (tests/integration/lostnode.bats loses a node under a Python parent).
    from dragon import mp, native
    assert dragon.NODE_LOST == _core.STATUS_NODE_LOST == native.NODE_LOST == 256
    assert mp._decode_status(dragon.NODE_LOST) == dragon.NODE_LOST
    assert all(mp._decode_status(s) != dragon.NODE_LOST for s in range(256))


def test_missing_program_is_filenotfound():
    with pytest.raises(FileNotFoundError) as ei:
        _core.group_create(["/nonexistent/prog"], 1)
    assert "nonexistent" in str(ei.value) or "rank" in str(ei.value)
    with pytest.raises(FileNotFoundError):
        _core.process_create(["/nonexistent/prog"])


def test_bad_arguments_are_python_errors():
    with pytest.raises(ValueError):
        _core.group_create([], 1)
    with pytest.raises(TypeError):
        _core.group_create(None, 1)
    with pytest.raises(TypeError):
        _core.channel_create(capacity="x")
    with pytest.raises(ValueError):
        _core.group_create(["/bin/true"], 1, _core.POLICY_NODE, 999)


def test_process_create_wait_once():
    puid = _core.process_create([sys.executable, "-c", "raise SystemExit(3)"])
    assert _core.process_wait(puid, 30) == 3
