"""What GET /product-photo-operations and GET /product-photo-presets list, and what a body may name."""

from __future__ import annotations

from typing import Any

OPERATIONS: tuple[dict[str, Any], ...] = (
    {
        "id": "product_photo_enhance",
        "name": "Product photo enhance",
        "credits_per_image": 1,
        "description": "Clean up light, color and background while keeping the product as it is.",
    },
    {
        "id": "remove_background",
        "name": "Remove background",
        "credits_per_image": 1,
        "description": "Cut the product out onto a transparent background.",
    },
    {
        "id": "studio_packshot",
        "name": "Studio packshot",
        "credits_per_image": 5,
        "description": "Create a clean studio product image.",
    },
    {
        "id": "marketplace_clean",
        "name": "Marketplace clean",
        "credits_per_image": 2,
        "description": "Meet marketplace rules: white background, centered, no props or text.",
    },
    {
        "id": "natural_lifestyle",
        "name": "Natural lifestyle",
        "credits_per_image": 5,
        "description": "Place the product in a plausible everyday scene.",
    },
    {
        "id": "premium_ad",
        "name": "Premium ad",
        "credits_per_image": 8,
        "description": "An advertising visual with styled light and composition.",
    },
)

PRESETS: tuple[dict[str, Any], ...] = (
    {
        "id": "single_product_white_background",
        "name": "Single product white background",
        "description": "One clear product isolated on a clean white or very light background.",
    },
    {
        "id": "marketplace_clean_catalog",
        "name": "Marketplace clean catalog",
        "description": "Catalog photos that pass marketplace image rules.",
    },
    {
        "id": "clean_catalog_group",
        "name": "Clean catalog group",
        "description": "Several products of one listing kept together on a neutral background.",
    },
)

OPERATION_IDS = tuple(str(o["id"]) for o in OPERATIONS)
PRESET_IDS = frozenset(str(p["id"]) for p in PRESETS)
