"""Use cases: load through a unit of work, ask the domain, save, send follow-ups after commit."""
