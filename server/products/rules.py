"""Pure rules of the product shelf: validating a product, and reading a CSV or JSON import."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, DecimalException
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from babel.numbers import get_currency_precision, list_currencies

from server.errors import BadMessage, InvalidInput
from server.text import clean_text

NAME_MAX_CHARS = 200
DESCRIPTION_MAX_CHARS = 2000
SKU_MAX_CHARS = 64
URL_MAX_CHARS = 1000
MAX_PRICE_MINOR = 10**10
MAX_STOCK = 10_000_000
MAX_IMPORT_ROWS = 500
INTENT_KINDS = ("product.view", "product.details", "checkout.leave")
_CURRENCIES = frozenset(list_currencies())


@dataclass(frozen=True)
class ProductFields:
    name: str
    price_minor: int
    currency: str
    stock: int
    image_url: str | None
    sku: str | None
    shop_url: str | None
    description: str | None


def clean_url(value: object, field: str) -> str | None:
    """An absolute http(s) URL, or None. Anything else (javascript:, data:) is refused."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > URL_MAX_CHARS:
        raise InvalidInput(f"{field} must be a URL of at most {URL_MAX_CHARS} characters")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"{field} must start with http:// or https://")
    return value.strip()


def currency_digits(code: str) -> int:
    """Digits after the decimal point in ``code`` (CNY 2, JPY 0): every surface formats with this
    number, so the server and browsers never disagree (their locale data differ for a few)."""
    return int(get_currency_precision(code))


def clean_currency(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in _CURRENCIES:
        raise InvalidInput("currency must be an ISO 4217 code such as CNY or USD")
    return value.upper()


def _whole(value: object, field: str, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{field} must be a whole number")
    if not 0 <= value <= high:
        raise InvalidInput(f"{field} must be between 0 and {high:,}")
    return value


def price_from_major(value: object, currency: str) -> int:
    """``"99.90"`` CNY -> 9990; refuses more decimals than the currency has (no silent rounding)."""
    try:
        amount = Decimal(str(value).strip())
        if not amount.is_finite() or abs(amount) > MAX_PRICE_MINOR:
            raise InvalidInput(f"price {value!r} is not a sensible number")
        minor = amount.scaleb(currency_digits(currency))
    except DecimalException:
        raise InvalidInput(f"price {value!r} is not a number") from None
    if minor != minor.to_integral_value():
        raise InvalidInput(f"price {value} has more decimals than {currency} allows")
    return _whole(int(minor), "price", MAX_PRICE_MINOR)


def clean_product(data: Mapping[str, Any]) -> ProductFields:
    """A product from the console or an import row. Price: ``price_minor``, or ``price`` in major units."""
    currency = clean_currency(data.get("currency") or "CNY")
    if data.get("price_minor") is not None:
        price = _whole(data["price_minor"], "price_minor", MAX_PRICE_MINOR)
    elif data.get("price") not in (None, ""):
        price = price_from_major(data["price"], currency)
    else:
        raise InvalidInput("price_minor (or price) is required")
    name = clean_text(data.get("name"), field="name", max_chars=NAME_MAX_CHARS)
    assert name is not None
    sku = clean_text(data.get("sku"), field="sku", max_chars=SKU_MAX_CHARS, required=False)
    description = clean_text(
        data.get("description"), field="description", max_chars=DESCRIPTION_MAX_CHARS, required=False
    )
    return ProductFields(
        name=name,
        price_minor=price,
        currency=currency,
        stock=_whole(data.get("stock", 0), "stock", MAX_STOCK),
        image_url=clean_url(data.get("image_url"), "image_url"),
        sku=sku,
        shop_url=clean_url(data.get("shop_url"), "shop_url"),
        description=description,
    )


def _csv_rows(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        return _read_rows(reader)
    except csv.Error as exc:  # a field over the csv module's limit (128 KiB), a stray quote
        if "field larger than field limit" in str(exc):
            raise InvalidInput(
                f"line {reader.line_num + 1}: a field is longer than {csv.field_size_limit() // 1024} KiB",
                code="too_long",
            ) from None
        raise InvalidInput(f"line {reader.line_num}: the CSV cannot be read ({exc})") from None


def _read_rows(reader: csv.DictReader[str]) -> list[dict[str, Any]]:
    if reader.fieldnames is None or "name" not in [f.strip() for f in reader.fieldnames]:
        raise InvalidInput("the CSV needs a header row with at least name and price (or price_minor)")
    rows: list[dict[str, Any]] = []
    for raw in reader:
        row: dict[str, Any] = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        for key in ("price_minor", "stock"):
            if row.get(key, "") == "":
                row.pop(key, None)
            elif row[key].isascii() and row[key].isdigit():
                row[key] = int(row[key])
        rows.append(row)
    return rows


def parse_import(body: bytes, content_type: str) -> list[ProductFields]:
    """Every product of a CSV or JSON import, or InvalidInput naming the first bad row (nothing is
    half-imported)."""
    if "json" in content_type:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadMessage("the body is not valid JSON", code="bad_json") from None
        if isinstance(data, dict):
            data = data.get("products")
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InvalidInput('a JSON import is a list of products, or {"products": [...]}')
        rows: list[dict[str, Any]] = data
    elif "csv" in content_type or "text/plain" in content_type:
        try:
            rows = _csv_rows(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput("the CSV must be UTF-8") from None
    else:
        raise InvalidInput("send text/csv or application/json")
    if not rows:
        raise InvalidInput("no products in the import", code="empty")
    if len(rows) > MAX_IMPORT_ROWS:
        raise InvalidInput(f"at most {MAX_IMPORT_ROWS} products per import")
    products = []
    for number, row in enumerate(rows, start=1):
        try:
            products.append(clean_product(row))
        except InvalidInput as exc:
            raise InvalidInput(f"product {number}: {exc.message}", code=exc.code) from None
    return products


def checkout_url(
    shop_url: str | None, code: str | None, viewer_id: str | None, src: str | None = None
) -> str | None:
    """The shop link with the coupon code (``coupon``), who came from the stream (``lw_ref``) and
    through which entry link (``lw_src``, docs/revenue.md)."""
    if not shop_url:
        return None
    parts = urlsplit(shop_url)
    ours = ("coupon", "lw_ref", "lw_src")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    if code:
        query.append(("coupon", code))
    if viewer_id:
        query.append(("lw_ref", viewer_id))
    if viewer_id and src:
        query.append(("lw_src", src))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
