"""Errors raised by the privacy package."""

from __future__ import annotations


class MalformedConsent(ValueError):
    """A consent signal (TC string, US Privacy string, flag) that cannot be trusted.

    Callers fail closed on it: an event whose consent cannot be read is never sent.
    """
