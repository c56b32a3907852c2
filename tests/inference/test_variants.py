"""Versions to choose from (issue 23): an index of colour photos, built and read back, the
K versions of a photo (different, each decoded with one prior for the whole photo, named
as samples are) and what a bad index file gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from chromatize.cli import app
from chromatize.decoding import Decoding
from chromatize.errors import UsageError
from chromatize.inference import variants as v
from chromatize.inference.pipeline import Colorizer
from conftest import gray_photo, make_color_photo, save_tiny_model

runner = CliRunner()
#: Photos of clearly different colours: each a tint of one hue, so their histograms differ.
TINTS = [(200, 40, 30), (30, 60, 200), (40, 170, 60), (220, 190, 40), (150, 50, 170),
         (40, 170, 180)]


def tinted(rgb: tuple[int, int, int], seed: int) -> Image.Image:
    base = np.asarray(make_color_photo(40, 56, seed=seed), dtype=np.float64)
    return Image.fromarray((0.4 * base + 0.6 * np.array(rgb)).astype(np.uint8))


@pytest.fixture
def classifier(tmp_path) -> Colorizer:
    return Colorizer.load(save_tiny_model(tmp_path, "effnet_lite0_cls", width=8), device="cpu",
                          backend="torch")


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "town"
    folder.mkdir()
    for i, rgb in enumerate(TINTS):
        tinted(rgb, i).save(folder / f"p{i}.png")
    gray_photo().save(folder / "gray.png")
    return folder


@pytest.fixture
def index_file(classifier, photos, tmp_path):
    path = tmp_path / "town.index"
    v.write_index(sorted(photos.glob("*.png")), path, classifier, terms="CC0")
    return path


def test_an_index_round_trips_and_carries_its_photos_and_terms(classifier, photos, tmp_path):
    built, skipped = v.build_index(sorted(photos.glob("*.png")), classifier, terms="CC0")
    assert [p.name for p, _ in skipped] == ["gray.png"] and len(built) == len(TINTS)
    path = tmp_path / "town.index"
    built.save(path)
    read = v.load_index(path)
    # 8-bit square roots: the embeddings keep their directions, the histograms their shape
    assert np.all(np.sum(read.embeddings * built.embeddings, axis=1) > 0.999)
    assert np.abs(read.hists - built.hists).sum(axis=1).max() < 0.05
    meta = json.loads(v.meta_path(path).read_text())
    assert meta["terms"] == "CC0" and meta["count"] == len(TINTS)
    assert meta["photos"] == [f"p{i}.png" for i in range(len(TINTS))]
    # the nearest photo to an indexed one is itself
    idx, sims = read.nearest(read.embeddings[3], 2)
    assert idx[0] == 3 and sims[0] == pytest.approx(1, abs=1e-5)


def test_variants_are_k_different_versions_each_one_prior_for_the_photo(classifier, index_file):
    gray = gray_photo()
    outs = classifier.colorize(gray, variants=3, index=index_file)
    assert len(outs) == 3 and all(o.size == gray.size for o in outs)
    arrays = [np.asarray(o, dtype=np.int16) for o in outs]
    assert all(np.abs(a - b).mean() > 0.5 for i, a in enumerate(arrays) for b in arrays[i + 1:])
    # each version is the photo decoded with one image-level prior, the same for every pixel
    source = classifier.prepare(gray)
    output = classifier.infer(source)
    priors = classifier.variant_priors(output, 3, index_file)
    # the automatic result first, then two priors of their own
    assert priors[0] is None and len({p.hist for p in priors[1:]}) == 2
    assert np.array_equal(np.asarray(outs[0]), np.asarray(classifier.colorize(gray)))
    for out, prior in zip(outs, priors):
        assert np.array_equal(np.asarray(out),
                              np.asarray(classifier.finish(source, output, Decoding(prior=prior))))
    # reproducible, and strength 0 gives the automatic result
    again = classifier.colorize(gray, variants=3, index=index_file)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(outs, again))
    flat = classifier.colorize(gray, variants=2, index=index_file, strength=0)
    assert np.array_equal(np.asarray(flat[1]), np.asarray(classifier.colorize(gray)))


def test_versions_come_heaviest_group_first_by_similarity():
    q = 261
    hists = np.full((6, q), 1e-4)
    hists[:4, 10] = 1  # four photos of one colour, two of another
    hists[4:, 200] = 1
    hists /= hists.sum(1, keepdims=True)
    emb = np.sqrt(hists).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    index = v.Index(emb, hists.astype(np.float32))
    # Like the first four photos: their colour first; like the last two: theirs first,
    # though fewer photos have it (each photo counts by its similarity).
    first, second = v.variant_priors(index, emb[0], 2)
    assert np.argmax(first.array()) == 10 and np.argmax(second.array()) == 200
    first, second = v.variant_priors(index, emb[5], 2)
    assert np.argmax(first.array()) == 200 and np.argmax(second.array()) == 10
    with pytest.raises(UsageError, match="holds 6 photos"):
        v.variant_priors(index, emb[0], 7)
    # K versions: the automatic result (no prior), then K - 1 of these
    auto, first, second = v.versions(index, emb[0], 3)
    assert auto is None and np.argmax(first.array()) == 10 and np.argmax(second.array()) == 200
    assert v.versions(index, emb[0], 1) == [None]


def test_few_versions_are_group_means_and_many_are_real_photos_colours():
    rng = np.random.default_rng(0)
    hists = rng.random((40, 261)) ** 8  # each photo a few strong colours
    hists /= hists.sum(1, keepdims=True)
    emb = np.sqrt(hists).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    index = v.Index(emb, hists.astype(np.float32))

    def is_a_photo(prior) -> bool:
        return bool(np.abs(hists - prior.array()).max(axis=1).min() < 1e-5)

    # 7 priors (8 versions): each one indexed photo's histogram, all different
    many = v.variant_priors(index, emb[0], v.MEDOID_FULL)
    assert all(is_a_photo(p) for p in many) and len({p.hist for p in many}) == len(many)
    # 3 priors (4 versions): each its group's mean, no single photo's
    assert not any(is_a_photo(p) for p in v.variant_priors(index, emb[0], v.MEDOID_FROM))


def test_bad_variants_and_index_files_are_one_line(classifier, tmp_path, index_file):
    gray = gray_photo()
    bad = tmp_path / "bad.index"
    bad.write_text("not an index")
    for path, reason in ((bad, "bad.index: not a chromatize index"),
                         (tmp_path / "none.index", "none.index: no such index file")):
        with pytest.raises(v.IndexFileError, match=reason):
            classifier.colorize(gray, variants=2, index=path)
    np.savez(tmp_path / "shape.npz", embeddings=np.zeros((2, 5), np.uint8),
             hists=np.zeros((2, 5), np.uint8))
    with pytest.raises(v.IndexFileError, match="shape"):
        v.load_index(tmp_path / "shape.npz")
    with pytest.raises(UsageError, match="no index"):
        classifier.colorize(gray, variants=2)
    with pytest.raises(UsageError, match="variants must be a whole number from 1 to 16"):
        classifier.colorize(gray, variants=17, index=index_file)
    with pytest.raises(UsageError, match="without samples, a reference or a palette"):
        classifier.colorize(gray, variants=2, index=index_file, palette="#c03020")


def test_cli_index_and_variants_write_named_versions(tmp_path, photos):
    model = save_tiny_model(tmp_path, "effnet_lite0_cls", width=8)
    index = tmp_path / "town.index"
    r = runner.invoke(app, ["index", str(photos), "-o", str(index), "-m", str(model), "-q",
                            "--terms", "CC0"])
    assert r.exit_code == 0, r.output
    assert f"{len(TINTS)} photos (1 left out)" in r.output and index.is_file()
    again = runner.invoke(app, ["index", str(photos), "-o", str(index), "-m", str(model)])
    assert again.exit_code == 2 and "exists" in again.output
    gray_photo().save(tmp_path / "old.png")
    out = tmp_path / "out"
    r = runner.invoke(app, ["colorize", str(tmp_path / "old.png"), "-o", str(out), "-m",
                            str(model), "--variants", "3", "--index", str(index), "-q"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["old_1.png", "old_2.png", "old_3.png"]
    (tmp_path / "bad.index").write_bytes(b"PK\x03\x04 broken")
    r = runner.invoke(app, ["colorize", str(tmp_path / "old.png"), "-o", str(out), "-m",
                            str(model), "--variants", "3", "--index", str(tmp_path / "bad.index"),
                            "--overwrite"])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert lines == ["error: bad.index: not a chromatize index (not a readable .npz file)"]
    r = runner.invoke(app, ["colorize", str(tmp_path / "old.png"), "-o", str(out), "-m",
                            str(model), "--variants", "2", "--samples", "2", "--index",
                            str(index)])
    assert r.exit_code == 2 and "without --samples" in r.output


def test_a_fix_with_a_version_writes_that_version_and_options_given_win(tmp_path, photos):
    model = save_tiny_model(tmp_path, "effnet_lite0_cls", width=8)
    index = tmp_path / "town.index"
    r = runner.invoke(app, ["index", str(photos), "-o", str(index), "-m", str(model), "-q"])
    assert r.exit_code == 0, r.output
    gray_photo().save(tmp_path / "old.png")
    common = ["-m", str(model), "--index", str(index), "-q"]
    points = [{"x": 10, "y": 10, "color": "#c03020", "radius": 3}]
    (tmp_path / "points.json").write_text(json.dumps(points))
    r = runner.invoke(app, ["colorize", str(tmp_path / "old.png"), "-o", str(tmp_path / "all"),
                            "--variants", "3", "--strength", "1.5", "--marks",
                            str(tmp_path / "points.json"), *common])
    assert r.exit_code == 0, r.output
    # The page's fix: version 2 of 3 at pull 1.5, corrected by a point.
    fix = tmp_path / "old_fix.json"
    fix.write_text(json.dumps({"marks": points, "variant": 2, "k": 3, "strength": 1.5,
                               "model": "x", "photo": "old.png", "version": 1}))
    r = runner.invoke(app, ["colorize", str(tmp_path / "old.png"), "-o", str(tmp_path / "one"),
                            "--marks", str(fix), *common])
    assert r.exit_code == 0, r.output
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["old.png"]
    one = np.asarray(Image.open(tmp_path / "one" / "old.png"))
    assert np.array_equal(one, np.asarray(Image.open(tmp_path / "all" / "old_2.png")))
    # A palette given here wins over the fix's version: one photo, steered by the palette.
    r = runner.invoke(app, ["colorize", str(tmp_path / "old.png"), "-o", str(tmp_path / "pal"),
                            "--marks", str(fix), "--palette", "#c03020", "-m", str(model),
                            "-q"])
    assert r.exit_code == 0, r.output
    assert [p.name for p in (tmp_path / "pal").iterdir()] == ["old.png"]


def test_a_fix_made_with_a_reference_says_to_give_it(tmp_path):
    model = save_tiny_model(tmp_path, "effnet_lite0_cls", width=8)
    gray_photo().save(tmp_path / "old.png")
    tinted(TINTS[0], 0).save(tmp_path / "town.png")
    fix = tmp_path / "old_fix.json"
    fix.write_text(json.dumps({"marks": [{"x": 5, "y": 5, "color": "#c03020", "radius": 2}],
                               "reference": "town.png", "strength": 1.0}))
    r = runner.invoke(app, ["colorize", str(tmp_path / "old.png"), "-o", str(tmp_path / "a"),
                            "--marks", str(fix), "-m", str(model)])
    assert "made with the reference photo 'town.png': give it with --reference" in r.output
    r = runner.invoke(app, ["colorize", str(tmp_path / "old.png"), "-o", str(tmp_path / "b"),
                            "--marks", str(fix), "-m", str(model), "--reference",
                            str(tmp_path / "town.png"), "-q"])
    assert r.exit_code == 0 and r.output == "", r.output
