"""iter_loaded: order, error pass-through, bounded in-flight work, clean early close."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from fpattr.errors import ImageLoadError
from fpattr.io.loader import LoadedImage
from fpattr.io.prefetch import iter_loaded
from fpattr.io.walk import InputItem, iter_inputs
from fpattr.testing import make_hostile_inputs


def items(n: int) -> list[InputItem]:
    return [InputItem(Path(f"img{i:04d}.png")) for i in range(n)]


def loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fpattr-load")]


class CountingLoader:
    """Fake loader: records calls and the number of loads started but not yet consumed."""

    def __init__(self, delay: float = 0.0, jitter: float = 0.0) -> None:
        self.delay, self.jitter = delay, jitter
        self.lock = threading.Lock()
        self.calls: list[str] = []
        self.outstanding = 0
        self.max_outstanding = 0

    def __call__(self, path: Path, *, max_pixels: int) -> str:
        with self.lock:
            self.calls.append(str(path))
            self.outstanding += 1
            self.max_outstanding = max(self.max_outstanding, self.outstanding)
        time.sleep(self.delay + random.random() * self.jitter)
        if "bad" in str(path):
            raise ImageLoadError(path, "bad on purpose")
        if "weird" in str(path):
            raise ValueError("plugin loader\nbroke")
        return f"loaded:{path}:{max_pixels}"

    def consumed(self) -> None:
        with self.lock:
            self.outstanding -= 1


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_order_is_preserved(workers):
    loader = CountingLoader(jitter=0.003)
    inputs = items(60)
    out = list(iter_loaded(inputs, workers=workers, max_pending=8, max_pixels=7, loader=loader))
    assert [item for item, _ in out] == inputs
    assert [result for _, result in out] == [f"loaded:{i.path}:7" for i in inputs]


def test_errors_are_passed_through_without_loading():
    loader = CountingLoader()
    inputs = [
        InputItem(Path("a.png")),
        InputItem(Path("missing.png"), "no such file or directory"),
        InputItem(Path("bad.png")),
        InputItem(Path("weird.png")),
    ]
    out = dict(iter_loaded(inputs, loader=loader))
    assert out[inputs[0]] == "loaded:a.png:64000000"
    for item, expected in [
        (inputs[1], "no such file or directory"),
        (inputs[2], "bad on purpose"),
        (inputs[3], "unexpected ValueError while loading: plugin loader broke"),
    ]:
        assert isinstance(out[item], ImageLoadError)
        assert (out[item].path, out[item].reason) == (str(item.path), expected)
    assert "missing.png" not in loader.calls


def test_in_flight_count_is_bounded():
    loader = CountingLoader(delay=0.001)
    for _item, _result in iter_loaded(items(200), workers=3, max_pending=4, loader=loader):
        loader.consumed()
        time.sleep(0.002)  # the caller is slower than the loader: the window fills up
    assert len(loader.calls) == 200
    assert 2 <= loader.max_outstanding <= 4


def test_inputs_are_consumed_lazily():
    pulled = 0

    def source():
        nonlocal pulled
        for item in items(1000):
            pulled += 1
            yield item

    gen = iter_loaded(source(), workers=2, max_pending=5, loader=CountingLoader())
    next(gen)
    assert pulled <= 6
    gen.close()


def test_early_close_cancels_and_leaves_no_threads():
    loader = CountingLoader(delay=0.02)
    gen = iter_loaded(items(500), workers=2, max_pending=16, loader=loader)
    next(gen)
    gen.close()
    assert loader_threads() == []
    calls = len(loader.calls)
    assert calls < 20  # queued loads were cancelled, not run
    time.sleep(0.1)
    assert len(loader.calls) == calls


def test_exception_in_caller_shuts_the_pool_down():
    with pytest.raises(RuntimeError):
        for _ in iter_loaded(items(100), workers=2, loader=CountingLoader(delay=0.01)):
            raise RuntimeError("inference failed")
    assert loader_threads() == []


def test_invalid_arguments():
    with pytest.raises(ValueError):
        list(iter_loaded(items(1), max_pending=0))
    with pytest.raises(ValueError):
        list(iter_loaded(items(1), workers=-1))


def test_real_files_from_a_hostile_folder(tmp_path):
    cases = make_hostile_inputs(tmp_path / "hostile")
    walked = list(iter_inputs([tmp_path / "hostile"]))
    out = list(iter_loaded(walked, workers=2, max_pending=3))
    assert [item for item, _ in out] == walked
    by_name = {item.path.name: result for item, result in out}
    assert isinstance(by_name["ok.png"], LoadedImage)
    assert isinstance(by_name["huge.png"], ImageLoadError)
    if "broken_symlink" in cases:
        assert by_name["broken.png"].reason.startswith("broken symbolic link")


def test_the_window_is_bounded_by_decoded_bytes_not_only_by_count(tmp_path):
    """Big decoded images: the loads started ahead stay within max_bytes, not max_pending."""
    import threading
    import time

    import numpy as np

    from fpattr.io.loader import LoadedImage
    from fpattr.io.prefetch import iter_loaded
    from fpattr.io.walk import InputItem

    size = 4 << 20  # 4 MiB of pixels per image
    started = []
    lock = threading.Lock()

    def loader(path, max_pixels):
        with lock:
            started.append(path)
        px = np.zeros(size // 4, np.float32).reshape(-1, 1, 1)
        return LoadedImage(
            path=path,
            sha256="0" * 64,
            width=1,
            height=px.shape[0],
            format="PNG",
            mode="RGB",
            bit_depth=8,
            pixels=px,
        )

    items = [InputItem(tmp_path / f"{k}.png") for k in range(40)]
    ahead = []
    gen = iter_loaded(items, workers=2, max_pending=32, max_bytes=3 * size, loader=loader)
    for k, _ in enumerate(gen):
        time.sleep(0.01)  # a slow consumer: loads pile up if nothing stops them
        ahead.append(len(started) - (k + 1))
    assert len(started) == 40
    assert max(ahead) <= 4, ahead  # ~3 images of 4 MiB ahead, never 31


def test_held_bytes_follows_loads_as_they_finish_and_are_taken():
    from concurrent.futures import Future
    from types import SimpleNamespace

    import numpy as np

    from fpattr.io.prefetch import _HeldBytes

    held = _HeldBytes()
    a, b, c, d = Future(), Future(), Future(), Future()
    for f in (a, b, c):
        held.track(f)
    assert held.total(10.0) == 30.0  # all running: at the mean
    a.set_result(SimpleNamespace(pixels=np.zeros(100, np.uint8)))
    b.set_exception(RuntimeError("broken"))  # a failed load holds nothing
    assert held.total(10.0) == 100 + 0 + 10.0
    held.taken(a)
    assert held.total(10.0) == 10.0
    d.set_result(SimpleNamespace(pixels=np.zeros(7, np.uint8)))
    held.track(d)  # already finished when tracked: counted at once
    assert held.total(10.0) == 17.0
    held.taken(c)  # taken before its callback ran: never counted afterwards
    c.set_result(SimpleNamespace(pixels=np.zeros(50, np.uint8)))
    held.taken(b)
    held.taken(d)
    assert held.total(10.0) == 0.0


def test_stall_after_streams_a_slow_source_and_says_when_it_waits():
    from fpattr.io.prefetch import STALL

    def slow():
        for it in items(4):
            time.sleep(0.15)
            yield it

    out = list(iter_loaded(slow(), workers=2, loader=CountingLoader(), stall_after=0.05))
    got = [item for item, _ in out if item is not None]
    assert got == items(4)  # every input, in order
    assert any(res is STALL for _, res in out)  # the waits are said
    # a fast source says nothing
    out = list(iter_loaded(items(50), workers=2, loader=CountingLoader(), stall_after=0.05))
    assert [item for item, _ in out] == items(50)


def test_the_source_is_read_in_the_callers_thread():
    # second break-it pass: a source read in a thread of its own broke sources tied to
    # their thread (a sqlite cursor) and left the thread behind when closed while blocked
    threads = set()

    def source():
        for it in items(6):
            threads.add(threading.get_ident())
            yield it

    out = list(iter_loaded(source(), workers=2, loader=CountingLoader(), stall_after=0.05))
    assert len(out) == 6 and threads == {threading.get_ident()}


def test_a_source_that_raises_comes_after_the_results_before_it():
    def broken():
        yield from items(3)
        raise OSError("the listing failed")

    got = []
    with pytest.raises(OSError, match="the listing failed"):
        for item, _ in iter_loaded(broken(), workers=2, loader=CountingLoader(), stall_after=0.05):
            got.append(item)
    assert got == items(3)
    got = []
    with pytest.raises(OSError, match="the listing failed"):
        for item, _ in iter_loaded(broken(), workers=2, loader=CountingLoader()):
            got.append(item)
    assert got == items(3)
    assert loader_threads() == []
