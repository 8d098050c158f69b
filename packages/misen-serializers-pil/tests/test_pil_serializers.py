"""misen-serializers-pil: images in every mode through PNG or raw pixels, in containers, in a fresh process,
readable by Pillow alone, and as task arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from misen.serializer import load_result, save_result, serializer_for
from misen.testing import SerializerContract
from misen.testing.processes import run_python, run_without_misen

Image = pytest.importorskip("PIL.Image")


def _image(mode: str, size: tuple[int, int] = (7, 5)) -> Any:
    import random

    raw = random.Random(0).randbytes(len(Image.new(mode, size).tobytes()))
    image = Image.frombytes(mode, size, raw)
    if mode in ("P", "PA"):
        image.putpalette(list(range(256)) * 3, "RGB")
    return image


def same(a: Any, b: Any) -> bool:
    return (
        a.mode == b.mode and a.size == b.size and a.tobytes() == b.tobytes() and a.getpalette() == b.getpalette()
    )


def roundtrip(value: Any, tmp_path: Path, name: str = "r") -> tuple[Any, dict[str, Any]]:
    _, manifest = save_result(value, tmp_path / name)
    return load_result(tmp_path / name), manifest


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_png_modes_are_png_with_pixels_kept(mode: str, tmp_path: Path) -> None:
    image = _image(mode)
    out, manifest = roundtrip(image, tmp_path)
    assert manifest["serializer"] == "pil.image" and manifest["meta"]["format"] == "png"
    assert list(manifest["files"]) == ["image.png"]
    assert same(out, image)
    with Image.open(tmp_path / "r" / "image.png") as f:  # Pillow alone reads it
        # older Pillow opens 16-bit grey PNG as 32-bit "I" (misen converts it back, as checked above)
        assert f.format == "PNG" and f.mode in {mode, "I" if mode == "I;16" else mode} and f.size == image.size


@pytest.mark.parametrize("mode", ["F", "I", "CMYK", "YCbCr", "LAB", "HSV", "PA", "RGBX"])
def test_other_modes_keep_their_own_bytes(mode: str, tmp_path: Path) -> None:
    image = _image(mode)
    out, manifest = roundtrip(image, tmp_path)
    assert manifest["meta"]["format"] == "raw" and manifest["meta"]["mode"] == mode
    assert same(out, image)
    raw = (tmp_path / "r" / "image.raw").read_bytes()
    assert Image.frombytes(mode, image.size, raw).tobytes() == image.tobytes()


def test_transparency_is_kept(tmp_path: Path) -> None:
    image = _image("P")
    image.info["transparency"] = 3
    out, _ = roundtrip(image, tmp_path)
    assert out.info.get("transparency") == 3


def test_a_list_of_images_and_a_dict_of_images_and_metrics(tmp_path: Path) -> None:
    images = [_image("RGB"), _image("F", (4, 4))]
    out, manifest = roundtrip(images, tmp_path)
    assert manifest["serializer"] == "container"
    assert [leaf["serializer"] for leaf in manifest["meta"]["leaves"]] == ["pil.image", "pil.image"]
    assert all(same(a, b) for a, b in zip(out, images, strict=True))
    report = {"sample": images[0], "psnr": 31.5}
    out, _ = roundtrip(report, tmp_path, "d")
    assert same(out["sample"], images[0]) and out["psnr"] == 31.5


def test_loads_in_a_fresh_process_with_only_this_plugin(tmp_path: Path) -> None:
    image = _image("RGBA")
    save_result(image, tmp_path / "r")
    code = (
        "from pathlib import Path\n"
        "import misen.session as s, misen_serializers_pil.hooks as h\n"
        "s.set_current_session(s.make_session(plugins=[h]))\n"
        "from misen.serializer import load_result\n"
        f"im = load_result(Path({str(tmp_path / 'r')!r}))\n"
        "print(im.mode, im.size, im.tobytes().hex())\n"
    )
    stdout = run_python(code, env={**os.environ, "MISEN_NO_ENTRY_POINTS": "1"}, timeout=120)
    assert stdout.split() == ["RGBA", "(7,", "5)", image.tobytes().hex()]
    # and with Pillow alone, misen not even importable
    code = "import sys; from PIL import Image; im = Image.open(sys.argv[1]); print(im.format, im.mode, im.tobytes().hex())"
    assert run_without_misen(code, str(tmp_path / "r" / "image.png")).split() == ["PNG", "RGBA", image.tobytes().hex()]


def test_images_as_task_arguments() -> None:
    from misen.errors import UnhashableArgumentError
    from misen.hashing import hash_value as stable_hash

    a, b = _image("L"), _image("L")
    assert stable_hash(a) == stable_hash(b)
    b.putpixel((0, 0), (a.getpixel((0, 0)) + 1) % 256)
    assert stable_hash(a) != stable_hash(b)
    assert stable_hash(_image("L")) != stable_hash(_image("L").convert("RGB"))
    with pytest.raises(UnhashableArgumentError, match="too large"):
        stable_hash(Image.new("RGB", (4000, 4000)))


def test_registering_imports_no_pillow() -> None:
    code = (
        "import sys, misen.session as p\n"
        "import misen_serializers_pil.hooks\n"
        "p.registry().serializers()\n"
        "assert 'PIL' not in sys.modules\n"
    )
    run_python(code, timeout=120)


class TestImageContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Any:
        return serializer_for(_image("RGB"))

    @pytest.fixture
    def values(self) -> list[Any]:
        return [_image("RGB"), _image("F"), _image("P")]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert same(a, b)
