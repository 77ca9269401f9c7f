"""A degradation from its config node (``_target_`` plus arguments) without Hydra, allow-listed.

A weights file records the ``degradation`` node its network trained on (``conf/degradation/*.yaml``, resolved to
JSON); weights come from strangers, so only the classes of ``DEGRADATIONS`` are built, never an imported name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from afm_sr.degrade import BicubicDegradation, Degradation, MixedDegradation, ScanDegradation
from afm_sr.degrade.acquisition import AcquisitionDegradation, FixedAcquisition

#: The ``_target_`` names a recorded degradation may use (those of conf/degradation/) and the classes they build.
DEGRADATIONS: dict[str, type] = {
    "afm_sr.degrade.BicubicDegradation": BicubicDegradation,
    "afm_sr.degrade.ScanDegradation": ScanDegradation,
    "afm_sr.degrade.MixedDegradation": MixedDegradation,
    "afm_sr.degrade.acquisition.AcquisitionDegradation": AcquisitionDegradation,
    "afm_sr.degrade.acquisition.FixedAcquisition": FixedAcquisition,
}


def _value(node: Any) -> Any:
    """An argument as the class takes it: nodes with a ``_target_`` built, lists and mappings element-wise."""
    if isinstance(node, Mapping):
        return _node(node) if "_target_" in node else {str(k): _value(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_value(v) for v in node]
    return node


def _node(node: Mapping[str, Any]) -> Any:
    """The allow-listed class a node names, built with its other keys as keyword arguments."""
    target = node["_target_"]
    cls = DEGRADATIONS.get(target) if isinstance(target, str) else None
    if cls is None:
        raise ValueError(f"_target_ {target!r} is not a degradation afm-sr builds; allowed: {sorted(DEGRADATIONS)}")
    kwargs = {str(k): _value(v) for k, v in node.items() if k != "_target_"}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad arguments for {target} ({exc})") from None


def build_degradation(node: Any) -> Degradation:
    """The degradation a config node describes, built from allow-listed classes only (weights come from strangers).

    ValueError saying what is wrong: a name outside ``DEGRADATIONS``, bad arguments, not a node at all.
    """
    if not isinstance(node, Mapping) or "_target_" not in node:
        raise ValueError(f"a degradation record must be a mapping with a _target_, got {node!r:.200}")
    try:
        return _node(node)
    except RecursionError:
        raise ValueError("the degradation record is nested too deeply") from None
