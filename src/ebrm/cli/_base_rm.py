"""The base RM a command embeds new texts with: `--base-rm` (the one a refined model was
trained on, from another place), the settings the model records, and `--features` (a store
whose rows are read instead of embedding their texts again)."""

from __future__ import annotations


def check_inputs(
    model, *, features=None, max_length: int | None = None, truncation_side: str | None = None,
    base_rm=None,
) -> None:  # fmt: skip
    """Before any heavy import: the recorded base RM can be found (unless --base-rm gives
    it), and explicit extraction settings and a --features store agree with what the
    refined model at `model` records about its base RM.

    Raises:
        ConfigError / IncompatibleArtifactError: one line naming both values (or the
            missing path) and the fix.
    """
    from ebrm.cli._provenance import (
        check_same_base_rm,
        check_settings,
        recorded_base_rm,
        store_base_rm,
    )
    from ebrm.model.base_rm import check_base_rm_found, resolve_base_rm_path

    info = recorded_base_rm(model)
    if base_rm is None:  # a moved RM fails here, not after the data and the model load
        check_base_rm_found(resolve_base_rm_path(info, model), f"--model {model}")
    check_settings(info, f"--model {model}", max_length=max_length, truncation_side=truncation_side)
    if features is not None:
        check_same_base_rm(
            info, f"--model {model}", store_base_rm(features), f"--features {features}",
            fix="pass a store extracted by the model's base RM with the same settings (e.g. "
            "the OUT/features that `ebrm base-rm train` wrote), or no --features",
        )  # fmt: skip


def attach(
    erm, *, base_rm=None, features=None, device=None, max_length=None, truncation_side=None,
    placement=None,
):  # fmt: skip
    """Give `erm` the base RM it embeds new texts with: --base-rm or the recorded one, with
    the recorded settings (or the explicit ones a model from before they were recorded
    lacks), reading texts the --features store holds instead of embedding them again;
    `placement` (--device-map ...) loads it split across devices.

    Raises:
        IncompatibleArtifactError: the RM or the store differs from the model's record.
    """
    for key, value in (("max_length", max_length), ("truncation_side", truncation_side)):
        if value is not None and erm.base_rm_info.get(key) is None:
            erm.base_rm_info[key] = value
    if base_rm is None and not placement:
        rm = erm.base_rm
    else:  # the recorded settings (and revision), this path or the recorded one, placed as
        # asked; attach_base_rm checks its weights hash
        from ebrm.model.base_rm import load_base_rm

        path = None if base_rm is None else str(base_rm)
        rm = load_base_rm(erm.base_rm_info, device, path=path, placement=placement)
    if features is not None:
        from ebrm.features.reuse import ReusingRM, StoredRows

        rm = ReusingRM(rm, StoredRows.open(features), name="the model's base RM")
    erm.attach_base_rm(rm)
    return erm
