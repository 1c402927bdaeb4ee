"""One thin click command per module; the work happens in the core modules they call."""
