"""Message templates rendered: Jinja2's immutable sandbox, bounded in effort and size.

Pure (no I/O, no database): this is what a sandbox worker process imports and runs
(server/sandbox.py); ``server.followup.templates`` finds templates and renders them through it. The
rules here refuse at once what makes a big number or a long text (a power, a repetition, a format
width, a concatenation, a filter's width); the worker's limits (time, memory, output) catch the rest.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2 import Template as JinjaTemplate
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from server.config import SANDBOX_OUTPUT_CHARS
from server.errors import InvalidInput

MAX_TEMPLATE_CHARS = 20_000
# A rendered message must not blow up (a template looping to build megabytes); the server's
# ``sandbox_output_chars`` setting replaces this default. Texts built inside a template are held to
# the same size: a message never needs a bigger one.
MAX_RENDERED_CHARS = SANDBOX_OUTPUT_CHARS
# Loops in a message template iterate at most this often (the sandbox's own bound is 100,000).
MAX_RANGE = 1000
# The biggest integer a template may compute (about 1,200 digits): prices, counts and percentages need
# a few; 9**64**64 needs millions and minutes of CPU.
MAX_INT_BITS = 4096
# Filters and text methods whose number arguments are widths or counts of output.
_WIDTH_FILTERS = frozenset({"center", "indent", "truncate", "wordwrap", "batch", "slice"})
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
# A printf-style conversion: its width and precision are what make '%010000000d' % 1 ten megabytes.
_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?([a-zA-Z%])")

# The size limit of the render under way (a worker renders one template at a time; a context
# variable keeps in-process renders apart all the same).
_max_chars: ContextVar[int] = ContextVar("template_max_chars", default=MAX_RENDERED_CHARS)


def _too_big(what: str) -> SecurityError:
    return SecurityError(f"{what} over {_max_chars.get():,} characters, more than a message may hold")


def _check_sized(value: Any, what: str) -> Any:
    if isinstance(value, str | list | tuple | dict) and len(value) > _max_chars.get():
        raise _too_big(what)
    return value


def _check_width(n: Any, what: str) -> None:
    if isinstance(n, int) and not isinstance(n, bool) and n > _max_chars.get():
        raise _too_big(what)


def _check_percent(fmt: str) -> None:
    """Widths and precisions of a printf-style format (``'%010000000d' % 1``), before it runs."""
    for width, precision, _kind in _PERCENT.findall(fmt):
        if "*" in (width, precision):
            raise SecurityError("a '*' width in a format: write the width out")
        for n in (width, precision):
            if n and len(n) > 9:
                raise _too_big("a format width")
            _check_width(int(n or 0), "a format width")


def _check_format(fmt: str) -> None:
    """Widths and precisions of a ``str.format`` string (``'{:>10000000}'.format(1)``)."""
    for _text, field, spec, _conversion in string.Formatter().parse(fmt):
        if field is None or not spec:
            continue
        if "{" in spec:
            raise SecurityError("a format width taken from an argument: write the width out")
        for n in re.findall(r"\d+", spec):
            if len(n) > 9:
                raise _too_big("a format width")
            _check_width(int(n), "a format width")


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a join that refuses texts over the size limit (``{% set a = a ~ a %}``
    repeated doubles a text each time); everything else as Jinja compiles it."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, also bounded in effort and size: every operator, call and filter that can make a
    big number or a long text is checked before it runs (or, where its size cannot be known before,
    right after). The worker process's limits (server/sandbox.py) back these rules up."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        ints = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and ints and right > 0 and left.bit_length() * right > MAX_INT_BITS:
            raise SecurityError(f"a power over {MAX_INT_BITS} bits, bigger than any number in a message")
        if operator == "*" and ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise SecurityError(f"a product over {MAX_INT_BITS} bits, bigger than any number in a message")
        limit = _max_chars.get()
        sequences = (str, list, tuple)
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, sequences) and isinstance(n, int) and len(seq) * n > limit:
                    raise _too_big("a repetition")
        both = isinstance(left, sequences) and isinstance(right, sequences)
        if operator == "+" and both and len(left) + len(right) > limit:
            raise _too_big("a text")
        if operator == "%" and isinstance(left, str):
            _check_percent(left)
        return _check_sized(super().call_binop(context, operator, left, right), "a text")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        method = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        if isinstance(getattr(method, "__self__", None), str):
            name = getattr(method, "__name__", "")
            if name in _WIDTH_METHODS:
                for n in (*args, *kwargs.values()):
                    _check_width(n, f"the {name} width")
            elif name in ("format", "format_map"):
                _check_format(method.__self__)
        return _check_sized(super().call(__context, __obj, *args, **kwargs), "a text")

    def bounded_concat(self, parts: Iterable[Any]) -> str:
        texts = [str(p) for p in parts]
        if sum(map(len, texts)) > _max_chars.get():
            raise _too_big("a text")
        return "".join(texts)


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passes = getattr(func, "jinja_pass_arg", None) is not None  # context/environment comes first

    @functools.wraps(func)  # keeps jinja_pass_arg
    def bounded(*args: Any, **kwargs: Any) -> Any:
        value_at = 1 if passes else 0
        if name in _WIDTH_FILTERS:
            for n in (*args[value_at + 1 :], *kwargs.values()):
                _check_width(n, f"the {name} width")
        if name == "format" and len(args) > value_at and isinstance(args[value_at], str):
            _check_percent(args[value_at])
        return _check_sized(func(*args, **kwargs), f"the {name} filter's result")

    return bounded


def _bounded_range(*args: int) -> range:
    found = range(*args)
    if len(found) > MAX_RANGE:
        raise SecurityError(f"range of more than {MAX_RANGE} items")
    return found


def _make(**options: Any) -> _Sandbox:
    env = _Sandbox(autoescape=False, **options)
    env.globals["range"] = _bounded_range
    env.filters = {name: _bounded_filter(name, f) for name, f in env.filters.items()}
    return env


_ENV = _make(undefined=StrictUndefined)
_LENIENT = _make()


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str


def check(subject: str | None, body: str) -> None:
    """Compile a template (both parts) or raise InvalidInput naming the line that is wrong."""
    check_size(subject, body)
    for part in (subject or "", body):
        try:
            _check_shape(_ENV.parse(part))
        except SecurityError as exc:
            raise InvalidInput(f"template error: {exc}", code="bad_template") from None
        except MemoryError:
            raise
        except Exception as exc:  # a syntax error, or nesting too deep for the parser
            raise InvalidInput(f"template error: {exc}", code="bad_template") from None


def check_size(subject: str | None, body: str) -> None:
    """The template's own length (checked where it arrives; everything else in a worker)."""
    if len(body) > MAX_TEMPLATE_CHARS or (subject is not None and len(subject) > 200):
        raise InvalidInput(f"a template is at most {MAX_TEMPLATE_CHARS} characters (subject 200)")


def _check_shape(tree: nodes.Template) -> None:
    """A message has at most single loops: no loop in a loop, and no macro or call block, which
    would hide one (a macro looping 1,000 times called from a loop of 1,000)."""
    if any(True for _ in tree.find_all((nodes.Macro, nodes.CallBlock))):
        raise SecurityError("no macros or call blocks in a message")
    for loop in tree.find_all(nodes.For):
        if loop.recursive:
            raise SecurityError("no recursive loops in a message")
        if any(True for _ in loop.find_all(nodes.For)):
            raise SecurityError("no loop inside a loop in a message")


@functools.lru_cache(maxsize=256)
def _compiled(source: str, strict: bool) -> JinjaTemplate:
    """A template checked and compiled once (about a millisecond each time otherwise), then rendered
    per message."""
    env = _ENV if strict else _LENIENT
    tree = env.parse(source)
    _check_shape(tree)
    return env.from_string(tree)


def _render_part(source: str, strict: bool, context: dict[str, Any], max_chars: int) -> str:
    """One part, streamed: a template writing more than ``max_chars`` stops there."""
    pieces: list[str] = []
    size = 0
    for piece in _compiled(source, strict).generate(context):
        size += len(piece)
        if size > max_chars:
            raise SecurityError(f"the rendered message is over {max_chars:,} characters")
        pieces.append(piece)
    return "".join(pieces)


def render(
    subject: str | None,
    body: str,
    context: dict[str, Any],
    *,
    strict: bool = False,
    max_chars: int = MAX_RENDERED_CHARS,
) -> Rendered:
    """Render both parts, at most ``max_chars`` together. Lenient by default (a missing variable
    renders empty: a message still goes out); strict for previews, so a typo in a variable name shows
    up before sending. In the server this runs in a worker process: see ``render_isolated``."""
    token = _max_chars.set(max_chars)
    try:
        text = _render_part(body, strict, context, max_chars)
        subj = _render_part(subject, strict, context, max_chars).strip() if subject else None
    except MemoryError:
        raise  # the worker reports it as its memory limit
    except Exception as exc:
        raise InvalidInput(f"template error: {exc}", code="bad_template") from None
    finally:
        _max_chars.reset(token)
    if len(text) + len(subj or "") > max_chars:
        raise InvalidInput(f"the rendered message is over {max_chars:,} characters", code="bad_template")
    return Rendered(subj, text)


def render_job(
    subject: str | None, body: str, context: dict[str, Any], strict: bool, max_chars: int
) -> dict[str, str | None]:
    """``render`` as a sandbox job: JSON in, JSON out."""
    rendered = render(subject, body, context, strict=strict, max_chars=max_chars)
    return {"subject": rendered.subject, "text": rendered.text}
