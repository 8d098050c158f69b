"""misen-serializers-huggingface: datasets through save_to_disk, transformers models (built from a small config,
never downloaded), tokenizers (from a vocabulary written here) and configs through save_pretrained; round trips
that mean something (rows and features, logits on fixed inputs, token ids), fresh processes, the folders opened by
the libraries alone, containers, and the hasher. The libraries are imported inside fixtures and tests.

The transformers model tests need PyTorch, which is not in the lock (PyPI's Linux wheel is a multi-GB CUDA build;
CI installs the CPU wheel): they skip, saying so, where torch is missing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from misen.hashing import hash_value
from misen.serializer import Serializer, load_result, save_result, serializer_for, serializer_named
from misen.testing import SerializerContract
from misen.testing.processes import only_plugins, run_python

PLUGINS = "serializers-huggingface"
TEXTS = ["hello world", "misen caches results", "unknown words here", ""]


@pytest.fixture(scope="session", autouse=True)
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No hub: offline, and every cache in a temporary folder (set before transformers or datasets is imported)."""
    home = tmp_path_factory.mktemp("hf_home")
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_HOME", "HF_DATASETS_OFFLINE")}
    os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(home))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def dataset() -> Any:
    import datasets

    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["neg", "pos"]),
            "scores": datasets.Sequence(datasets.Value("float32")),
        }
    )
    rows = {"text": TEXTS, "label": [0, 1, 1, 0], "scores": [[0.5], [1.0, 2.0], [], [3.5]]}
    return datasets.Dataset.from_dict(rows, features=features)


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """A word-level tokenizer over a small vocabulary written here (nothing downloaded)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "misen", "caches", "results"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )


@pytest.fixture(scope="session")
def config() -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=9,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )


@pytest.fixture(scope="session")
def model(config: Any) -> Any:
    torch = pytest.importorskip(
        "torch", reason="transformers models need PyTorch (CI installs the CPU wheel)"
    )
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(config).eval()


def logits(model: Any, tokenizer: Any) -> Any:
    import torch

    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def assert_same_dataset(a: Any, b: Any) -> None:
    assert type(a) is type(b) and a.features == b.features and a.to_dict() == b.to_dict()


class TestDatasetContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return serializer_named("datasets.dataset")

    @pytest.fixture
    def values(self, dataset: Any) -> list[Any]:
        return [dataset, dataset.shuffle(seed=1).select([2, 0]), dataset.select([])]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert type(a) is type(b) and a.features == b.features and a.to_dict() == b.to_dict()


class TestDatasetDictContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return serializer_named("datasets.dataset_dict")

    @pytest.fixture
    def values(self, dataset: Any) -> list[Any]:
        import datasets

        return [
            datasets.DatasetDict({"train": dataset, "test": dataset.select([1]), "none": dataset.select([])})
        ]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert type(a) is type(b) and list(a) == list(b)
        for split in a:
            assert_same_dataset(a[split], b[split])


class TestTokenizerContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return serializer_named("transformers.tokenizer")

    @pytest.fixture
    def values(self, tokenizer: Any) -> list[Any]:
        return [tokenizer]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert type(a) is type(b) and a.get_vocab() == b.get_vocab()
        assert a(TEXTS, padding=True)["input_ids"] == b(TEXTS, padding=True)["input_ids"]
        assert a.all_special_tokens == b.all_special_tokens


class TestConfigContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return serializer_named("transformers.config")

    @pytest.fixture
    def values(self, config: Any) -> list[Any]:
        return [config]

    def assert_equal(self, a: Any, b: Any) -> None:
        assert type(a) is type(b) and a.to_dict() == b.to_dict()


class TestModelContract(SerializerContract):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return serializer_named("transformers.model")

    @pytest.fixture
    def values(self, model: Any) -> list[Any]:
        import copy

        import torch

        return [model, copy.deepcopy(model).to(torch.bfloat16).train()]

    @pytest.fixture(autouse=True)
    def _tokenizer(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def assert_equal(self, a: Any, b: Any) -> None:
        import torch

        assert type(a) is type(b) and a.dtype == b.dtype and a.training == b.training
        a.eval(), b.eval()
        assert torch.equal(logits(a, self.tokenizer), logits(b, self.tokenizer))


def test_the_folders_open_with_the_libraries_alone(
    model: Any, tokenizer: Any, dataset: Any, tmp_path: Path
) -> None:
    import datasets
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    save_result({"model": model, "tokenizer": tokenizer, "data": dataset}, tmp_path / "r")
    leaves = sorted(p.parent.parent.name for p in (tmp_path / "r").rglob("pretrained/*.json"))
    assert leaves, "no save_pretrained folder"
    folders = {
        p.name: p.parent
        for p in (tmp_path / "r").rglob("*")
        if p.name in ("model.safetensors", "tokenizer.json")
    }
    again = AutoModelForSequenceClassification.from_pretrained(
        folders["model.safetensors"], local_files_only=True
    )
    tok = AutoTokenizer.from_pretrained(folders["tokenizer.json"], local_files_only=True)
    assert torch.equal(logits(again.eval(), tok), logits(model, tokenizer))
    data_dir = next((tmp_path / "r").rglob("state.json")).parent
    assert datasets.load_from_disk(str(data_dir)).to_dict() == dataset.to_dict()


def test_a_dict_of_model_tokenizer_and_metrics(
    model: Any, tokenizer: Any, config: Any, tmp_path: Path
) -> None:
    import torch

    value = {"model": model, "tokenizer": tokenizer, "config": config, "metrics": {"f1": 0.5}}
    _, manifest = save_result(value, tmp_path / "r")
    assert manifest["serializer"] == "container"
    assert sorted(leaf["serializer"] for leaf in manifest["meta"]["leaves"]) == [
        "transformers.config",
        "transformers.model",
        "transformers.tokenizer",
    ]
    assert not [name for name in manifest["files"] if name.endswith((".pt", ".bin"))], (
        "weights are safetensors"
    )
    out = load_result(tmp_path / "r")
    assert torch.equal(logits(out["model"], out["tokenizer"]), logits(model, tokenizer))
    assert out["metrics"] == {"f1": 0.5} and out["config"].to_dict() == config.to_dict()


_LOAD = """
import json, sys
from pathlib import Path
from misen.serializer import load_result
out = load_result(Path(sys.argv[1]))
res = {"data": out["data"]["train"].to_dict(), "ids": out["tokenizer"](sys.argv[2].split("|"))["input_ids"]}
if "model" in out:
    import torch
    batch = out["tokenizer"](sys.argv[2].split("|"), padding=True, return_tensors="pt")
    with torch.no_grad():
        res["logits"] = out["model"](**batch).logits.tolist()
print(json.dumps(res))
"""


def test_results_load_in_a_fresh_process_with_only_this_plugin(
    dataset: Any, tokenizer: Any, config: Any, tmp_path: Path
) -> None:
    import datasets

    value: dict[str, Any] = {"data": datasets.DatasetDict({"train": dataset}), "tokenizer": tokenizer}
    try:
        import torch
        from transformers import BertForSequenceClassification

        torch.manual_seed(1)
        value["model"] = BertForSequenceClassification(config).eval()
    except ImportError:
        pass
    save_result(value, tmp_path / "r")
    stdout = run_python(_LOAD, str(tmp_path / "r"), "|".join(TEXTS), env=only_plugins(PLUGINS, tmp_path), timeout=300)
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["data"] == dataset.to_dict()
    assert out["ids"] == tokenizer(TEXTS)["input_ids"]
    if "model" in value:
        assert out["logits"] == logits(value["model"], tokenizer).tolist()


def test_registry_dispatch(dataset: Any, tokenizer: Any, config: Any) -> None:
    import datasets

    assert serializer_for(dataset).PLUGIN_NAME == "datasets.dataset"
    assert serializer_for(datasets.DatasetDict({"a": dataset})).PLUGIN_NAME == "datasets.dataset_dict"
    assert serializer_for(tokenizer).PLUGIN_NAME == "transformers.tokenizer"
    assert serializer_for(config).PLUGIN_NAME == "transformers.config"


def test_a_model_wins_over_the_torch_module_pickle(model: Any) -> None:
    assert serializer_for(model).PLUGIN_NAME == "transformers.model"


def test_registering_imports_no_hugging_face_library(tmp_path: Path) -> None:
    code = (
        "import sys, misen.session as p\n"
        "p.registry().serializers(); p.registry().hashers()\n"
        "from misen.hashing import hash_value; hash_value({'a': 1})\n"
        "bad = [m for m in ('datasets', 'transformers', 'torch', 'pyarrow') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    run_python(code, env=only_plugins(PLUGINS, tmp_path), timeout=120)


def test_configs_and_features_hash_as_arguments(config: Any, dataset: Any) -> None:
    import datasets
    from transformers import BertConfig

    small = BertConfig(num_hidden_layers=2)
    assert hash_value(small) == hash_value(BertConfig(num_hidden_layers=2))
    assert hash_value(small) != hash_value(BertConfig(num_hidden_layers=3))
    assert hash_value(BertConfig()) == hash_value(BertConfig(num_hidden_layers=12))  # the default, unchanged
    assert hash_value(small) == "327507669d02882e7c5f4f5556f25984"  # pinned: identities never change
    assert hash_value(dataset.features) == hash_value(datasets.Features(dataset.features))
    assert hash_value(dataset.features) != hash_value(datasets.Features({"text": datasets.Value("string")}))


_MISSING = """
import sys
from pathlib import Path
from misen.serializer import load_result
try:
    load_result(Path(sys.argv[1]))
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_without_this_plugin_a_stored_result_names_the_extra_to_install(
    dataset: Any, config: Any, tmp_path: Path
) -> None:
    values, extras = [dataset, config], ['pip install "misen[huggingface]"'] * 2
    for i, value in enumerate(values):
        save_result(value, tmp_path / str(i))
        out = run_python(_MISSING, str(tmp_path / str(i)), env=only_plugins("", tmp_path), timeout=120)
        assert "which is not installed" in out and extras[i] in out, out
