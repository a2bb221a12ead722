"""The products' wire: client data parsed into typed commands, and products shaped for every surface."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from server.errors import InvalidInput
from server.products import rules
from server.products.rules import ProductFields, currency_digits
from server.storage.models import Product
from server.text import clean_id

INTENT_ID_MAX_CHARS = 40

# --- commands -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveProduct:
    """A validated product.save: a new product, or an edit of ``product_id``."""

    product_id: int | None
    fields: ProductFields


@dataclass(frozen=True)
class IntentSignal:
    """A validated purchase-intent signal from a phone (``client_id`` makes retries idempotent)."""

    kind: str
    product_id: int
    discount_id: int | None
    client_id: str | None


@dataclass(frozen=True)
class Pin:
    """The room's pinned product (``product_id`` None: nothing pinned) and when it was pinned."""

    product_id: int | None
    pinned_ms: int | None


@dataclass(frozen=True)
class Imported:
    """What an import did: products added and products updated (matched by SKU)."""

    added: int
    updated: int


def parse_save(data: Mapping[str, Any]) -> SaveProduct:
    fields = rules.clean_product(data)
    product_id = data.get("id")
    return SaveProduct(None if product_id is None else clean_id(product_id, "product_id"), fields)


def parse_product_ref(data: Mapping[str, Any]) -> int:
    """The product a product.remove is about."""
    return clean_id(data.get("id"), "product_id")


def parse_pin(data: Mapping[str, Any]) -> int | None:
    """The product a product.pin pins, or None to unpin."""
    product_id = data.get("id")
    return None if product_id is None else clean_id(product_id, "product_id")


def parse_intent(data: Mapping[str, Any]) -> IntentSignal:
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in rules.INTENT_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(rules.INTENT_KINDS)}")
    product_id = clean_id(data.get("product_id"), "product_id")
    discount_id = data.get("discount_id")
    discount = None if discount_id is None else clean_id(discount_id, "discount_id")
    client_id = data.get("id")
    if client_id is not None and (
        not isinstance(client_id, str) or not 1 <= len(client_id) <= INTENT_ID_MAX_CHARS
    ):
        raise InvalidInput(f"id must be a string of 1 to {INTENT_ID_MAX_CHARS} characters")
    return IntentSignal(kind, product_id, discount, client_id or None)


# --- shapes -------------------------------------------------------------------------------------


def product_shape(item: Product) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "image_url": item.image_url,
        "price_minor": item.price_minor,
        "currency": item.currency,
        "digits": currency_digits(item.currency),
        "stock": item.stock,
        "shop_url": item.shop_url,
        "sku": item.sku,
        "description": item.description,
    }


def shelf_shape(products: Iterable[Product]) -> list[dict[str, Any]]:
    return [product_shape(p) for p in products]


def pin_shape(pin: Pin) -> dict[str, Any]:
    return {"product_id": pin.product_id, "pinned_ms": pin.pinned_ms}


def imported_shape(result: Imported) -> dict[str, int]:
    return {"added": result.added, "updated": result.updated}
