"""The REST API against its own OpenAPI document, fuzzed by schemathesis (PyPI) on the live
release binary with a token: every operation gets a bounded number of generated requests
(valid and invalid ones), and no answer may be a 5xx, break the document's response schema,
use a status the document does not list, or carry another content type than it says.

Inputs that once broke it are kept below as plain regression requests.
"""

import json
import urllib.error
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, not_a_server_error,
                                 response_schema_conformance, status_code_conformance)

ADMIN, ADMIN_PW = "admin", "Adm1n-schema-pass"

PLAN = """\
[defaults]
context = "staff"

[context.staff]
[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]
"""

# Requests per operation and mode: enough to find the usual mistakes, the run stays short.
EXAMPLES = 5

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]


@pytest.fixture(scope="module")
def api_pbx(pbx_factory):
    p = pbx_factory("apischema", dialplan=PLAN)
    p.import_extensions([(4001, "pw4001"), (4002, "pw4002")])
    p.cli("admin", "create", ADMIN, "--password", ADMIN_PW)
    p.start()
    p.token = p.cli("admin", "token", ADMIN).stdout.strip()
    return p


@pytest.fixture(scope="module")
def api_schema(api_pbx):
    req = urllib.request.Request(f"http://127.0.0.1:{api_pbx.web}/api/v1/openapi.json",
                                 headers={"Authorization": f"Bearer {api_pbx.token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        doc = json.loads(r.read())
    # Revoking tokens would end the run's own token half-way: left to the handler tests.
    return schemathesis.openapi.from_dict(doc).exclude(path_regex="^/api/v1/tokens/")


def test_every_operation_keeps_its_document(api_pbx, api_schema):
    """Positive and negative cases for each operation, a bounded number each (derandomized:
    the same requests every run)."""
    base = f"http://127.0.0.1:{api_pbx.web}"
    auth = {"Authorization": f"Bearer {api_pbx.token}"}
    failures, tried, calls = [], 0, []
    for found in api_schema.get_all_operations():
        op = found.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case):
                calls.append(case.call_and_validate(base_url=base, headers=auth, checks=CHECKS,
                                                    timeout=10).status_code)

            tried += 1
            try:
                run()
            except (Exception, BaseExceptionGroup) as e:  # every failure is reported below
                failures.append(f"{op.label} ({mode.value}): {e}")
    assert tried >= 60, tried
    assert len(calls) >= tried, (len(calls), tried)
    assert not failures, "\n\n".join(failures)


def call(pbx, method, path, body=None, content_type="application/json"):
    headers = {"Authorization": f"Bearer {pbx.token}"}
    if body is not None:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(f"http://127.0.0.1:{pbx.web}{path}", method=method,
                                 headers=headers, data=body)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get_content_type(), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get_content_type(), e.read()


def test_inputs_that_broke_the_document_once(api_pbx):
    # PUT /api/v1/dialplan with JSON that is not `{"text": ...}`: its 422 was the generic
    # error body, not the documented refusal with `problems`.
    body = json.dumps({"": {"": [3, True, "\u0083"], "<,#\u00e8]": "N\u00d7%"}}).encode()
    status, kind, text = call(api_pbx, "PUT", "/api/v1/dialplan", body)
    refusal = json.loads(text)
    assert (status, kind, refusal["field"], refusal["problems"]) == \
        (422, "application/json", "text", [])
    with open(api_pbx.dialplan) as f:
        assert f.read() == PLAN
