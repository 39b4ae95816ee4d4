"""A local stand-in for a measurement partner, for the demo and integration tests.

Pure HTTP: nothing here imports Django models, so tests can run a
``PartnerSimulator`` in a thread or the ``partner_simulator`` command as a
subprocess. Push partners receive signed NDJSON batches (``server``); pull
partners download them (``puller``); both count what they got and can report
the counts back to the gateway (``reporter``).
"""
