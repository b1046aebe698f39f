import ebrm


def test_every_exported_name_resolves():
    for name in ebrm.__all__:
        assert getattr(ebrm, name) is not None, name


def test_unknown_attribute_raises():
    import pytest

    with pytest.raises(AttributeError, match="no attribute"):
        ebrm.not_a_thing  # noqa: B018
