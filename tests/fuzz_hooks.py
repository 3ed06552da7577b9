"""Schemathesis hooks for tests/test_fuzz_openapi.py, loaded through SCHEMATHESIS_HOOKS.

Random path parameters almost never name a collection, feature, item or dataset that exists,
so the fuzzer would see little but 404. Each path parameter named in TAZA_FUZZ_IDS (JSON:
parameter name -> real ids) is drawn from its generated value and those ids alike, so the
generated query strings and bodies also reach real data.
"""

from __future__ import annotations

import json
import os

import schemathesis
from hypothesis import strategies as st

KNOWN_IDS: dict[str, list[str]] = json.loads(os.environ.get("TAZA_FUZZ_IDS", "{}"))


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters: dict | None) -> st.SearchStrategy:
    if not path_parameters:  # an operation without path parameters
        return st.just(path_parameters)
    choices = {name: st.sampled_from([value, *KNOWN_IDS[name]])
               for name, value in path_parameters.items() if KNOWN_IDS.get(name)}
    if not choices:
        return st.just(path_parameters)
    return st.fixed_dictionaries(choices).map(lambda picked: {**path_parameters, **picked})
