"""Amazon order programs on the Commerce order: business buyers, tax Amazon collects, Prime and deadlines,
replacements and exchanges, gift options. Pure rules: no I/O, no clock.

What the Orders API 2026-01-01 model (``orders_2026-01-01.json``) gives and where it goes in Commerce:

- ``programs`` ``AMAZON_BUSINESS``: ``buyer.buyerPurchaseOrderNumber`` becomes the payment's ``po_number``
  (``OrderPaymentInterface``) and a comment; the buyer's ``tax.taxRegistrations`` (``entityType`` BUYER: VAT,
  CPF, CNPJ, BUSINESS) the order's ``customer_taxvat`` and the billing address's ``vat_id``.
  ``INVOICE_BY_AMAZON`` orders carry a placeholder buyer (one name and e-mail shared by many companies):
  :func:`placeholder_buyer` tells the import never to match or create a customer account from it.
- Item ``tax.taxCollections`` ``model`` MARKETPLACE_FACILITATOR: Amazon withholds and remits that tax. Setting
  ``marketplace_facilitator_tax``: ``include`` (the order shows what the buyer paid, with a comment) or
  ``exclude`` (the tax is taken off the Commerce order; the difference is in a comment and the audit trail).
  ``responsibleParty`` may be empty. ``taxCalculationBreakdowns[].reportingScheme`` (IOSS, UOSS) is noted.
- ``PRIME`` / ``PREMIUM``, ``fulfillment.shipByWindow`` and ``deliverByWindow``: payment
  ``additional_information`` lines and a comment, so Prime orders are shipped first.
- ``associatedOrders`` REPLACEMENT_ORIGINAL_ID / EXCHANGE_ORIGINAL_ID: a comment naming the original Amazon
  order and its Commerce order (setting ``import_replacement_orders`` decides whether they are imported at all).
- Item ``fulfillment.packing.giftOption``: the gift message and wrap level in a comment. A GIFT_WRAP charge
  becomes part of the shipping & handling charge (Magento's own label for ``shipping_amount``), its tax part of
  the shipping tax: Magento Open Source has no gift wrap amounts, Adobe Commerce's (``gw_*`` extension
  attributes of Magento_GiftWrapping) are refused by Open Source's REST input ("does not have accessor
  method"), and the invoice and credit memo collectors of both editions take the shipping amount, so the
  invoiced total equals the order total. The gift message is not sent as ``extension_attributes.gift_message``:
  Magento_GiftMessage's ``OrderSave`` plugin saves it after the order and fails the request when gift messages
  are not allowed in the store, leaving an order the answer says was not created.
- Order-level ``proceeds.breakdowns`` ``DELIVERY_TIP`` (``order_charges``): like a gift wrap charge, part of
  the shipping & handling charge, with a comment naming it.

Comments are ``status_histories`` of the order create (``OrderInterface::setStatusHistories``; saved with the
order by ``Sales\\Model\\ResourceModel\\Order\\Relation``): they exist exactly when the order does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

# transform imports this module: its names are read when called, never at import time
from amazon_commerce_sync import order_charges, transform
from amazon_commerce_sync.settings import AccountSettings

ZERO = Decimal("0")

FACILITATOR = "MARKETPLACE_FACILITATOR"
ASSOCIATIONS = {"REPLACEMENT_ORIGINAL_ID": "replacement", "EXCHANGE_ORIGINAL_ID": "exchange"}
# Amazon's invoicing entity stands in for the buyer of INVOICE_BY_AMAZON orders (e.g. "Amazon Business EU SARL",
# no-reply-amazon-iba-buyer@marketplace.amazon.de), the same for every business buyer of a marketplace.
PLACEHOLDER_EMAIL_PREFIX = "no-reply-amazon-iba-buyer@"
BUYER_TAX_TYPES = ("VAT", "CNPJ", "CPF", "BUSINESS", "CST")
MAX_TEXT = 255
MAX_MESSAGE = 1000
# sales_order.customer_taxvat and sales_order_payment.po_number are varchar(32) in Magento's db_schema.xml: a
# longer value is not sent there (MySQL would refuse or cut it); it stays whole in the comment and payment info.
MAX_COLUMN = 32


@dataclasses.dataclass(frozen=True)
class Gift:
    """One item's gift option; ``wrap`` and ``wrap_tax`` are the GIFT_WRAP charge and its tax (order currency)."""

    order_item_id: str
    seller_sku: str
    message: str | None
    wrap_level: str | None
    wrap: Decimal
    wrap_tax: Decimal


@dataclasses.dataclass(frozen=True)
class Programs:
    """What the order's programs mean for Commerce (see the module docstring); amounts in order currency."""

    programs: tuple[str, ...]
    purchase_order: str | None
    tax_registration: tuple[str, str] | None  # (taxRegistrationType, taxRegistrationNumber) of the buyer
    placeholder_buyer: bool
    placeholder_name: str | None  # Amazon's stand-in buyer name, never a customer's name
    ship_by: str | None
    deliver_by: tuple[str | None, str | None]
    association: tuple[str, str] | None  # (associationType, original Amazon order id)
    gifts: tuple[Gift, ...]
    facilitator_items: frozenset[str]  # orderItemIds whose tax Amazon collects
    responsible_parties: tuple[str, ...]
    reporting_schemes: tuple[str, ...]

    @property
    def business(self) -> bool:
        return "AMAZON_BUSINESS" in self.programs

    @property
    def gift_wrap(self) -> Decimal:
        return sum((g.wrap for g in self.gifts), ZERO)

    @property
    def gift_wrap_tax(self) -> Decimal:
        return sum((g.wrap_tax for g in self.gifts), ZERO)


def _text(value: Any, where: str, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise transform.MalformedOrder(f"{where} is not text")
    text = " ".join(value.split())
    if len(text) > limit:
        raise transform.MalformedOrder(f"{where} is {len(text)} characters long (at most {limit})")
    return text or None


def placeholder_buyer(order: Mapping[str, Any]) -> bool:
    """True when the order's buyer is Amazon's stand-in (``INVOICE_BY_AMAZON``, or its no-reply e-mail).

    Such a name and e-mail are shared by many business buyers: the import never matches or creates a
    customer account from them (README "How the import behaves").
    """
    email = str((order.get("buyer") or {}).get("buyerEmail") or "").strip().lower()
    return "INVOICE_BY_AMAZON" in (order.get("programs") or []) or email.startswith(PLACEHOLDER_EMAIL_PREFIX)


def association(order: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(associationType, original order id)`` of a replacement or exchange order, else None."""
    for entry in order.get("associatedOrders") or []:
        kind = (entry or {}).get("associationType")
        if kind in ASSOCIATIONS and entry.get("orderId"):
            return kind, str(entry["orderId"])
    return None


def split_tax_registrations(order: Mapping[str, Any]) -> tuple[Any, list[dict[str, Any]] | None]:
    """``(the order's tax section without the buyer's registrations, the buyer's registrations or None)``.

    The buyer's (``entityType`` BUYER) are personal data (a CPF is a person's number): the state store keeps them
    in ``order_pii`` with the rest of the buyer's data; the marketplace's and merchant's stay with the order.
    """
    tax = order.get("tax")
    if not isinstance(tax, Mapping) or not tax.get("taxRegistrations"):
        return tax, None
    buyer = [r for r in tax["taxRegistrations"] if (r or {}).get("entityType") == "BUYER"]
    others = [r for r in tax["taxRegistrations"] if (r or {}).get("entityType") != "BUYER"]
    rest = {k: v for k, v in tax.items() if k != "taxRegistrations"}
    return ({**rest, "taxRegistrations": others} if others else rest), (buyer or None)


def _buyer_tax_registration(order: Mapping[str, Any]) -> tuple[str, str] | None:
    for index, entry in enumerate((order.get("tax") or {}).get("taxRegistrations") or []):
        if (entry or {}).get("entityType") != "BUYER":
            continue
        number = _text(entry.get("taxRegistrationNumber"), f"tax.taxRegistrations[{index}].taxRegistrationNumber")
        if number:
            return str(entry.get("taxRegistrationType") or "VAT"), number
    return None


def _gift(item: Mapping[str, Any], index: int, currency: str) -> Gift | None:
    option = (((item.get("fulfillment") or {}).get("packing") or {}).get("giftOption")) or {}
    where = f"orderItems[{index}]"
    wrap = wrap_tax = ZERO
    for b_index, breakdown in enumerate((item.get("proceeds") or {}).get("breakdowns") or []):
        b_where = f"{where}.proceeds.breakdowns[{b_index}]"
        if breakdown.get("type") == "GIFT_WRAP":
            wrap += transform.money(breakdown.get("subtotal"), b_where, currency)
        elif breakdown.get("type") == "TAX":
            for d_index, detail in enumerate(breakdown.get("detailedBreakdowns") or []):
                if detail.get("subtype") == "GIFT_WRAP":
                    wrap_tax += transform.money(
                        detail.get("value"), f"{b_where}.detailedBreakdowns[{d_index}]", currency
                    )
    message = _text(option.get("giftMessage"), f"{where} gift message", MAX_MESSAGE)
    level = _text(option.get("giftWrapLevel"), f"{where} gift wrap level")
    if wrap < 0 or wrap_tax < 0:
        raise transform.MalformedOrder(f"{where}: negative gift wrap charge or tax")
    if not (message or level or wrap):
        return None
    sku = str((item.get("product") or {}).get("sellerSku") or "")
    return Gift(str(item.get("orderItemId")), sku, message, level, wrap, wrap_tax)


def read_programs(order: Mapping[str, Any], currency: str) -> Programs:
    """The programs of an Amazon order (with its ``buyer`` put back), checked.

    :raises MalformedOrder: a text too long or not text, a negative or unreadable gift wrap amount.
    """
    fulfillment = order.get("fulfillment") or {}
    deliver = fulfillment.get("deliverByWindow") or {}
    facilitator: set[str] = set()
    parties: list[str] = []
    schemes: list[str] = []
    gifts = []
    for index, item in enumerate(order.get("orderItems") or []):
        tax = item.get("tax") or {}
        for collection in tax.get("taxCollections") or []:
            if (collection or {}).get("model") == FACILITATOR:
                facilitator.add(str(item.get("orderItemId")))
                party = _text(collection.get("responsibleParty"), f"orderItems[{index}] responsibleParty")
                if party and party not in parties:
                    parties.append(party)
        for breakdown in tax.get("taxCalculationBreakdowns") or []:
            scheme = _text((breakdown or {}).get("reportingScheme"), f"orderItems[{index}] reportingScheme")
            if scheme and scheme not in schemes:
                schemes.append(scheme)
        gift = _gift(item, index, currency)
        if gift:
            gifts.append(gift)
    return Programs(
        programs=tuple(str(p) for p in order.get("programs") or []),
        purchase_order=_text((order.get("buyer") or {}).get("buyerPurchaseOrderNumber"), "the purchase order number"),
        tax_registration=_buyer_tax_registration(order),
        placeholder_buyer=placeholder_buyer(order),
        placeholder_name=(order.get("buyer") or {}).get("buyerName") if placeholder_buyer(order) else None,
        ship_by=(fulfillment.get("shipByWindow") or {}).get("latestDateTime"),
        deliver_by=(deliver.get("earliestDateTime"), deliver.get("latestDateTime")),
        association=association(order),
        gifts=tuple(gifts),
        facilitator_items=frozenset(facilitator),
        responsible_parties=tuple(parties),
        reporting_schemes=tuple(schemes),
    )


def facilitator_tax(amounts: transform.OrderAmounts, programs: Programs) -> Decimal:
    """The tax Amazon collects and remits as marketplace facilitator (items' and their shipping's tax)."""
    return sum((i.tax + i.shipping_tax for i in amounts.items if i.order_item_id in programs.facilitator_items), ZERO)


def commerce_amounts(
    amounts: transform.OrderAmounts, programs: Programs, account: AccountSettings
) -> transform.OrderAmounts:
    """Amazon's amounts as the Commerce order carries them.

    Gift wrap moves from the other charges into shipping & handling (its tax into the shipping tax), and so do
    the order-level charges (``order_charges``: a delivery tip, untaxed); with
    ``marketplace_facilitator_tax: exclude`` the facilitator items' tax is taken off and the grand total with it.
    Every other amount is Amazon's, so the totals still add up to the cent.
    """
    wrap = {g.order_item_id: g for g in programs.gifts}
    exclude = account.marketplace_facilitator_tax == "exclude"
    items = []
    for item in amounts.items:
        gift = wrap.get(item.order_item_id)
        if gift and gift.wrap:
            moved_tax = min(gift.wrap_tax, item.tax)
            item = dataclasses.replace(
                item,
                other=item.other - gift.wrap,
                shipping=item.shipping + gift.wrap,
                tax=item.tax - moved_tax,
                shipping_tax=item.shipping_tax + moved_tax,
            )
        if exclude and item.order_item_id in programs.facilitator_items:
            item = dataclasses.replace(item, tax=ZERO, shipping_tax=ZERO)
        items.append(item)
    excluded = facilitator_tax(amounts, programs) if exclude else ZERO
    return dataclasses.replace(
        amounts, items=tuple(items), grand_total=amounts.grand_total - excluded, charges_in_shipping=True
    )


def _money_text(amount: Decimal, currency: str) -> str:
    return f"{amount:.2f} {currency}"


def comments(
    programs: Programs,
    amounts: transform.OrderAmounts,
    account: AccountSettings,
    *,
    original_commerce_order: str | None = None,
) -> list[str]:
    """The order comments, in this order: business, tax, Prime and deadlines, replacement, gifts, order-level
    charges (a delivery tip).

    ``amounts`` are Amazon's (before :func:`commerce_amounts`); ``original_commerce_order`` is the Commerce
    increment id of a replacement's original order when it was imported.
    """
    out = []
    cur = amounts.currency
    if programs.business:
        parts = ["Amazon Business order."]
        if programs.purchase_order:
            parts.append(f"Purchase order number: {programs.purchase_order}.")
        if programs.tax_registration:
            parts.append(f"Buyer tax registration ({programs.tax_registration[0]}): {programs.tax_registration[1]}.")
        if programs.placeholder_buyer:
            parts.append("Invoiced by Amazon: the buyer name and e-mail are Amazon's placeholder (guest order).")
        out.append(" ".join(parts))
    collected = facilitator_tax(amounts, programs)
    if programs.facilitator_items:
        party = ", ".join(programs.responsible_parties) or "Amazon"
        if account.marketplace_facilitator_tax == "exclude":
            out.append(
                f"Tax of {_money_text(collected, cur)} collected and remitted by {party} as marketplace "
                "facilitator is not on this order (setting marketplace_facilitator_tax: exclude); "
                f"the buyer paid {_money_text(amounts.grand_total, cur)}."
            )
        else:
            out.append(
                f"Tax of {_money_text(collected, cur)} on this order was collected by {party} as marketplace "
                "facilitator; Amazon remits it, the seller does not."
            )
    if programs.reporting_schemes:
        out.append(f"EU VAT reporting scheme: {', '.join(programs.reporting_schemes)}.")
    deadlines = _flags(programs) + _dates(programs)
    if deadlines:
        out.append("; ".join(deadlines) + ".")
    if programs.association:
        kind, original = programs.association
        where = f"Commerce order #{original_commerce_order}" if original_commerce_order else "not in Commerce"
        out.append(f"Amazon {ASSOCIATIONS[kind]} order for Amazon order {original} ({where}).")
    for gift in programs.gifts:
        parts = [f"Gift options for {gift.seller_sku}:"]
        if gift.wrap_level:
            parts.append(f"gift wrap {gift.wrap_level}")
        if gift.wrap:
            parts.append(f"(charged {_money_text(gift.wrap + gift.wrap_tax, cur)}, in shipping & handling)")
        if gift.message:
            parts.append(f"message: {gift.message}")
        out.append(" ".join(parts))
    out.extend(order_charges.comments(amounts.charges, cur))
    return out


def _flags(programs: Programs) -> list[str]:
    return [p.capitalize() for p in ("PRIME", "PREMIUM") if p in programs.programs]


def _dates(programs: Programs) -> list[str]:
    out = []
    if programs.ship_by:
        out.append(f"Ship by {programs.ship_by}")
    earliest, latest = programs.deliver_by
    if latest:
        out.append(f"Deliver by {latest}" if not earliest else f"Deliver between {earliest} and {latest}")
    return out


def apply(
    entity: dict[str, Any],
    programs: Programs,
    amazon_amounts: transform.OrderAmounts,
    account: AccountSettings,
    *,
    original_commerce_order: str | None = None,
) -> dict[str, Any]:
    """Put the programs on the ``POST /V1/orders`` entity built from :func:`commerce_amounts`; returns it.

    Sets ``payment.po_number`` and ``customer_taxvat`` (when they fit Magento's 32 characters), the billing
    ``vat_id``, payment
    ``additional_information`` lines (Prime, deadlines, PO, program flags), the shipping description when
    it includes gift wrap, and the comments (``status_histories``, not notified, not visible on the storefront).
    """
    if programs.placeholder_name:
        _not_in_amazons_name(entity, programs.placeholder_name)
    payment = entity["payment"]
    info = payment.setdefault("additional_information", [])
    if programs.purchase_order:
        if len(programs.purchase_order) <= MAX_COLUMN:
            payment["po_number"] = programs.purchase_order
        info.append(f"Purchase order {programs.purchase_order}")
    if programs.tax_registration:
        if len(programs.tax_registration[1]) <= MAX_COLUMN:
            entity["customer_taxvat"] = programs.tax_registration[1]
        entity["billing_address"]["vat_id"] = programs.tax_registration[1]
    flags = [p for p in programs.programs if p in ("AMAZON_BUSINESS", "INVOICE_BY_AMAZON", "PRIME", "PREMIUM")]
    if flags:
        info.append("Programs " + ", ".join(flags))
    info.extend(_dates(programs))
    if programs.association:
        info.append(f"{ASSOCIATIONS[programs.association[0]].capitalize()} of {programs.association[1]}")
    if programs.gift_wrap:
        entity["shipping_description"] = f"{entity.get('shipping_description') or 'Amazon'} + gift wrap"
    for charge in amazon_amounts.charges:
        if charge.charged:
            label = charge.label.lower()
            entity["shipping_description"] = f"{entity.get('shipping_description') or 'Amazon'} + {label}"
    notes = comments(programs, amazon_amounts, account, original_commerce_order=original_commerce_order)
    if notes:
        entity["status_histories"] = [
            {"comment": note, "is_customer_notified": 0, "is_visible_on_front": 0, "status": entity.get("status")}
            for note in notes
        ]
    return entity


def _not_in_amazons_name(entity: dict[str, Any], placeholder: str) -> None:
    """An address without a recipient name took the buyer's name: Amazon's stand-in. Use the company instead
    (``transform.split_name``: 'Amazon' 'Customer' without one)."""
    stand_in = transform.split_name(placeholder, None)
    addresses = [entity["billing_address"]] + [
        a["shipping"]["address"] for a in entity["extension_attributes"]["shipping_assignments"]
    ]
    for address in addresses:
        if (address.get("firstname"), address.get("lastname")) == stand_in:
            address["firstname"], address["lastname"] = transform.split_name(None, address.get("company"))
    if (entity.get("customer_firstname"), entity.get("customer_lastname")) == stand_in:
        entity["customer_firstname"] = entity["billing_address"]["firstname"]
        entity["customer_lastname"] = entity["billing_address"]["lastname"]


def audit_detail(programs: Programs, amounts: transform.OrderAmounts, account: AccountSettings) -> dict[str, str]:
    """What the ``order_created`` audit entry adds: the facilitator tax left off the order (exclude), the
    association. Strings, no personal data."""
    detail = {}
    if programs.facilitator_items and account.marketplace_facilitator_tax == "exclude":
        detail["marketplace_facilitator_tax_excluded"] = str(facilitator_tax(amounts, programs))
        detail["currency"] = amounts.currency
    if programs.association:
        detail[ASSOCIATIONS[programs.association[0]] + "_of"] = programs.association[1]
    return detail
