"""The flow bot: flows as versioned definitions, the engine that runs them, bot sessions."""
