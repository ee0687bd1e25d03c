"""Generated images land under LSTMQ_IMAGE_DIR in a sharded layout no user input can steer."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from lstmq.errors import ConfigError
from lstmq.worker.images import absolute, encode_png, relative_path, store_image

VERSION = "0123456789abcdef"


def picture(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)


def test_layout_is_model_version_two_hash_shards_and_the_document_id():
    h = hashlib.sha256(b"12345").hexdigest()
    assert relative_path("shapes", VERSION, 12345) == f"shapes/{VERSION}/{h[:2]}/{h[2:4]}/12345.png"


def test_documents_spread_over_many_shard_folders():
    folders = {relative_path("shapes", VERSION, i).rsplit("/", 1)[0] for i in range(5000)}
    assert len(folders) > 4000  # 65,536 folders: a million images -> ~15 files each


@pytest.mark.parametrize("model", ["../etc", "a/b", "..", "", "x" * 200, "sh apes", "/abs"])
def test_model_names_that_could_steer_a_path_are_refused(model):
    with pytest.raises(ConfigError):
        relative_path(model, VERSION, 1)


@pytest.mark.parametrize("version", ["../../x", "ABC/", "", "g00d"])
def test_versions_must_be_hex(version):
    with pytest.raises(ConfigError):
        relative_path("shapes", version, 1)


def test_stored_png_holds_the_exact_pixels_and_its_hash(tmp_path):
    image = picture()
    stored = store_image(tmp_path, "shapes", VERSION, 7, image)
    data = (tmp_path / stored.path).read_bytes()
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert (stored.width, stored.height) == (64, 64)
    assert (np.asarray(Image.open(tmp_path / stored.path)) == image).all()


@pytest.mark.parametrize("shape", [(64, 64), (5, 7), (1, 1), (33, 2)])
def test_png_encoder_output_decodes_to_the_same_pixels_with_pillow(shape):
    image = np.random.default_rng(3).integers(0, 256, (*shape, 3), dtype=np.uint8)
    image[: shape[0] // 2] = (230, 40, 40)  # flat runs, as generated images have
    decoded = Image.open(io.BytesIO(encode_png(image)))
    decoded.load()  # checks the chunks' CRCs and the zlib stream
    assert (decoded.mode, decoded.size) == ("RGB", (shape[1], shape[0]))
    assert (np.asarray(decoded) == image).all()


def test_png_encoder_refuses_what_is_not_an_rgb_image():
    with pytest.raises(ValueError, match="RGB|\\(H, W, 3\\)"):
        encode_png(np.zeros((4, 4, 4), dtype=np.uint8))


def test_rewriting_a_document_replaces_its_file_and_leaves_no_temporaries(tmp_path):
    first = store_image(tmp_path, "shapes", VERSION, 7, picture(1))
    second = store_image(tmp_path, "shapes", VERSION, 7, picture(1))
    assert first == second
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [tmp_path / first.path]


def test_a_shard_folder_removed_while_a_worker_runs_is_made_again(tmp_path):
    import shutil

    first = store_image(tmp_path, "shapes", VERSION, 7, picture(1))
    shutil.rmtree(tmp_path / "shapes")  # e.g. an operator pruning old images
    assert store_image(tmp_path, "shapes", VERSION, 7, picture(1)) == first
    assert (tmp_path / first.path).is_file()


def test_absolute_refuses_paths_that_leave_the_image_dir(tmp_path):
    assert absolute(tmp_path, "shapes/x.png") == (tmp_path / "shapes/x.png").resolve()
    with pytest.raises(ConfigError):
        absolute(tmp_path, "../outside.png")
    with pytest.raises(ConfigError):
        absolute(tmp_path, "/etc/passwd")
