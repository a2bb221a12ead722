"""The template rules: what makes a big number or a long text is refused at once, with a clear
message, before it runs; ordinary messages render as before."""

from __future__ import annotations

import time

import pytest

from server.errors import InvalidInput
from server.followup import render
from server.followup.templates import SAMPLE

# The payloads of the audit (issue 19) that froze the server or passed the old bounds, and their kin.
HOSTILE = {
    "big powers": ("{{ ((((9**64)**64)**64)**64) > 0 }}", "a power over 4096 bits"),
    "big products": ("{% set a = 9**1000 %}{{ a*a*a*a*a }}", "a product over 4096 bits"),
    "%-format width": ("{{ ('%010000000d' % 1) }}", "a format width over 50,000 characters"),
    "%-format precision": ("{{ '%.10000000f' % 1 }}", "a format width over 50,000 characters"),
    "%-format star width": ("{{ '%*d' % (10000000, 1) }}", "'*' width"),
    "format filter width": ("{{ '%010000000d'|format(1) }}", "a format width over 50,000 characters"),
    "center filter": ("{{ 'x'|center(10**7) }}", "the center width over 50,000 characters"),
    "center method": ("{{ 'x'.center(10**7) }}", "the center width over 50,000 characters"),
    "ljust method": ("{{ 'x'.ljust(10**7) }}", "the ljust width over 50,000 characters"),
    "map to center": ("{{ range(3)|map('center', 10**7)|list }}", "the center width over 50,000"),
    "str.format width": ("{{ '{:>10000000}'.format(1) }}", "a format width over 50,000 characters"),
    "str.format nested width": ("{{ '{:>{}}'.format(1, 10**7) }}", "a format width taken from an argument"),
    "concatenation doubling": (
        "{% set a = 'xxxxxxxxxx' %}" + "{% set a = a ~ a %}" * 40 + "{{ a|length }}",
        "a text over 50,000 characters",
    ),
    "addition doubling": (
        "{% set a = 'xxxxxxxxxx' %}" + "{% set a = a + a %}" * 40 + "{{ a|length }}",
        "a text over 50,000 characters",
    ),
    "join": ("{% set a = 'x' * 40000 %}{{ [a, a]|join }}", "the join filter's result over 50,000"),
    "repetition": ("{{ 'x' * 300000000 }}", "a repetition over 50,000 characters"),
    "loops in macros": (
        "{% macro m() %}{% for i in range(1000) %}x{% endfor %}{% endmacro %}"
        "{% for j in range(1000) %}{{ m() }}{% endfor %}",
        "no macros",
    ),
    "call block": ("{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}x{% endcall %}", "no macros"),
    "recursive loop": ("{% for x in [[1]] recursive %}{{ loop(x) }}{% endfor %}", "no recursive loops"),
    "output": ("{% for i in range(1000) %}{{ 'y' * 100 }}{% endfor %}", "over 50,000 characters"),
}


@pytest.mark.parametrize("body,message", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_templates_are_refused_at_once(body: str, message: str) -> None:
    """Each is a bad_template naming what is too big, within a few milliseconds (never minutes)."""
    t = time.monotonic()
    with pytest.raises(InvalidInput, match="template error") as caught:
        render.render(None, body, SAMPLE, strict=True)
    assert caught.value.code == "bad_template" and message in caught.value.message
    assert time.monotonic() - t < 0.5


def test_the_limit_follows_the_setting() -> None:
    """The size limit is the one a render is given (the server's sandbox_output_chars)."""
    assert render.render(None, "{{ 'x' * 900 }}", {}, max_chars=1000).text == "x" * 900
    with pytest.raises(InvalidInput, match="over 1,000 characters"):
        render.render(None, "{{ 'x' * 1001 }}", {}, max_chars=1000)
    with pytest.raises(InvalidInput, match="over 1,000 characters"):
        render.render("{{ 'x' * 600 }}", "{{ 'x' * 600 }}", {}, max_chars=1000)


@pytest.mark.parametrize(
    "body,text",
    [
        (
            "Hi {{ contact.name }}: {{ product.name }} {{ product.price }}",
            "Hi Li Wei: Jasmine green tea 250g ¥68.00",
        ),
        ("{{ '%05.1f' % 3.14159 }} {{ '%s-%d'|format('a', 7) }}", "003.1 a-7"),
        ("{{ '{:,}'.format(1234567) }} {{ '{:>5}'.format(1) }}", "1,234,567     1"),
        ("[{{ 'x'|center(5) }}] {{ 'ab'.ljust(4) }}|", "[  x  ] ab  |"),
        ("{{ 10 ** 100 > 0 }} {{ 2 ** 10 * 3 }}", "True 3072"),
        ("{% for i in range(3) %}{{ i }}{% endfor %} {{ 'a' ~ 'b' + 'c' }}", "012 abc"),
        ("{{ coupon|lower|center(12)|trim }} {{ ['a', 'b']|join(', ') }}", "spring10 a, b"),
    ],
)
def test_ordinary_templates_still_render(body: str, text: str) -> None:
    """Variables, formats, widths, powers and a loop within reason render as before."""
    assert render.render(None, body, SAMPLE, strict=True).text == text
