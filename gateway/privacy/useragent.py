"""User agents reduced to the level a feed allows (``Feed.user_agent_level``).

Levels:

- ``remove``: no user agent at all.
- ``family``: the app or browser family and the OS family, e.g.
  ``"Podcasts; iOS"``, ``"Spotify; Android"``, ``"Chrome; Windows"``.
- ``major``: the same with major versions, e.g. ``"Podcasts 1580; iOS 16"``,
  ``"Chrome 120; Windows 10"``.
- ``full``: the string as received.

Below ``full`` the result follows one grammar: ``FAMILY [" " MAJOR] ["; " OS
[" " MAJOR]]``. The OS part is left out when the OS is not recognised; a family
that is not recognised is ``"Other"``, so a user agent we know nothing about is
just ``"Other"``. The result is assembled only from names in this module's
tables and versions of at most four ASCII digits: device models, build numbers,
locales or a token an SDK appended never reach a partner, however the user agent
is crafted.

No dependency: a short ordered table of regular expressions, first match wins
(apps before browsers, since in-app browsers carry browser tokens too; Edge and
Opera before Chrome, Chrome before Safari, as each claims to be the next). Results
are cached per distinct string, which is what makes this cheap: a window of a
million events carries a few thousand distinct user agents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

REMOVE = "remove"
FAMILY = "family"
MAJOR = "major"
FULL = "full"
LEVELS = (REMOVE, FAMILY, MAJOR, FULL)

OTHER = "Other"
# Longer strings are not parsed (they reduce to "Other" below "full"): real user
# agents stay well under this, and neither the regexes nor the cache should
# spend time or memory on a pathological one.
MAX_PARSED_LENGTH = 1024

# Reduced user agents per level. When full, a cache starts over: cheaper per
# miss than an LRU, and a window's few thousand user agents fit anyway.
CACHE_SIZE = 65_536
_caches: dict[str, dict[str, str]] = {FAMILY: {}, MAJOR: {}}

_Version = Callable[[re.Match[str]], str | None]


def _digits(match: re.Match[str]) -> str | None:
    # \d is ASCII-only here (re.ASCII); int() drops leading zeros.
    version = match.groupdict().get("v")
    return None if version is None else str(int(version))


def _no_version(match: re.Match[str]) -> str | None:
    return None


# "10.0" in "Windows NT 10.0" (Windows 11 says 10.0 too).
_WINDOWS_NT = {"10.0": "10", "6.3": "8.1", "6.2": "8", "6.1": "7", "6.0": "Vista", "5.1": "XP"}


def _windows(match: re.Match[str]) -> str | None:
    return _WINDOWS_NT.get(match["nt"])


def _darwin(match: re.Match[str]) -> str | None:
    # CFNetwork apps name the Darwin kernel, not iOS: Darwin 14 is iOS 8 ... Darwin 24 is iOS 18.
    darwin = int(match["v"]) if match["v"] else 0
    return str(darwin - 6) if 14 <= darwin <= 40 else None


# "Android/33" (Spotify and others) is the API level, not the version.
_ANDROID_API = {
    21: 5, 22: 5, 23: 6, 24: 7, 25: 7, 26: 8, 27: 8, 28: 9, 29: 10, 30: 11,
    31: 12, 32: 12, 33: 13, 34: 14, 35: 15, 36: 16,
}  # fmt: skip


def _android_api(match: re.Match[str]) -> str | None:
    level = int(match["v"]) if match["v"] else 0
    if level in _ANDROID_API:
        return str(_ANDROID_API[level])
    return str(level) if 1 <= level <= 20 else None


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]
    # Lower-case text of which at least one must occur for the pattern to match:
    # a substring test is far cheaper than a case-insensitive search.
    hints: tuple[str, ...]
    version: _Version


# A version: one to four digits, not followed by another digit (a longer run is
# no version we trust, and could carry an identifier). Optional, so a token with
# such a run still names its family.
_V = r"(?:(?P<v>\d{1,4})(?!\d))?"


def _rule(name: str, pattern: str, hints: str, version: _Version = _digits) -> _Rule:
    """A rule; ``hints`` separated by "|" (each must be implied by every match of the pattern)."""
    compiled = re.compile(pattern, re.ASCII | re.IGNORECASE)
    return _Rule(name, compiled, tuple(hints.split("|")), version)


_FAMILIES = (
    _rule(
        "Bot",
        r"bot/|adsbot|\bbot\b|crawler|spider|facebookexternalhit|slurp",
        "bot|crawler|spider|facebookexternalhit|slurp",
        _no_version,
    ),
    # Audio and podcast apps.
    _rule("Spotify", rf"\bSpotify/{_V}", "spotify/"),
    _rule("Google Podcasts", r"\bGoogle-?Podcasts?\b", "googlepodcast|google-podcast", _no_version),
    _rule("Podcasts", rf"(?:^|\s)Podcasts/{_V}", "podcasts/"),  # Apple Podcasts
    _rule("Overcast", rf"\bOvercast/{_V}", "overcast/"),
    _rule("Pocket Casts", rf"\bPocket ?Casts\b(?:/{_V})?", "pocketcasts|pocket casts"),
    _rule("Castbox", rf"\bCastBox/{_V}", "castbox/"),
    _rule("Castro", rf"\bCastro[ /]{_V}", "castro"),
    _rule("Podcast Addict", rf"\bPodcastAddict/v?{_V}", "podcastaddict/"),
    _rule("Amazon Music", rf"\bAmazon ?Music/{_V}", "amazonmusic/|amazon music/"),
    _rule("Alexa", rf"\bAlexaMediaPlayer/{_V}", "alexamediaplayer/"),
    _rule("iHeartRadio", rf"\biHeartRadio/{_V}", "iheartradio/"),
    _rule("Audible", rf"\bAudible/{_V}", "audible/"),
    _rule("Deezer", rf"\bDeezer/{_V}", "deezer/"),
    _rule("Pandora", rf"\bPandora/{_V}", "pandora/"),
    _rule("SoundCloud", rf"\bSoundCloud/{_V}", "soundcloud/"),
    _rule("Stitcher", rf"\bStitcher/{_V}", "stitcher/"),
    _rule("TuneIn", r"\bTuneIn", "tunein", _no_version),
    _rule(
        "YouTube Music",
        rf"com\.google\.(?:ios\.youtubemusic|android\.apps\.youtube\.music)/{_V}",
        "youtubemusic/|youtube.music/",
    ),
    _rule("YouTube", rf"com\.google\.(?:ios|android)\.youtube/{_V}", ".youtube/"),
    _rule("Facebook", rf"\bFBAV/{_V}", "fbav/"),
    _rule("Facebook", r"\bFBAN/", "fban/", _no_version),
    _rule("Instagram", rf"\bInstagram {_V}", "instagram "),
    _rule("Sonos", rf"\bSonos/{_V}", "sonos/"),
    _rule("Roku", rf"\bRoku/{_V}", "roku/"),
    # Media players that apps and browsers stream through.
    _rule("AppleCoreMedia", rf"\bAppleCoreMedia/{_V}", "applecoremedia/"),
    _rule("ExoPlayer", rf"\bExoPlayerLib/{_V}", "exoplayerlib/"),
    _rule("Android MediaPlayer", rf"\bstagefright/{_V}", "stagefright/"),
    _rule("VLC", rf"\bVLC/{_V}", "vlc/"),
    # Browsers: each of these also claims the ones after it.
    _rule("Edge", rf"\bEdg(?:e|A|iOS)?/{_V}", "edg"),
    _rule("Opera", rf"\b(?:OPR|OPiOS)/{_V}", "opr/|opios/"),
    _rule("Opera", r"\bOpera\b", "opera", _no_version),
    _rule("Samsung Internet", rf"\bSamsungBrowser/{_V}", "samsungbrowser/"),
    _rule("UC Browser", rf"\bUCBrowser/{_V}", "ucbrowser/"),
    _rule("Yandex Browser", rf"\bYaBrowser/{_V}", "yabrowser/"),
    _rule("Firefox", rf"\b(?:Firefox|FxiOS)/{_V}", "firefox/|fxios/"),
    _rule("Chrome", rf"\b(?:Chrome|CriOS)/{_V}", "chrome/|crios/"),
    _rule("Safari", rf"\bVersion/{_V}[^ ]*(?: Mobile/\S+)? Safari/", " safari/"),
    _rule("Internet Explorer", rf"\bMSIE {_V}", "msie "),
    _rule("Internet Explorer", rf"\bTrident/.*\brv:{_V}", "trident/"),
)

_SYSTEMS = (
    _rule("watchOS", rf"\bwatchOS[ /]{_V}", "watchos"),
    _rule("tvOS", rf"\btvOS[ /]{_V}", "tvos"),
    _rule("tvOS", r"\bAppleTV", "appletv", _no_version),
    # iOS before macOS: iOS user agents say "like Mac OS X".
    _rule("iOS", rf"\b(?:iPhone OS|CPU OS|iOS)[ /]{_V}", "iphone os|cpu os|ios"),
    _rule("iOS", r"\b(?:iPhone|iPad|iPod)\b", "iphone|ipad|ipod", _no_version),
    _rule("Android", rf"\bAndroid {_V}", "android "),
    _rule("Android", rf"\bAndroid/{_V}", "android/", _android_api),
    _rule("Android", r"\bAndroid\b", "android", _no_version),
    _rule("Windows Phone", rf"\bWindows Phone(?: OS)? {_V}", "windows phone"),
    _rule("Windows", r"\bWindows NT (?P<nt>\d{1,2}\.\d)", "windows nt ", _windows),
    _rule("Windows", r"\bWindows\b", "windows", _no_version),
    _rule("Chrome OS", r"\bCrOS\b", "cros", _no_version),
    _rule("macOS", rf"\bMac OS X {_V}", "mac os x "),
    _rule("macOS", r"\bMacintosh\b", "macintosh", _no_version),
    # Darwin without a Mac token: an iOS app speaking through CFNetwork.
    _rule("iOS", rf"\bDarwin/{_V}", "darwin/", _darwin),
    _rule("Linux", r"\bLinux\b", "linux", _no_version),
    _rule("webOS", r"\bWeb0S\b|\bwebOS\b", "web0s|webos", _no_version),
    _rule("Tizen", rf"\bTizen[ /]{_V}", "tizen"),
    _rule("PlayStation", r"\bPlayStation\b", "playstation", _no_version),
    _rule("Xbox", r"\bXbox\b", "xbox", _no_version),
)

# Every name a reduced user agent can contain.
FAMILY_NAMES = frozenset({OTHER, *(rule.name for rule in _FAMILIES)})
SYSTEM_NAMES = frozenset(rule.name for rule in _SYSTEMS)


def reduce_user_agent(value: object, *, level: str) -> str | None:
    """``value`` reduced to ``level``; None when nothing may be sent.

    None for "remove" and for a value that is not a string. Raises ValueError for
    a level that is not one of ``LEVELS``: a misconfigured feed must fail loudly
    (the privacy filter then drops the event), never send more than it should.
    """
    cache = _caches.get(level)
    if cache is not None and type(value) is str:
        reduced = cache.get(value)
        if reduced is not None:
            return reduced
    if level == FULL:
        return value if isinstance(value, str) else None
    if level == REMOVE:
        return None
    if cache is None:
        raise ValueError(f"unknown user agent level {level!r}")
    if not isinstance(value, str):
        return None
    if len(value) > MAX_PARSED_LENGTH:
        return OTHER
    reduced = _reduced(value, level)
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[value] = reduced
    return reduced


def reducer(*, level: str) -> Callable[[object], str | None]:
    """``reduce_user_agent`` with ``level`` bound: the same results, cheaper once per event."""
    cache = _caches.get(level)

    def reduce(value: object) -> str | None:
        if cache is not None and type(value) is str:
            found = cache.get(value)
            if found is not None:
                return found
        return reduce_user_agent(value, level=level)

    return reduce


def uncached_reducer(*, level: str) -> Callable[[object], str | None]:
    """``reduce_user_agent`` with ``level`` bound that remembers nothing.

    For callers that keep their own, shorter-lived cache (the privacy filter keeps
    one per policy, which lives as long as a worker keeps it:
    gateway.delivery.kept_policies). An unknown level raises ValueError on
    each call, as ``reduce_user_agent`` does.
    """
    if level not in _caches:  # remove, full, or unknown: nothing to parse or remember
        return lambda value: reduce_user_agent(value, level=level)

    def reduce(value: object) -> str | None:
        if not isinstance(value, str):
            return None
        if len(value) > MAX_PARSED_LENGTH:
            return OTHER
        return _reduced(value, level)

    return reduce


def reduction_cache(*, level: str) -> dict[str, str] | None:
    """The cache ``reducer(level=level)`` reads, or None for a level without one."""
    return _caches.get(level)


def _reduced(value: str, level: str) -> str:
    # ASCII-only lowering, like the patterns' re.ASCII | re.IGNORECASE.
    lowered = value.encode("ascii", "replace").decode("ascii").lower()
    family, family_version = _first_match(_FAMILIES, value, lowered)
    system, system_version = _first_match(_SYSTEMS, value, lowered)
    if not family:
        family, family_version = OTHER, None
    if level == MAJOR:
        family = _with_version(family, family_version)
        system = _with_version(system, system_version) if system else system
    return f"{family}; {system}" if system else family


def _first_match(rules: tuple[_Rule, ...], value: str, lowered: str) -> tuple[str, str | None]:
    for rule in rules:
        for hint in rule.hints:
            if hint in lowered:
                match = rule.pattern.search(value)
                if match is not None:
                    return rule.name, rule.version(match)
                break
    return "", None


def _with_version(name: str, version: str | None) -> str:
    return f"{name} {version}" if version else name
