import pytest

from core.spec.architectures import ARCHITECTURES, architecture_fit_errors, image_shape


@pytest.mark.parametrize(
    "shape, expected",
    [((64,), (1, 8, 8)), ((28, 28), (1, 28, 28)), ((3, 32, 32), (3, 32, 32)), ((30,), None), ((9,), None), ((2,), None)],
)
def test_image_shape(shape, expected):
    assert image_shape(shape) == expected


@pytest.mark.parametrize(
    "name, params, shape, ok",
    [
        ("linear", {}, (4,), True),
        ("mlp", {}, (3, 32, 32), True),
        ("cnn2d", {}, (64,), True),
        ("cnn2d", {}, (30,), False),
        ("cnn2d", {}, (3, 3), False),
        ("resnet", {"stages": 4}, (64,), True),
        ("resnet", {"stages": 4}, (1, 4, 4), False),
        ("cnn1d", {"kernel_size": 3}, (4,), True),
        ("cnn1d", {"kernel_size": 5}, (4,), False),
        ("transformer", {"d_model": 32, "heads": 4}, (13,), True),
        ("transformer", {"d_model": 32, "heads": 5}, (13,), False),
    ],
)
def test_fit(name, params, shape, ok):
    errors = architecture_fit_errors(name, params, shape)
    assert (not errors) == ok, errors


def test_every_architecture_has_a_json_schema_with_defaults():
    for entry in ARCHITECTURES.values():
        schema = entry.json_schema()
        assert set(schema["properties"]) == {h.name for h in entry.hyperparameters}
        for h in entry.hyperparameters:
            assert schema["properties"][h.name]["default"] == h.default


@pytest.mark.parametrize(
    ("name", "params", "shape", "field"),
    [
        ("cnn1d", {"kernel_size": 5}, (4,), "kernel_size"),
        ("resnet", {"stages": 4}, (1, 4, 4), "stages"),
        ("transformer", {"d_model": 32, "heads": 5}, (13,), "heads"),
        ("cnn2d", {}, (30,), None),  # the data's shape is at fault, not a field
    ],
)
def test_each_misfit_names_the_hyperparameter_at_fault(name, params, shape, field):
    (found, message), = architecture_fit_errors(name, params, shape)
    assert found == field and message
