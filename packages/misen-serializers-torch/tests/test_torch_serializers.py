"""misen-serializers-torch: tensors, state dicts/checkpoints (weights-only), whole modules, devices, hashers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from misen.errors import MisenError  # noqa: E402
from misen.hashing import hash_value  # noqa: E402
from misen.serializer import Serializer, load_result, save_result  # noqa: E402
from misen.testing import SerializerContract  # noqa: E402
from misen_serializers_torch.serializer import CheckpointSerializer, TensorSerializer  # noqa: E402


def roundtrip(value: Any, tmp_path: Path, name: str = "r", **kw: Any) -> tuple[Any, dict[str, Any]]:
    _, manifest = save_result(value, tmp_path / name)
    return load_result(tmp_path / name, **kw), manifest


def same_tensor(a: Any, b: Any) -> bool:
    return (
        type(a) is type(b)
        and a.dtype == b.dtype
        and a.shape == b.shape
        and a.requires_grad == b.requires_grad
        and bool(torch.equal(a.detach(), b.detach()))
    )


class Net(torch.nn.Module):
    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(dim, 2)
        self.register_buffer("steps", torch.tensor(7))

    def forward(self, x: Any) -> Any:
        return self.lin(x)


class TestTensorContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return TensorSerializer()

    @pytest.fixture
    def values(self) -> list[Any]:
        return [
            torch.arange(12, dtype=torch.float16).reshape(3, 4),
            torch.ones(3, requires_grad=True),
            torch.tensor(3),
            torch.nn.Parameter(torch.zeros(2)),
            torch.arange(10)[::2],
        ]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert same_tensor(a, b)


class TestCheckpointContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return CheckpointSerializer()

    @pytest.fixture
    def values(self) -> list[Any]:
        torch.manual_seed(0)
        net = Net()
        optim = torch.optim.Adam(net.parameters())
        net(torch.ones(1, 4)).sum().backward()
        optim.step()
        return [net.state_dict(), {"model": net.state_dict(), "optim": optim.state_dict(), "epoch": 3}]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert type(a) is type(b)
        if isinstance(a, torch.Tensor):
            assert same_tensor(a, b)
        elif isinstance(a, dict):
            assert list(a) == list(b)
            for k in a:
                self.assert_equal(a[k], b[k])
        elif isinstance(a, (list, tuple)):
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                self.assert_equal(x, y)
        else:
            assert a == b


def test_large_tensor_loads_memory_mapped(tmp_path: Path) -> None:
    value = torch.randn(256, 1024)
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["serializer"] == "torch.tensor" and manifest["meta"]["device"] == "cpu"
    assert same_tensor(out, value)
    out_eager, _ = roundtrip(value, tmp_path, "e", mmap=False)
    assert same_tensor(out_eager, value)


def test_state_dict_is_one_weights_only_file(tmp_path: Path) -> None:
    net = Net()
    out, manifest = roundtrip(net.state_dict(), tmp_path)
    assert manifest["serializer"] == "torch.state_dict" and list(manifest["files"]) == ["checkpoint.pt"]
    assert list(out) == ["steps", "lin.weight", "lin.bias"]
    fresh = Net()
    fresh.load_state_dict(out)
    assert torch.equal(fresh.lin.weight, net.lin.weight)
    # what was written loads with torch's own weights-only loader: no code runs
    torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)


def test_whole_module_round_trips_and_needs_its_class(tmp_path: Path) -> None:
    net = Net(dim=3)
    out, manifest = roundtrip(net, tmp_path)
    assert manifest["serializer"] == "torch.module"
    assert manifest["meta"]["class"].endswith(":Net")
    assert type(out).__name__ == "Net" and torch.equal(out(torch.ones(1, 3)), net(torch.ones(1, 3)))

    meta = json.loads((tmp_path / "r" / "manifest.json").read_text())
    meta["meta"]["class"] = "no_such_module_xyz:Net"
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(meta))
    with pytest.raises(MisenError, match="cannot be imported here"):
        load_result(tmp_path / "r")


def test_module_of_a_local_class_uses_dill(tmp_path: Path) -> None:
    class Local(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2))

    out, manifest = roundtrip(Local(), tmp_path)
    assert manifest["meta"]["engine"] == "dill"
    assert torch.equal(out.w, torch.ones(2))


def test_tensor_from_a_missing_device_loads_on_cpu_with_a_warning(tmp_path: Path) -> None:
    save_result(torch.ones(3), tmp_path / "r")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    manifest["meta"]["device"] = "cuda:7"  # as written on a GPU machine
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(manifest))
    if torch.cuda.is_available() and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    with pytest.warns(RuntimeWarning, match="saved from device cuda:7"):
        out = load_result(tmp_path / "r")
    assert out.device.type == "cpu" and torch.equal(out, torch.ones(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensor_and_state_dict_come_back_on_cuda(tmp_path: Path) -> None:
    value = torch.arange(6.0, device="cuda").reshape(2, 3)
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["meta"]["device"] == "cuda:0" and out.device.type == "cuda"
    assert torch.equal(out.cpu(), value.cpu())
    sd = Net().cuda().state_dict()
    out_sd, manifest = roundtrip(sd, tmp_path, "sd")
    assert set(manifest["meta"]["devices"].values()) == {"cuda:0"}
    assert all(t.device.type == "cuda" for t in out_sd.values())


def test_mixed_container_splits_tensors_and_arrays(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    value = {"emb": torch.ones(4, 4), "table": np.arange(3), ("lr", 0.1): 0.5}
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["serializer"] == "container"
    assert sorted(leaf["serializer"] for leaf in manifest["meta"]["leaves"]) == [
        "numpy.ndarray",
        "torch.tensor",
    ]
    assert (
        torch.equal(out["emb"], value["emb"]) and list(out["table"]) == [0, 1, 2] and out[("lr", 0.1)] == 0.5
    )


def test_plain_dict_is_not_a_checkpoint() -> None:
    ser = CheckpointSerializer()
    assert not ser.match({"a": 1})
    assert not ser.match({})
    assert not ser.match({(0.1, 2): torch.ones(1)})  # tuple keys go to the generic container
    assert ser.match([torch.ones(1), 3])


def test_dtype_and_device_hash_as_arguments() -> None:
    assert hash_value(torch.float32) == hash_value(torch.float)
    assert hash_value(torch.float32) != hash_value(torch.float64)
    assert hash_value(torch.device("cuda:0")) != hash_value(torch.device("cuda"))
    assert hash_value(torch.Size([2, 3])) != hash_value((2, 3))
    assert hash_value(torch.bfloat16) == "3ba65f037ccbfd68add62d0ebd2a8865"  # pinned: identities never change


def test_registering_imports_no_torch() -> None:
    code = (
        "import sys, misen.session as p\n"
        "import misen_serializers_torch.hooks\n"
        "p.registry().serializers(); p.registry().hashers()\n"
        "from misen.serializer import serializer_for; serializer_for({'a': 1})\n"
        "assert 'torch' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_dict_subclasses_are_left_to_their_own_serializers() -> None:
    class Weights(dict):  # type: ignore[type-arg]
        def __bool__(self) -> bool:
            raise ValueError("ambiguous, like a sparse matrix")

    assert not CheckpointSerializer().match(Weights(a=torch.ones(1)))


def test_a_slice_stores_only_its_own_elements(tmp_path: Path) -> None:
    big = torch.arange(1_000_000, dtype=torch.float32)
    out, manifest = roundtrip(big[10:13], tmp_path)
    assert torch.equal(out, torch.tensor([10.0, 11.0, 12.0]))
    assert manifest["files"]["tensor.pt"]["size"] < 100_000, "the whole 4 MB storage was written"


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
def test_nested_tensor_round_trips(tmp_path: Path) -> None:
    value = torch.nested.nested_tensor([torch.ones(2), torch.zeros(3)])
    out, manifest = roundtrip(value, tmp_path)
    assert manifest["meta"]["shape"] is None
    assert [t.tolist() for t in out.unbind()] == [[1.0, 1.0], [0.0, 0.0, 0.0]]
