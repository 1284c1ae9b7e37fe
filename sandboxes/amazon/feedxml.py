"""Parsing of order feeds (XML, with defusedxml) and building of processing reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - used only to *build* the report
from typing import Any

from defusedxml import ElementTree as SafeET

MESSAGE_TYPES = {
    "POST_ORDER_ACKNOWLEDGEMENT_DATA": "OrderAcknowledgement",
    "POST_PAYMENT_ADJUSTMENT_DATA": "OrderAdjustment",
    "POST_ORDER_FULFILLMENT_DATA": "OrderFulfillment",
}


class FeedFatal(Exception):
    """The document cannot be processed at all (the feed ends FATAL)."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _local(c.tag) == name]


def _text(el: ET.Element | None, name: str | None = None) -> str | None:
    if el is not None and name is not None:
        el = _child(el, name)
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def _to_dict(el: ET.Element) -> Any:
    """Generic element -> dict/list/text conversion (repeated children become lists)."""
    kids = list(el)
    if not kids:
        text = (el.text or "").strip()
        return {"#text": text, **{f"@{k}": v for k, v in el.attrib.items()}} if el.attrib else text
    out: dict[str, Any] = {}
    for kid in kids:
        name = _local(kid.tag)
        value = _to_dict(kid)
        if name in out:
            if not isinstance(out[name], list):
                out[name] = [out[name]]
            out[name].append(value)
        else:
            out[name] = value
    return out


def parse_feed(content: bytes, feed_type: str) -> tuple[str | None, list[dict[str, Any]]]:
    """-> (MerchantIdentifier, [{messageId, type, element-as-dict, _el}]); FeedFatal if unusable."""
    expected = MESSAGE_TYPES.get(feed_type)
    try:
        root = SafeET.fromstring(content)
    except Exception as exc:  # defusedxml raises ParseError and its own DefusedXmlException kinds
        raise FeedFatal(f"XML Parsing Error: {exc}") from exc
    if _local(root.tag) != "AmazonEnvelope":
        raise FeedFatal(f"The root element must be AmazonEnvelope, not {_local(root.tag)}.")
    message_type = _text(root, "MessageType")
    if message_type != expected:
        raise FeedFatal(f"MessageType {message_type!r} does not match feed type {feed_type} (expected {expected}).")
    merchant = _text(_child(root, "Header"), "MerchantIdentifier") if _child(root, "Header") is not None else None
    messages = []
    for index, message in enumerate(_children(root, "Message"), start=1):
        body = _child(message, expected)
        messages.append(
            {
                "messageId": _text(message, "MessageID") or str(index),
                "type": expected,
                "body": _to_dict(body) if body is not None else None,
            }
        )
    if not messages:
        raise FeedFatal("The feed contains no Message elements.")
    return merchant, messages


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def text_of(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("#text")
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def processing_report(feed_id: str, merchant: str, results: list[dict[str, Any]], processed: int) -> bytes:
    """The ProcessingReport envelope; ``results`` holds only Error/Warning entries."""
    root = ET.Element(
        "AmazonEnvelope",
        {
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": "amzn-envelope.xsd",
        },
    )
    header = ET.SubElement(root, "Header")
    ET.SubElement(header, "DocumentVersion").text = "1.02"
    ET.SubElement(header, "MerchantIdentifier").text = merchant
    ET.SubElement(root, "MessageType").text = "ProcessingReport"
    message = ET.SubElement(root, "Message")
    ET.SubElement(message, "MessageID").text = "1"
    report = ET.SubElement(message, "ProcessingReport")
    ET.SubElement(report, "DocumentTransactionID").text = feed_id
    ET.SubElement(report, "StatusCode").text = "Complete"
    summary = ET.SubElement(report, "ProcessingSummary")
    errors = {r["messageId"] for r in results if r["resultCode"] == "Error"}
    warnings = {r["messageId"] for r in results if r["resultCode"] == "Warning"} - errors
    ET.SubElement(summary, "MessagesProcessed").text = str(processed)
    ET.SubElement(summary, "MessagesSuccessful").text = str(processed - len(errors))
    ET.SubElement(summary, "MessagesWithError").text = str(len(errors))
    ET.SubElement(summary, "MessagesWithWarning").text = str(len(warnings))
    for r in results:
        result = ET.SubElement(report, "Result")
        ET.SubElement(result, "MessageID").text = str(r["messageId"])
        ET.SubElement(result, "ResultCode").text = r["resultCode"]
        ET.SubElement(result, "ResultMessageCode").text = str(r["resultMessageCode"])
        ET.SubElement(result, "ResultDescription").text = r["description"]
        if r.get("amazonOrderId"):
            info = ET.SubElement(result, "AdditionalInfo")
            ET.SubElement(info, "AmazonOrderID").text = r["amazonOrderId"]
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")).encode("utf-8")
