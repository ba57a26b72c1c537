import pytest

from faultlens.errors import FaultlensError
from faultlens.registry import Registry


def test_unknown_name_suggests_the_close_one():
    reg = Registry("widget")
    reg.add("position", object())
    reg.add("frequency", object())
    with pytest.raises(FaultlensError, match=r"Unknown widget 'postion'\. Did you mean: position\?"):
        reg.get("postion")
    with pytest.raises(FaultlensError) as exc:
        reg.get("zzz")
    assert "Did you mean" not in str(exc.value) and "Known: frequency, position" in str(exc.value)


def test_resolve_all_and_lists():
    reg = Registry("gadget")
    for n in ("a", "b", "c"):
        reg.add(n, n)
    assert reg.resolve("all") == ["a", "b", "c"]
    assert reg.resolve("c, a") == ["c", "a"]
    with pytest.raises(FaultlensError):
        reg.resolve("a,x")
    with pytest.raises(ValueError):
        reg.add("a", "again")


def test_probe_registry_has_position():
    from faultlens.probes import load_all, probes

    load_all()
    assert "position" in probes
    with pytest.raises(FaultlensError, match="Did you mean: position"):
        probes.get("postion")
