"""The REST transport both hooks share.

Log hygiene: ``install_log_redaction`` keeps credentials and personal data out of third-party
DEBUG output (urllib3's request lines, oauthlib's signing logs).
"""

from __future__ import annotations

import logging


class _QueryRedactingFilter(logging.Filter):
    """Drop query strings from urllib3's DEBUG request lines.

    Query strings can hold PII (a customer search by e-mail) and pre-signed URLs hold
    signatures; urllib3 logs the full request target at DEBUG.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                a.split("?", 1)[0] + "?<redacted>" if isinstance(a, str) and "?" in a else a for a in record.args
            )
        return True


_REDACTION_INSTALLED = False


#: Libraries whose DEBUG output holds credentials or PII: oauthlib and requests-oauthlib log
#: the signed parameters (query values such as e-mails), the access token and the
#: Authorization header.
_CHATTY_LOGGERS = ("oauthlib", "requests_oauthlib")


def install_log_redaction() -> None:
    """Keep credentials and PII out of third-party DEBUG logs (idempotent, once per process).

    Drops query strings from urllib3's request lines and raises oauthlib's and
    requests-oauthlib's loggers to INFO, so that a task log at DEBUG stays clean.
    """
    global _REDACTION_INSTALLED
    if not _REDACTION_INSTALLED:
        logging.getLogger("urllib3.connectionpool").addFilter(_QueryRedactingFilter())
        for name in _CHATTY_LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET or logger.level < logging.INFO:
                logger.setLevel(logging.INFO)
        _REDACTION_INSTALLED = True
