# -*- test-case-name: tests.test_compliance -*-
"""The generated files, from the declarations of the built-in features."""

from __future__ import annotations

from typing import Iterable

from convergence.compliance.render import doap, markdown
from convergence.compliance.specs import implemented
from convergence.compliance.suites import assess
from convergence.xmpp.features import Feature, builtin_features


def outputs(features: Iterable[Feature] | None = None) -> dict[str, str]:
    """File name → content, for C{features} (default: the built-in ones)."""
    specs = implemented(builtin_features() if features is None else features)
    return {"compliance.md": markdown(specs, assess(specs)),
            "convergence.doap": doap(specs)}
