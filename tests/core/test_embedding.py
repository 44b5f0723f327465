"""ViewBatcher (shared by the pipeline's Embedder and `fpattr evaluate`) and the loader hook."""

from __future__ import annotations

import re
from functools import partial

import numpy as np
import pytest
from PIL import Image

from fpattr.backbones.base import Backbone
from fpattr.backbones.resolve import create_backbone
from fpattr.evaluation.protocol import EvalConfig, Transform, _load_transformed, embed_images
from fpattr.io.loader import load_image
from fpattr.pipeline import Embedder, Settings
from fpattr.testing import write_image
from fpattr.views import MAX_AUTO_VIEWS, ViewBatcher, l2_normalize, make_views


class Patches(Backbone):
    """Each view on its own (no cross-view state), so batching must not change a result."""

    name = "patches"
    input_size = 16
    default_views = 4
    batch_size = 8

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls: list[int] = []  # views per backbone call
        self.fail_on_call = fail_on_call

    @property
    def id(self) -> str:
        return "patches-test"

    @property
    def sha256(self) -> str:
        return "0" * 64

    def embed(self, views: np.ndarray) -> np.ndarray:
        self.calls.append(len(views))
        if len(self.calls) == self.fail_on_call:
            raise RuntimeError("out of memory")
        # 4x4 average pooling per channel, minus the view mean: a (N, 48) float32 feature
        p = views.reshape(len(views), 4, 4, 4, 4, 3).mean(axis=(2, 4)).reshape(len(views), -1)
        return (p - p.mean(axis=1, keepdims=True)).astype(np.float32)


def _images(n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    sizes = [(16, 16), (40, 33), (10, 12), (64, 64), (17, 50), (32, 32)]
    return [rng.random((*sizes[k % len(sizes)], 3), dtype=np.float32) for k in range(n)]


def _run(batcher: ViewBatcher, images: list[np.ndarray]) -> ViewBatcher:
    for k, img in enumerate(images):
        batcher.add(k, img)
        if batcher.full:
            batcher.flush()
    batcher.flush()
    return batcher


def test_batching_across_images_equals_one_image_at_a_time():
    images = _images()
    together = _run(ViewBatcher(bb := Patches(), batch_views=1000), images)
    assert len(bb.calls) == 1  # every image's views in one backbone call
    alone = ViewBatcher(Patches(), batch_views=1000)
    for k, img in enumerate(images):
        alone.add(k, img)
        alone.flush()
    small = _run(ViewBatcher(bb_small := Patches(), batch_views=5), images)
    # flushed when full: one image's views (at most a 4 x 4 grid, by its size) past 5
    assert len(bb_small.calls) > 1 and max(bb_small.calls) < 5 + MAX_AUTO_VIEWS
    assert sorted(together.out) == list(range(len(images))) and not together.errors
    for k in range(len(images)):
        assert np.array_equal(together.out[k], alone.out[k])
        assert np.array_equal(together.out[k], small.out[k])
        assert np.isclose(np.linalg.norm(together.out[k]), 1.0)


def test_pooling_is_l2_per_view_mean_l2():
    img = _images()[3]  # 64x64 -> 16 views of 16 (4 tiles a side, by its size)
    b = _run(ViewBatcher(bb := Patches()), [img])
    from fpattr.views import make_views

    views, _ = make_views(img, 16, 4, by_size=True)
    assert len(views) == 16
    per_view = bb.embed(views)
    assert np.allclose(b.out[0], l2_normalize(l2_normalize(per_view).mean(axis=0)), atol=1e-7)


def test_real_backbone_batching_is_consistent():
    images = [im for im in _images() if min(im.shape[:2]) >= 16]
    bb = create_backbone("spectrum")
    together = _run(ViewBatcher(bb, batch_views=10_000), images)
    one_by_one = _run(ViewBatcher(bb, batch_views=1), images)
    for k in together.out:
        assert np.allclose(together.out[k], one_by_one.out[k], atol=1e-6)


def test_backbone_failure_marks_only_that_batchs_keys():
    images = [np.random.default_rng(k).random((32, 32, 3), dtype=np.float32) for k in range(6)]
    # 4 views per image, 8 views per batch: batches {0, 1}, {2, 3}, {4, 5}; the second fails
    b = _run(ViewBatcher(bb := Patches(fail_on_call=2), n_views=4, batch_views=8), images)
    assert bb.calls == [8, 8, 8]
    assert b.errors == {
        2: "backbone failed: RuntimeError: out of memory",
        3: "backbone failed: RuntimeError: out of memory",
    }
    assert sorted(b.out) == [0, 1, 4, 5]


def test_image_too_odd_for_views_gets_a_views_error():
    images = _images(3)
    b = ViewBatcher(bb := Patches(), batch_views=1000)
    info = b.add("a", images[0])
    assert (info["n_views"], info["padded"]) == (1, False)
    assert b.add("odd", np.zeros((5, 5), np.float32)) is None  # no colour axis
    assert b.add("empty", np.zeros((0, 7, 3), np.float32)) is None
    assert b.add("b", images[1]) is not None
    b.flush()
    assert set(b.errors) == {"odd", "empty"}
    assert all(msg.startswith("views: ") for msg in b.errors.values())
    assert sorted(b.out) == ["a", "b"] and bb.calls == [1 + 4]
    emb, err = b.pop("odd")
    assert emb is None and err.startswith("views: ") and "odd" not in b.errors
    emb, err = b.pop("a")
    assert emb is not None and err is None and "a" not in b.out
    assert b.seconds > 0


def test_flush_with_nothing_pending_does_not_call_the_backbone():
    b = ViewBatcher(bb := Patches())
    b.flush()
    assert bb.calls == [] and not b.out and not b.errors


@pytest.fixture
def image_files(tmp_path):
    paths = [write_image(tmp_path / f"i{k}.png", (48 + 8 * k, 40), seed=k) for k in range(4)]
    (tmp_path / "bad.png").write_bytes(b"nope")
    return [*paths[:2], tmp_path / "bad.png", *paths[2:]]


def test_embedder_results_keep_input_order_and_errors(image_files):
    out = list(Embedder(Patches(fail_on_call=2), Settings(batch_size=4)).embed_paths(image_files))
    assert [e.path for e in out] == [str(p) for p in image_files]
    bad = out[2]
    assert bad.image is None and bad.embedding is None and "not a recognised image" in bad.error
    failed = [e for e in out if e.error and e.error.startswith("backbone failed")]
    assert failed and all(e.embedding is None for e in failed)
    ok = [e for e in out if not e.error]
    assert ok and all(e.n_views > 0 and e.image.pixels is None for e in ok)  # pixels freed


def test_embedder_loader_hook(image_files):
    seen = []

    def squared(path, *, max_pixels):
        seen.append(max_pixels)
        img = load_image(path, max_pixels=max_pixels)
        img.pixels = img.pixels**2
        return img

    bb = Patches()
    plain = list(Embedder(bb, Settings(max_pixels=12345)).embed_paths(image_files))
    hooked = list(Embedder(bb, Settings(max_pixels=12345), loader=squared).embed_paths(image_files))
    assert seen == [12345] * len(image_files)  # every file, with the settings' pixel cap
    assert [e.error for e in hooked] == [e.error for e in plain]
    for p, e, h in zip(image_files, plain, hooked, strict=True):
        if e.error is None:
            ref = _run(ViewBatcher(bb), [load_image(p).pixels ** 2]).out[0]
            assert np.array_equal(h.embedding, ref) and not np.allclose(h.embedding, e.embedding)


def test_embedder_with_the_transform_loader_matches_embed_images(image_files):
    t = Transform(jpeg=70, crop=32)
    bb = create_backbone("spectrum")
    (es,), _ = embed_images(image_files, [bb], EvalConfig(batch_size=3, transform=t))
    loader = partial(_load_transformed, transform=t)
    ref = list(Embedder(bb, Settings(batch_size=3), loader=loader).embed_paths(image_files))
    assert es.ok.tolist() == [e.error is None for e in ref]
    for k, e in enumerate(ref):
        if e.error is None:
            assert np.array_equal(es.emb[k], e.embedding)
        else:
            assert es.errors[k] == e.error


class FlatIsNaN(Patches):
    """Like an extractor that normalises by a spectrum's energy: flat views give NaN."""

    def embed(self, views: np.ndarray) -> np.ndarray:
        out = super().embed(views)
        flat = views.reshape(len(views), -1).std(axis=1) == 0
        out[flat] = np.nan
        return out


def test_non_finite_views_are_left_out_and_an_all_flat_image_is_an_error():
    rng = np.random.default_rng(3)
    half = rng.random((32, 32, 3), dtype=np.float32)
    half[:16] = 0.5  # the top two of its 2x2 grid views are perfectly flat
    flat = np.full((32, 32, 3), 0.25, np.float32)
    b = _run(ViewBatcher(FlatIsNaN(), n_views=4, batch_views=8), [half, flat])
    assert b.dropped == {0: 2}
    views, _ = make_views(half, 16, 4, "grid")
    finite = Patches().embed(views[2:])  # the two bottom views, pooled the same way
    assert np.allclose(b.out[0], l2_normalize(l2_normalize(finite).mean(axis=0)))
    assert "non-finite values for every view" in b.errors[1] and 1 not in b.out
    emb, err = b.pop(0)
    assert emb is not None and err is None and 0 not in b.dropped


def test_embedder_reports_left_out_views(tmp_path):
    half = np.random.default_rng(4).random((32, 32, 3))
    half[:16] = 0.5
    Image.fromarray((half * 255).astype(np.uint8)).save(tmp_path / "half.png")
    (e,) = Embedder(FlatIsNaN(), Settings(views=4)).embed_paths([tmp_path / "half.png"])
    assert e.error is None and e.n_views == 2 and e.dropped_views == 2
    assert np.isfinite(e.embedding).all()


class Wrong(Patches):
    """A plugin-like backbone that returns a wrong shape or all-zero rows."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def embed(self, views: np.ndarray) -> np.ndarray:
        out = super().embed(views)
        if self.mode == "short":
            return out[:-1]
        if self.mode == "1d":
            return out[:, 0]
        return np.zeros_like(out)


@pytest.mark.parametrize("mode", ["short", "1d"])
def test_a_backbone_of_the_wrong_shape_fails_the_batch_and_is_named(mode):
    # break-it 27b: one row short scored every image of the batch with another's rows,
    # silently; a 1-D array was "internal error: AxisError"
    b = _run(ViewBatcher(Wrong(mode), n_views=4, batch_views=8), _images(2))
    assert not b.out and set(b.errors) == {0, 1}
    msg = b.errors[0]
    assert msg.startswith("backbone failed: EmbeddingShapeError: backbone 'patches'")
    assert re.search(r"for (\d+) views, not \(\1, D\): a bug in the backbone$", msg), msg


def test_an_all_zero_embedding_is_no_evidence(image_files):
    # break-it 27b: a backbone returning zero rows had them enrolled (zero "unit" vectors)
    # and attributed (similarity 0, "unknown"); it is flat now, like an image with no
    # fingerprint: left out of enrolment, "insufficient signal" when attributed
    ok = [p for p in image_files if p.name != "bad.png"]
    out = list(Embedder(Wrong("zero"), Settings(batch_size=4)).embed_paths(ok))
    assert all(e.flat and e.error is None and not np.any(e.embedding) for e in out)
    real = list(Embedder(Patches(), Settings(batch_size=4)).embed_paths(ok))
    assert not any(e.flat for e in real)
    from fpattr.session import Session

    embs, refs, left_out = Session(Wrong("zero"), None).embed_references(ok)
    assert embs is None and not refs
    assert {x["error"] for x in left_out} == {
        "insufficient signal: the backbone returned an all-zero embedding"
    }
