"""errors.py: the exception tree, importable at DAG parse time without any HTTP or SQL library."""

from __future__ import annotations

import subprocess
import sys

from amazon_commerce_sync import errors


def test_errors_module_imports_nothing_heavy():
    # DAG files name errors.FatalError at parse time; parsing must not load requests, SQLAlchemy or Alembic.
    code = (
        "import sys, amazon_commerce_sync.errors as e; "
        "heavy = [m for m in ('requests', 'urllib3', 'sqlalchemy', 'alembic', 'tenacity') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == ""


def test_every_error_is_retriable_or_fatal():
    # StateStoreConfigError is the one exception outside the HTTP tree: a configuration error (tested below)
    classes = [getattr(errors, name) for name in errors.__all__ if name not in ("redact", "StateStoreConfigError")]
    for cls in classes:
        assert issubclass(cls, errors.IntegrationError)
        if cls not in (errors.IntegrationError, errors.RetriableError, errors.FatalError):
            assert issubclass(cls, errors.RetriableError) != issubclass(cls, errors.FatalError), cls
    assert errors.RetriableError.retriable and not errors.FatalError.retriable


def test_state_store_config_error_is_outside_the_http_tree_and_failed_at_once_by_the_retry_policy():
    from amazon_commerce_sync.dag_defaults import RETRY_POLICY

    assert not issubclass(errors.StateStoreConfigError, errors.IntegrationError)
    decision = RETRY_POLICY.evaluate(errors.StateStoreConfigError("sales_channel_db: bad"), try_number=1, max_tries=4)
    assert decision.action.value == "fail"


def test_repeated_page_error_is_retriable_and_never_safe_to_replay():
    error = errors.RepeatedPageError("again", operation="searchOrders", pages=3)
    assert isinstance(error, errors.RetriableError) and not isinstance(error, errors.FatalError)
    assert error.pages == 3 and not error.safe_to_replay
    assert str(error) == "searchOrders failed: again"
