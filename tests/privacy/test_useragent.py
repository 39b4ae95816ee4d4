"""User agents reduced to a feed's level: remove, family, major or full."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.privacy import useragent
from gateway.privacy.useragent import (
    FAMILY_NAMES,
    MAX_PARSED_LENGTH,
    SYSTEM_NAMES,
    reduce_user_agent,
    reducer,
)

APPLE_PODCASTS = "Podcasts/1580.2 CFNetwork/1410.0.3 Darwin/22.6.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)

# user agent, family level, major level
KNOWN = [
    (APPLE_PODCASTS, "Podcasts; iOS", "Podcasts 1580; iOS 16"),
    ("Spotify/8.8.56 iOS/17.1.1 (iPhone15,2)", "Spotify; iOS", "Spotify 8; iOS 17"),
    # Spotify on Android gives the API level: 33 is Android 13.
    ("Spotify/8.8.56 Android/33 (SM-S911B)", "Spotify; Android", "Spotify 8; Android 13"),
    (CHROME_WINDOWS, "Chrome; Windows", "Chrome 120; Windows 10"),
    (
        CHROME_WINDOWS + " Edg/120.0.2210.91",
        "Edge; Windows",
        "Edge 120; Windows 10",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
        "Safari; iOS",
        "Safari 17; iOS 17",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1 Safari/605.1.15",
        "Safari; macOS",
        "Safari 17; macOS 10",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
        "Samsung Internet; Android",
        "Samsung Internet 23; Android 14",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1",
        "Chrome; iOS",
        "Chrome 119; iOS 16",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "Firefox; Linux",
        "Firefox 121; Linux",
    ),
    (
        "AppleCoreMedia/1.0.0.21B91 (iPhone; U; CPU OS 17_1_1 like Mac OS X; en_us)",
        "AppleCoreMedia; iOS",
        "AppleCoreMedia 1; iOS 17",
    ),
    (
        "AlexaMediaPlayer/2.1.4676.0 (Linux;Android 5.1.1) ExoPlayerLib/1.5.9",
        "Alexa; Android",
        "Alexa 2; Android 5",
    ),
    ("Overcast/3.0 (+http://overcast.fm/; iOS podcast app)", "Overcast; iOS", "Overcast 3; iOS"),
    (
        "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
        "Internet Explorer; Windows",
        "Internet Explorer 11; Windows 7",
    ),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Bot", "Bot"),
]


@pytest.mark.parametrize(("agent", "family", "major"), KNOWN)
def test_a_known_user_agent_is_reduced_to_its_family(agent: str, family: str, major: str) -> None:
    assert reduce_user_agent(agent, level="family") == family


@pytest.mark.parametrize(("agent", "family", "major"), KNOWN)
def test_the_major_level_adds_major_versions(agent: str, family: str, major: str) -> None:
    assert reduce_user_agent(agent, level="major") == major


def test_full_sends_the_string_as_received() -> None:
    assert reduce_user_agent(APPLE_PODCASTS, level="full") == APPLE_PODCASTS


def test_remove_sends_nothing() -> None:
    assert reduce_user_agent(APPLE_PODCASTS, level="remove") is None


@pytest.mark.parametrize("level", ["Family", "", "minor", None])
def test_an_unknown_level_is_refused(level: object) -> None:
    with pytest.raises(ValueError, match="unknown user agent level"):
        reduce_user_agent(APPLE_PODCASTS, level=level)  # type: ignore[arg-type]


@pytest.mark.parametrize("level", ["remove", "family", "major", "full"])
@pytest.mark.parametrize("agent", [None, 42, b"Podcasts/1580", ["Chrome/120"]])
def test_a_value_that_is_not_a_string_is_removed_at_every_level(agent: object, level: str) -> None:
    assert reduce_user_agent(agent, level=level) is None


@pytest.mark.parametrize("agent", ["", "curl-ish", "x" * 500, "Cubot X30 Build/QP1A", "日本語"])
def test_an_unknown_user_agent_is_other(agent: str) -> None:
    assert reduce_user_agent(agent, level="family") == "Other"
    assert reduce_user_agent(agent, level="major") == "Other"


def test_an_unknown_app_on_a_known_system_keeps_the_system() -> None:
    agent = "PrivateApp/2.0 (Linux; Android 13; user=alice@example.com)"

    assert reduce_user_agent(agent, level="family") == "Other; Android"
    assert reduce_user_agent(agent, level="major") == "Other; Android 13"


def test_a_huge_user_agent_is_other_below_full_and_is_not_cached() -> None:
    agent = CHROME_WINDOWS + " " + "A" * (MAX_PARSED_LENGTH + 1)

    assert reduce_user_agent(agent, level="family") == "Other"
    assert reduce_user_agent(agent, level="major") == "Other"
    assert reduce_user_agent(agent, level="full") == agent
    assert all(agent not in cache for cache in useragent._caches.values())


def test_a_version_of_more_than_four_digits_is_left_out() -> None:
    # A long digit run is no version we trust, and could carry an identifier.
    agent = "Spotify/1234567890 Android/33"

    assert reduce_user_agent(agent, level="major") == "Spotify; Android 13"


def test_digits_outside_ascii_are_not_versions() -> None:
    agent = "Chrome/\u0661\u0662\u0660 (Linux; Android \u0661\u0664)"

    assert reduce_user_agent(agent, level="major") == "Chrome; Android"


def test_unicode_around_known_tokens_does_not_leak() -> None:
    agent = "🎧 Spotify/8.8 iOS/17.1 (Ünïcødé-Gerät; ☃)"

    assert reduce_user_agent(agent, level="major") == "Spotify 8; iOS 17"


def test_the_same_user_agent_is_reduced_once(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = "Spotify/8.9.1 iOS/17.2 (iPhone16,1)"
    reduce_user_agent(agent, level="major")
    calls = []
    monkeypatch.setattr(useragent, "_reduced", lambda *args: calls.append(args))

    assert reduce_user_agent(agent, level="major") == "Spotify 8; iOS 17"
    assert calls == []


def test_a_full_cache_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(useragent, "CACHE_SIZE", 2)
    monkeypatch.setitem(useragent._caches, "family", {})
    for agent in ("Spotify/8 iOS/17", "Spotify/8 Android/33", "Overcast/3"):
        reduce_user_agent(agent, level="family")

    assert useragent._caches["family"] == {"Overcast/3": "Overcast"}


_NAME = "|".join(re.escape(name) for name in sorted(FAMILY_NAMES))
_SYSTEM = "|".join(re.escape(name) for name in sorted(SYSTEM_NAMES))
# The grammar of every reduced user agent: table names and short versions only.
_REDUCED = re.compile(
    rf"(?:{_NAME})(?: [0-9]{{1,4}})?(?:; (?:{_SYSTEM})(?: [0-9A-Za-z.]{{1,5}})?)?"
)


@given(st.text(max_size=300))
def test_whatever_the_input_the_output_is_only_table_names_and_versions(agent: str) -> None:
    for level in ("family", "major"):
        assert _REDUCED.fullmatch(reduce_user_agent(agent, level=level) or "")


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200))
def test_crafted_ascii_around_real_tokens_still_follows_the_grammar(noise: str) -> None:
    agent = f"{noise} Spotify/8.{noise} (Linux; Android 13; {noise}) Chrome/{noise}"

    for level in ("family", "major"):
        assert _REDUCED.fullmatch(reduce_user_agent(agent, level=level) or "")


_TOKENS = [
    "Spotify/8.8", "Podcasts/1580.2", "Google-Podcasts", "Pocket Casts", "PocketCasts/7",
    "Chrome/120.0", "CriOS/119", "Edg/120", "EdgA/12", "OPR/99", "Opera", "Firefox/121",
    "FxiOS/3", "Version/17.1 Mobile/15E148 Safari/604.1", "Version/17 Safari/605", "MSIE 9.0",
    "Trident/7.0; rv:11.0", "com.google.android.youtube/19", "com.google.ios.youtubemusic/6",
    "FBAN/FBIOS;FBAV/400", "Googlebot/2.1", "crawler", "(iPhone; CPU iPhone OS 17_1 like",
    "Mac OS X 10_15_7", "Macintosh", "Android 14", "Android/33", "Windows NT 6.1",
    "Windows Phone 10", "CrOS x86_64", "Darwin/22.6.0", "Linux", "Web0S", "Tizen 6.0", "Xbox",
    "ANDROID 9", "sPoTiFy/1", "İstanbul", "ǅ", "K",
]  # fmt: skip


@given(st.lists(st.sampled_from(_TOKENS) | st.text(max_size=8), max_size=8))
def test_the_hint_prefilter_never_changes_a_result(parts: list[str]) -> None:
    agent = " ".join(parts)
    lowered = agent.encode("ascii", "replace").decode("ascii").lower()

    for rules in (useragent._FAMILIES, useragent._SYSTEMS):
        brute = next(
            ((r.name, r.version(m)) for r in rules if (m := r.pattern.search(agent))), ("", None)
        )
        assert useragent._first_match(rules, agent, lowered) == brute


@pytest.mark.parametrize("level", ["remove", "family", "major", "full"])
@pytest.mark.parametrize("agent", [APPLE_PODCASTS, CHROME_WINDOWS, "", "x" * 2000, None, 7])
def test_a_bound_reducer_answers_as_reduce_user_agent(agent: object, level: str) -> None:
    reduce = reducer(level=level)

    for _ in range(2):  # the second time from the cache
        assert reduce(agent) == reduce_user_agent(agent, level=level)


def test_a_bound_reducer_of_an_unknown_level_fails_when_used() -> None:
    reduce = reducer(level="everything")

    with pytest.raises(ValueError, match="unknown user agent level"):
        reduce(APPLE_PODCASTS)
