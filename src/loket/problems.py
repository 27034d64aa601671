"""What is wrong with something an admin built (a bot flow, a rule, a macro): every problem
says where it is (a step, a condition, an action) and what is wrong, kept as a translatable
message with its values and translated only when read — so the editor says it in Dutch to a
Dutch admin, and the API in the request's language, from the same check.

Raise with a lazily translated message and its values::

    raise InvalidCondition(_("unknown field “%(name)s”"), name=name)

and place an inner problem inside an outer one with ``within``.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

STEP = _("step “%(step)s”")


class Said:
    """A message with %-values, translated each time it is read: a lazy translation, or a
    message id marked with ``gettext_noop`` where it is kept as data."""

    __slots__ = ("message", "values")

    def __init__(self, message: Any, **values: Any) -> None:
        self.message = message
        self.values = values

    def __str__(self) -> str:
        # A plain str is a message id marked with gettext_noop (kept as data, e.g. in a log).
        text = gettext(self.message) if isinstance(self.message, str) else str(self.message)
        if not self.values:
            return text
        return text % {key: str(value) for key, value in self.values.items()}

    def __repr__(self) -> str:
        return f"Said({str(self)!r})"


class Problem:
    """One thing wrong: ``step`` (for a flow) and the places around it, then what."""

    __slots__ = ("said", "step", "where")

    def __init__(self, said: Said, *, where: tuple[Said, ...] = (), step: str | None = None):
        self.said = said
        self.where = where
        self.step = step

    def within(self, place: Said | None = None, *, step: str | None = None) -> Problem:
        where = (place, *self.where) if place is not None else self.where
        return Problem(self.said, where=where, step=step if step is not None else self.step)

    def text(self) -> str:
        """What is wrong and where, without the step (the editor shows it on the step)."""
        return ": ".join([*(str(place) for place in self.where), str(self.said)])

    def __str__(self) -> str:
        if self.step is None:
            return self.text()
        return f"{Said(STEP, step=self.step)}: {self.text()}"

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return str(self) == other
        if isinstance(other, Problem):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))


class Invalid(ValueError):
    """Something that cannot be saved; ``problems`` says everything that is wrong with it.

    ``Invalid(_("message %(x)s"), x=1)`` for one problem, or ``Invalid(*problems)``."""

    def __init__(self, *problems: Problem | Said | Any, **values: Any) -> None:
        found: list[Problem] = []
        for item in problems:
            if isinstance(item, Problem):
                found.append(item)
            elif isinstance(item, Said):
                found.append(Problem(item))
            else:
                found.append(Problem(Said(item, **values)))
        self.problems = found
        super().__init__(*found)

    def within(self, place: Said | None = None, *, step: str | None = None) -> list[Problem]:
        return [problem.within(place, step=step) for problem in self.problems]

    def __str__(self) -> str:
        return "; ".join(str(problem) for problem in self.problems)


def texts(problems: list[Problem]) -> list[str]:
    """The problems as sentences in the active language (for JSON)."""
    return [str(problem) for problem in problems]
