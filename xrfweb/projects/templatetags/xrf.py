"""Template filters for numbers people read."""
from django import template

register = template.Library()


@register.filter
def nm(value) -> str:
    """A length in nm for display: at most two decimals, none when they are zero (a step read
    from motor positions arrives as 200.00000000001705)."""
    try:
        return f"{float(value):.2f}".rstrip("0").rstrip(".")
    except (TypeError, ValueError):
        return ""
