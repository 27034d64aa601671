"""Background jobs of automation (loket.jobs discovers ``tasks`` modules of installed apps)."""

from loket.automation.assignment import assign_waiting_conversations  # noqa: F401 - periodic job
