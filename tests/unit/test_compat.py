"""The dispatch table against botocore's S3 model: every operation S3 has is
routed to itself (or, if its request is another's on the wire, to that
one), and docs/compatibility.md is what the table and the handlers say."""
from __future__ import annotations

import pytest

from minis3.core import operations
from minis3.frontend import compat
from minis3.frontend.dispatch import HANDLERS

MODEL = compat.s3_model()


def test_every_operation_of_the_model_has_a_row():
    known = {r.op for r in operations.ROWS} | set(operations.SAME_AS)
    assert sorted(set(MODEL.operation_names) - known) == []
    assert set(HANDLERS) <= {r.op for r in operations.ROWS}


@pytest.mark.parametrize("name", sorted(MODEL.operation_names))
def test_a_request_for_each_operation_is_routed_to_it(name):
    method, level, query, headers = compat.sample_request(MODEL, name)
    assert operations.resolve(method, level, query, headers) == operations.SAME_AS.get(name, name)


def test_unknown_query_parameters_do_not_change_the_operation():
    assert operations.resolve("GET", "object", {"foo": ""}, {}) == "GetObject"
    assert operations.resolve("GET", "bucket", {"list-type": "1"}, {}) == "ListObjects"
    assert operations.resolve("PATCH", "object", {}, {}) is None


def test_docs_compatibility_md_is_current():
    assert compat.DOC.read_text() == compat.render(MODEL), \
        "docs/compatibility.md is out of date: run python -m minis3.frontend.compat"
