"""`misen.serializer.class_reference` and `import_reference`: how a serializer records the class it must rebuild,
and finds it again where the result is loaded (used by the boosting, transformers, Keras and torch serializers)."""

from __future__ import annotations

import argparse
import collections

import pytest
from misen.errors import MisenError
from misen.serializer import class_reference, import_reference


def test_a_module_level_class_goes_there_and_back() -> None:
    name = class_reference(collections.OrderedDict())
    assert name == "collections:OrderedDict"
    assert import_reference(name) is collections.OrderedDict


def test_a_nested_class_goes_there_and_back() -> None:
    nested = argparse._SubParsersAction._ChoicesPseudoAction
    value = nested.__new__(nested)
    name = class_reference(value)
    assert name == "argparse:_SubParsersAction._ChoicesPseudoAction"
    assert import_reference(name) is nested


def test_a_class_defined_in_a_function_is_refused_with_its_name() -> None:
    class Local:
        pass

    with pytest.raises(
        MisenError,
        match=r"the model class .*Local is defined in .*test_core_class_reference, which "
        r"another process cannot import; define it in an importable module",
    ):
        class_reference(Local(), what="model class")


def test_a_class_of_the_script_that_was_run_is_refused() -> None:
    script_class = type("Net", (), {"__module__": "__main__"})
    with pytest.raises(
        MisenError, match=r"^the class Net is defined in __main__, which another process cannot import"
    ):
        class_reference(script_class())


def test_a_missing_module_says_what_the_result_is_and_why() -> None:
    with pytest.raises(MisenError) as caught:
        import_reference("misen_no_such_pkg.models:Net")
    assert str(caught.value) == (
        "this result is a misen_no_such_pkg.models.Net, which cannot be imported here "
        "(No module named 'misen_no_such_pkg')"
    )


def test_a_missing_attribute_gives_what_and_advice() -> None:
    with pytest.raises(MisenError) as caught:
        import_reference("collections:NoSuchDict", what="model of class", advice="make the class importable")
    message = str(caught.value)
    assert message.startswith(
        "this result is a model of class collections.NoSuchDict, which cannot be imported here ("
    )
    assert "NoSuchDict" in message.split("(", 1)[1]
    assert message.endswith("); make the class importable")


@pytest.mark.parametrize("name", [":Net", "..models:Net"])
def test_a_damaged_name_is_refused_with_the_same_message(name: str) -> None:
    with pytest.raises(MisenError, match="which cannot be imported here"):
        import_reference(name)
