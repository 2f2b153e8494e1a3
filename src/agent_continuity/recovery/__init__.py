"""The recovery engine: pure functions of saved state, observation and time."""
