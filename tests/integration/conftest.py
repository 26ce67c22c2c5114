"""The bad-input fixtures, for every integration test: refusals must leave every row alone.

``queued`` records the tasks the web process sends; ``nothing_changes`` checks that no row of any
table changed and no task was queued; ``seeded`` is the state the refusals are tried against.
"""

from tests.integration.test_bad_input import nothing_changes, queued, seeded  # noqa: F401  (fixtures)
