"""Background jobs of the flow bot (loket.jobs discovers ``tasks`` modules of installed apps)."""

from loket.jobs.policy import job


@job(retries=3, backoff_base=5.0)
def bot_turn(message_id: int) -> None:
    from loket.bots import engine

    engine.turn(message_id)


@job(retries=3, backoff_base=5.0)
def bot_fetch(session_id: int, at: int) -> None:
    """A step that calls out (HTTP lookup, file), outside the turn's transaction; then on."""
    from loket.bots import engine

    engine.go_on_after_fetch(session_id, at)


@job(every_seconds=30.0)
def bot_timeouts() -> None:
    from loket.bots import engine

    engine.run_timeouts()
