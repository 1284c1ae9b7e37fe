"""amazon_order_cancel's parameters: the form's JSON schema rejects bad input, and the task rejects it again."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from amazon_commerce_sync.cancel_request import MAX_ORDERS, CancelRequest, InvalidRequest, parse_request
from amazon_commerce_sync.feeds import CANCEL_REASONS
from amazon_commerce_sync.pipelines.order_cancel import cancel_comment

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "amazon_order_cancel.py"
GOOD_ID = "123-1234567-1234567"
VALID = {"amazon_order_ids": [GOOD_ID], "reason": "BuyerCanceled"}

# (case, conf, words the task's message must contain)
INVALID = [
    ("bad id format", {"amazon_order_ids": ["123-123-123"]}, ["amazon_order_ids", "'123-123-123'", "not valid"]),
    ("letters in id", {"amazon_order_ids": ["ABC-1234567-1234567"]}, ["amazon_order_ids", "not valid"]),
    ("id not a string", {"amazon_order_ids": [1231234567]}, ["amazon_order_ids", "not valid"]),
    ("empty list", {"amazon_order_ids": []}, ["amazon_order_ids", "empty"]),
    (
        "too many ids",
        {"amazon_order_ids": [f"123-1234567-{n:07d}" for n in range(MAX_ORDERS + 1)]},
        ["amazon_order_ids", f"at most {MAX_ORDERS}"],
    ),
    (
        "bad commerce number",
        {"amazon_order_ids": None, "commerce_order_numbers": ["00 1"]},
        ["commerce_order_numbers", "not valid"],
    ),
    (
        "empty commerce list",
        {"amazon_order_ids": None, "commerce_order_numbers": []},
        ["commerce_order_numbers", "empty"],
    ),
    ("unknown reason", {"reason": "Bored"}, ["reason", "'Bored'", "NoInventory"]),
    ("reason of the wrong feed", {"reason": "CustomerCancel"}, ["reason", "CancelReason"]),
    ("note too long", {"note": "x" * 501}, ["note", "at most 500"]),
    ("note not text", {"note": 42}, ["note", "text"]),
    ("dry_run not boolean", {"dry_run": "yes"}, ["dry_run", "true or false"]),
    ("bad account id", {"account_id": "us main!"}, ["account_id"]),
]


@pytest.fixture(scope="module")
def dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags["amazon_order_cancel"]


def validate_form(dag, conf):
    """What the trigger form / REST API do: the run's conf against each Param's JSON schema."""
    params = copy.deepcopy(dag.params)
    params.update(conf)
    return params.validate()


def test_the_form_accepts_a_valid_request(dag):
    resolved = validate_form(dag, {**VALID, "note": "late stock", "dry_run": True})
    assert resolved["amazon_order_ids"] == [GOOD_ID] and resolved["dry_run"] is True
    assert validate_form(dag, {"commerce_order_numbers": ["000000042"], "reason": "NoInventory"})["note"] is None


def test_the_form_offers_the_reasons_and_typed_fields(dag):
    schema = {name: dag.params.get_param(name).schema for name in dag.params}
    assert schema["reason"]["enum"] == list(CANCEL_REASONS)
    assert schema["amazon_order_ids"]["items"]["if"]["pattern"] == r"^\d{3}-\d{7}-\d{7}$"
    assert schema["amazon_order_ids"]["maxItems"] == MAX_ORDERS
    assert schema["dry_run"]["type"] == ["null", "boolean"]
    assert "123-1234567-1234567" in dag.params.get_param("amazon_order_ids").description


def airflow_form_marks_required(schema: dict) -> bool:
    """Airflow 3.3's trigger form (``FlexibleForm/isParamRequired``): a field is required, shown with a star and
    in red while empty, when its schema has a type and that type is not a list holding ``"null"``."""
    kind = schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


def test_the_form_opens_without_required_fields(dag):
    """Nothing is red before anything is typed, and dry_run carries no required star; the reason is still
    required by its enum when the form is sent (test_the_form_rejects_a_missing_reason)."""
    for name in dag.params:
        param = dag.params.get_param(name)
        assert not airflow_form_marks_required(param.schema), name
        assert param.schema.get("title"), f"{name}: the form shows the title, not the key"


@pytest.mark.parametrize(("case", "conf", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_the_form_rejects(dag, case, conf, words):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        validate_form(dag, {**VALID, **conf})


def test_the_form_rejects_a_missing_reason(dag):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="reason"):
        validate_form(dag, {"amazon_order_ids": [GOOD_ID]})


@pytest.mark.parametrize(("case", "conf", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_the_task_rejects(case, conf, words):
    with pytest.raises(InvalidRequest) as info:
        parse_request({**VALID, **conf})
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_the_task_rejects_what_the_form_cannot_express():
    with pytest.raises(InvalidRequest, match="give the orders to cancel"):
        parse_request({"reason": "BuyerCanceled", "amazon_order_ids": None, "commerce_order_numbers": None})
    with pytest.raises(InvalidRequest, match="reason"):
        parse_request({"amazon_order_ids": [GOOD_ID]})
    # every problem at once
    with pytest.raises(InvalidRequest) as info:
        parse_request({"amazon_order_ids": ["1"], "reason": "x", "dry_run": 1})
    assert all(w in str(info.value) for w in ("amazon_order_ids", "reason", "dry_run"))


def test_the_task_accepts_and_normalises():
    request = parse_request(
        {
            "amazon_order_ids": [GOOD_ID, f" {GOOD_ID} "],
            "commerce_order_numbers": None,
            "reason": "NoInventory",
            "note": "  ",
            "dry_run": False,
            "account_id": None,
        }
    )
    assert request == CancelRequest((GOOD_ID,), (), "NoInventory", None, False, None)
    # the CLI may pass a comma-separated string
    assert parse_request(
        {"amazon_order_ids": f"{GOOD_ID},111-2222222-3333333", "reason": "NoInventory"}
    ).amazon_order_ids == (GOOD_ID, "111-2222222-3333333")


def test_cancel_comment_is_deterministic():
    assert cancel_comment("BuyerCanceled", "asked by phone", "F1") == (
        "Cancelled on Amazon at the seller's request (amazon_order_cancel). Reason: BuyerCanceled. "
        "Note: asked by phone. Amazon feed: F1."
    )
    assert cancel_comment("NoInventory", None, None).endswith("Reason: NoInventory.")


def test_the_decision_form_refuses_a_bad_id_in_words(airflow_db):
    """amazon_buyer_cancel_decision's Params (a manual trigger): a bad order id or account is refused with what
    a valid one looks like, not with the regular expression (issue 14, 4)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import ParamValidationError

    bag = DagBag(dag_folder=str(DAG_FILE.with_name("amazon_buyer_cancel_decision.py")))
    assert bag.import_errors == {}
    decision = bag.dags["amazon_buyer_cancel_decision"]
    good = {"account_id": "us-main", "amazon_order_id": GOOD_ID}
    assert validate_form(decision, good)["amazon_order_id"] == GOOD_ID
    for conf, words in (
        ({"amazon_order_id": "123-123-123"}, "like 123-1234567-1234567"),
        ({"account_id": "us main!"}, "an account id of the settings"),
    ):
        with pytest.raises(ParamValidationError) as refused:
            validate_form(decision, {**good, **conf})
        assert words in str(refused.value) and "\\d" not in str(refused.value) and "[A-Za-z" not in str(refused.value)
