"""The products' wire: a product as every surface sees it."""

from __future__ import annotations

from typing import Any

from server.products.rules import currency_digits
from server.storage.models import Product


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
