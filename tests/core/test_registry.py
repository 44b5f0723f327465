import pytest

from fpattr.errors import RegistryError
from fpattr.registry import Registry


def test_add_get_and_provenance():
    reg: Registry[int] = Registry("backbone")
    reg.add("spectrum", 1, plugin="builtin", description="d", extra=True)
    assert reg.get("spectrum") == 1
    e = reg.entry("spectrum")
    assert (e.plugin, e.description, e.meta) == ("builtin", "d", {"extra": True})
    assert "spectrum" in reg and len(reg) == 1 and reg.names() == ["spectrum"]


def test_duplicate_is_an_error_naming_both_plugins():
    reg: Registry[int] = Registry("backbone")
    reg.add("x", 1, plugin="a")
    with pytest.raises(RegistryError, match="'b'.*already registered by 'a'"):
        reg.add("x", 2, plugin="b")
    assert reg.get("x") == 1


def test_unknown_name_suggests_close_matches():
    reg: Registry[int] = Registry("backbone")
    reg.add("spectrum", 1, plugin="a")
    with pytest.raises(RegistryError, match="did you mean spectrum"):
        reg.get("spectrun")
    with pytest.raises(LookupError):
        reg.get("zzz")


@pytest.mark.parametrize("bad", ["", None, 3])
def test_bad_names_rejected(bad):
    with pytest.raises(RegistryError):
        Registry("x").add(bad, 1, plugin="p")  # type: ignore[arg-type]


def test_callback_binds_plugin():
    reg: Registry[str] = Registry("format")
    reg.callback("plug")("md", "obj", description="markdown", streaming=True)
    assert reg.entry("md").plugin == "plug" and reg.entry("md").meta == {"streaming": True}
