from tests.merging.recording import domain_events  # noqa: F401 - a fixture
