"""What arrives where an `Upload` belongs, over HTTP against the real app: a file part of
a multipart request is read; any other value (a JSON number, object, list, boolean or
string, a literal in the document, a multipart form field) is refused as INVALID_INPUT
data naming the input field. It was "Internal error." (AttributeError on `.read`), and
dispute evidence was named `attachments.N.file`."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from models.tables import Complaint, Dispute, Inspection, InspectionAttachment, OrderMessage
from tests import factories
from tests.api import Api, bearer, gid
from tests.test_api_inspections import accepted, db_id
from tests.test_disputes import received_order

pytest_plugins = ("tests.api_plugin",)

PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
NO_SHA = "0" * 64
NOT_FILES = [123, 1.5, {"a": 1}, ["x"], True, "plain string"]
REFUSED = [{"code": "INVALID_INPUT", "field": "attachments.0.file"}]

SEND = """mutation($input: SendOrderMessageInput!) { sendOrderMessage(input: $input) {
  message { id attachments { filename sha256 } } errors { code field } } }"""
OPEN = """mutation($input: OpenDisputeInput!) { openDispute(input: $input) {
  dispute { id } errors { code field } } }"""
REPORT = """mutation($input: SubmitInspectionReportInput!) {
  submitInspectionReport(input: $input) { inspection { id status } errors { code field } } }"""
COMPLAIN = """mutation($input: FileComplaintInput!) { fileComplaint(input: $input) {
  complaint { id } errors { code field } } }"""


def message(order_id: int, file: Any, sha256: str = NO_SHA) -> dict[str, Any]:
    return {
        "input": {
            "orderId": gid("Order", order_id),
            "body": "The specification, signed",
            "attachments": [{"file": file, "sha256": sha256}],
        }
    }


async def multipart(api: Api, token: str, variables: dict[str, Any], part: Any) -> dict[str, Any]:
    """sendOrderMessage as a GraphQL multipart request, `part` (httpx's `files` value)
    mapped to the first attachment's file."""
    response = await api.http(
        "POST",
        data={
            "operations": json.dumps({"query": SEND, "variables": variables}),
            "map": json.dumps({"0": ["variables.input.attachments.0.file"]}),
        },
        files={"0": part},
        headers=bearer(token) | {"Apollo-Require-Preflight": "true"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["sendOrderMessage"]
    return result


@pytest.mark.parametrize("value", NOT_FILES, ids=lambda v: type(v).__name__)
async def test_a_json_value_where_a_file_belongs_is_refused(api: Api, value: Any) -> None:
    b, _, order = await factories.confirmed_order()
    sent = (await api.data(SEND, message(order.id, value), b.token))["sendOrderMessage"]
    assert sent == {"message": None, "errors": REFUSED}
    assert await OrderMessage.count() == 0


@pytest.mark.parametrize("literal", ["5", "{a: 1}", '["x"]', "false"])
async def test_a_literal_where_a_file_belongs_is_refused(api: Api, literal: str) -> None:
    b, _, order = await factories.confirmed_order()
    query = f"""mutation {{ sendOrderMessage(input: {{orderId: "{gid("Order", order.id)}",
      body: "see the file", attachments: [{{file: {literal}, sha256: "{NO_SHA}"}}]}}) {{
      message {{ id }} errors {{ code field }} }} }}"""
    assert (await api.data(query, token=b.token))["sendOrderMessage"] == {
        "message": None,
        "errors": REFUSED,
    }
    assert await OrderMessage.count() == 0


async def test_a_multipart_file_is_read_and_a_form_field_is_refused(api: Api) -> None:
    b, _, order = await factories.confirmed_order()
    checksum = hashlib.sha256(PDF).hexdigest()
    variables = message(order.id, None, checksum)
    # A part without a filename is a form field: Starlette hands over its text.
    field = await multipart(api, b.token, variables, (None, PDF.decode()))
    assert field == {"message": None, "errors": REFUSED}
    assert await OrderMessage.count() == 0
    # The positive case: the UploadFile Starlette makes of a file part.
    sent = await multipart(api, b.token, variables, ("spec.pdf", PDF, "application/pdf"))
    assert sent["errors"] == []
    assert sent["message"]["attachments"] == [{"filename": "spec.pdf", "sha256": checksum}]


async def test_dispute_evidence_names_the_evidence_field(api: Api) -> None:
    b, _, order = await received_order()
    variables = {
        "input": {
            "orderId": gid("Order", order.id),
            "reason": "NOT_AS_DESCRIBED",
            "requestedRefund": {"amount": "100.00", "currency": "USD"},
            "description": "Wrong colour temperature",
            "evidence": [{"text": "a note"}, {"text": "photo", "file": 7, "sha256": NO_SHA}],
            "idempotencyKey": "not-a-file",
        }
    }
    opened = (await api.data(OPEN, variables, b.token))["openDispute"]
    assert opened == {
        "dispute": None,
        "errors": [{"code": "INVALID_INPUT", "field": "evidence.1.file"}],
    }
    assert await Dispute.count() == 0


async def test_inspection_reports_and_complaints_refuse_it_too(api: Api) -> None:
    b, s, insp, _, iid = await accepted(api)
    report = {
        "input": {
            "inspectionId": iid,
            "result": "PASSED",
            "findings": "Luminous flux measured on 20 panels.",
            "attachments": [{"file": {"a": 1}, "sha256": NO_SHA}],
        }
    }
    done = (await api.data(REPORT, report, insp.token))["submitInspectionReport"]
    assert done == {"inspection": None, "errors": REFUSED}
    assert await InspectionAttachment.count() == 0
    row = await Inspection.objects().get(Inspection.id == db_id(iid))
    assert row is not None and row.status == "ACCEPTED"
    complaint = {
        "input": {
            "supplierId": gid("Supplier", s.supplier_id or 0),
            "subject": "Broken panels",
            "description": "See the photo",
            "idempotencyKey": "not-a-file",
            "attachments": [{"file": ["x"], "sha256": NO_SHA}],
        }
    }
    filed = (await api.data(COMPLAIN, complaint, b.token))["fileComplaint"]
    assert filed == {"complaint": None, "errors": REFUSED}
    assert await Complaint.count() == 0
