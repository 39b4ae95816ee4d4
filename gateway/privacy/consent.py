"""The consent engine: which regimes apply to an event, and what each activity may do.

``evaluate(event, policy)`` reads the event's signals (``signals.signal_key``),
decodes its consent strings once per distinct string, decides the regimes
(``regime``), runs the consent checks of each regime per activity, then the
partner's activity rules (``activities``), and returns an ``EngineResult``:
the decision on the event itself, the activities denied (the fields they
cover are removed, the event still goes out) with their reasons, and every
check made, for the audit and for explanations (``explain``).

Order of the checks, so the recorded reason is predictable:

1. the event and its consent object must be readable (``malformed_event``,
   ``malformed_consent``); every consent string present must decode
   (``malformed_consent``), whichever regime applies;
2. the regime: with no regime and a default of "deny", ``default_regime_deny``;
3. TCF (when it applies): a TC string (``tcf_consent_missing``), a GVL
   (``tcf_gvl_missing``), a vendor id, then the legal bases of each activity;
   a failure for ``transmit_event`` drops the event;
4. US signals, GPC, COPPA and LMT/ATT only ever deny identifier and precise
   geo activities: measuring an impression without identifiers stays allowed;
5. activity rules, which can deny what consent allowed but never the reverse.

Results are cached per policy and per distinct ``SignalKey``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.privacy import gpp
from gateway.privacy import tcf as tcf_module
from gateway.privacy.activities import (
    ACTIVITIES,
    ACTIVITY_DEFAULT_DENIED,
    ACTIVITY_RULE_DENIED,
    DEFAULT_PURPOSES,
    FIELD_ACTIVITIES,
    TRANSMIT_DEVICE_IDS,
    TRANSMIT_EVENT,
    TRANSMIT_IP,
    USER_DATA_ACTIVITIES,
    ActivityOutcome,
    ActivityRuleSpec,
    PurposeRequirement,
    RuleContext,
    activity_evaluate,
    rules_by_activity,
)
from gateway.privacy.errors import MalformedConsent
from gateway.privacy.gpp import reasons as gpp_reasons
from gateway.privacy.gvl import GvlVendor
from gateway.privacy.policy import Decision, PartnerPolicy, policy_cache
from gateway.privacy.reasons import Reason
from gateway.privacy.regime import (
    DEFAULT_REGIME_DENY,
    GPP_SECTION_NAMES,
    TCF,
    US_REGIMES,
    US_SECTION_IDS,
    RegimeDecision,
    regimes_decide,
)
from gateway.privacy.signals import (
    SignalKey,
    read_flag,
    signal_key,
)
from gateway.privacy.tcf import TCString
from gateway.privacy.tcf_enforcement import tcf_purpose_allowed, tcf_special_feature_allowed
from gateway.privacy.usprivacy import UsPrivacy, parse_us_privacy

__all__ = [
    "Check",
    "EngineReason",
    "EngineResult",
    "Signals",
    "consent_decision",
    "evaluate",
    "evaluate_signal_key",
    "read_flag",
]

logger = logging.getLogger(__name__)

# Decisions remembered per policy before the cache starts over (a policy lives
# for a build, or as long as a worker keeps it; this bounds memory on
# pathological input).
RESULT_CACHE_SIZE = 100_000
# The most of an IP a child-directed event may carry (COPPA: truncated).
DEFAULT_IPV4_BITS = 24
DEFAULT_IPV6_BITS = 56
# Parts of results shared between signal keys (checks, activity outcomes, regimes),
# per policy, before that table starts over; and drop decisions shared per reason.
SHARED_CACHE_SIZE = 50_000
MAX_SHARED_DROPS = 1_024
# Feed allowlist entries that send the device advertising id.
DEVICE_ID_PATHS = frozenset({"device", "device.ifa"})


class EngineReason:
    """Reason codes of the engine beyond ``gateway.privacy.reasons.Reason``.

    Kept here until they move into ``reasons.py``; stored and shown to
    engineers, so never rename one.
    """

    # Limit ad tracking or an iOS ATT status of 0-2: no device id.
    LMT = "lmt"
    # TCF applies but no Global Vendor List is known to check the vendor's declarations.
    TCF_GVL_MISSING = "tcf_gvl_missing"
    # None of the purposes an identifier activity accepts has a legal basis.
    TCF_NO_PURPOSE_BASIS = "tcf_no_purpose_basis"
    DEFAULT_REGIME_DENY = DEFAULT_REGIME_DENY
    ACTIVITY_RULE_DENIED = ACTIVITY_RULE_DENIED
    ACTIVITY_DEFAULT_DENIED = ACTIVITY_DEFAULT_DENIED


@dataclass(frozen=True)
class Check:
    """One check the engine made, in order; ``reason`` is set when it failed."""

    step: str
    subject: str
    passed: bool
    reason: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Signals:
    """The event's signals, decoded; consent strings are kept exactly as received."""

    key: SignalKey
    tc: Any = None  # tcf.TCString
    tc_source: str | None = None  # "consent.tcf" or "gpp:tcfeuv2"
    gpp: Any = None  # the decoded GPP string (gateway.privacy.gpp)
    gpp_sections: tuple[str, ...] = ()  # applicable GPP section names
    # The applicable GPP US sections in US national terms.
    gpp_us_views: tuple[Any, ...] = ()
    gpp_us_reasons: tuple[str, ...] = ()
    us_privacy: UsPrivacy | None = None
    us_privacy_source: str | None = None  # "consent.us_privacy" or "gpp:uspv1"
    gpc_honoured: bool = False
    coppa_honoured: bool = False
    lmt_honoured: bool = False
    # Why a consent string could not be decoded, and the reason code recorded.
    problem: str | None = None
    problem_reason: str | None = None


@dataclass(frozen=True)
class EngineResult:
    """Everything the engine decided about one event for one partner."""

    decision: Decision
    regime: RegimeDecision | None = None
    signals: Signals | None = None
    activities: tuple[ActivityOutcome, ...] = ()
    # Field activities whose fields must be removed (all of them when the event is dropped).
    denied_activities: frozenset[str] = frozenset(FIELD_ACTIVITIES)
    # "<activity>_denied:<reason>" per denied field activity of an allowed event.
    audit: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()

    @property
    def denied(self) -> dict[str, str]:
        """Denied activities and the reason of each."""
        return {o.activity: o.reason or "" for o in self.activities if not o.allowed}


# One Decision per outcome: they are frozen, and every cached result shares them.
_ALLOWED = Decision.allow()
_DROPS: dict[str, Decision] = {}


def _drop_decision(reason: str) -> Decision:
    decision = _DROPS.get(reason)
    if decision is None:
        decision = Decision.drop(reason)
        if len(_DROPS) < MAX_SHARED_DROPS:  # reason codes are a short, fixed list
            _DROPS[reason] = decision
    return decision


def _dropped(reason: str, **fields: Any) -> EngineResult:
    return EngineResult(decision=_drop_decision(reason), **fields)


_MALFORMED_EVENT = _dropped(Reason.MALFORMED_EVENT)
_MALFORMED_TYPES = _dropped(
    Reason.MALFORMED_CONSENT,
    checks=(Check("signals", "consent", False, Reason.MALFORMED_CONSENT, "wrongly typed field"),),
)
_FILTER_ERROR = _dropped(Reason.FILTER_ERROR)


def evaluate(event: Mapping[str, Any], policy: PartnerPolicy) -> EngineResult:
    """The engine's verdict on ``event`` for ``policy``'s partner; never raises."""
    try:
        # "type(...) is dict" first: an ABC isinstance check costs more than the rest.
        if type(event) is not dict and not isinstance(event, Mapping):
            return _MALFORMED_EVENT
        key = signal_key(event)
    except Exception as exc:
        return _failed(exc, policy)
    return evaluate_signal_key(key, policy)


def evaluate_signal_key(key: tuple[Any, ...] | None, policy: PartnerPolicy) -> EngineResult:
    """``evaluate`` for an event whose ``signals.signal_key`` is ``key``; never raises.

    For callers that read the key themselves (the filter keeps more per key).
    """
    try:
        if key is None:
            return _MALFORMED_TYPES
        compiled = policy.__dict__.get(_COMPILED_ATTRIBUTE)  # _compiled, inline: every event
        if compiled is None:
            compiled = _compiled(policy)
        result = compiled.results.get(key)
        if result is None:
            result = _evaluate_new_key(key, policy, compiled)
        return result
    except Exception as exc:
        return _failed(exc, policy)


def _evaluate_new_key(
    key: tuple[Any, ...], policy: PartnerPolicy, compiled: _Compiled
) -> EngineResult:
    result = _evaluate_key(SignalKey(*key), policy, compiled)
    if len(compiled.results) >= RESULT_CACHE_SIZE:
        compiled.results.clear()
    compiled.results[key] = result
    return result


def _failed(exc: Exception, policy: PartnerPolicy) -> EngineResult:
    # Only the exception type is logged: its message or traceback locals could
    # hold the very identifiers this engine exists to protect.
    logger.error(
        "consent engine failed for partner %s: %s; event dropped",
        getattr(policy, "partner_slug", "?"),
        type(exc).__name__,
    )
    return _FILTER_ERROR


def consent_decision(event: Mapping[str, Any], policy: PartnerPolicy) -> Decision:
    """Whether ``policy``'s partner may receive ``event`` at all."""
    return evaluate(event, policy).decision


# --- Per-policy compilation ------------------------------------------------------------


@dataclass
class _Compiled:
    """A policy's rules in evaluation form, and its decisions per signal key."""

    rules: dict[str, tuple[ActivityRuleSpec, ...]]
    defaults: dict[str, str]
    requirements: dict[str, PurposeRequirement]
    feed_sends_device_ids: bool
    # Keyed by the plain tuple of signal_key (the same fields as SignalKey).
    results: dict[tuple[Any, ...], EngineResult] = field(default_factory=dict)
    # The TCF checks' outcome per TC string (and device access): see _tcf_checks.
    tcf_outcomes: dict[tuple[Any, ...], _TcfOutcome] = field(default_factory=dict)
    # Equal parts of results, shared by the signal keys that reach them (see _Shared).
    shared: _Shared = field(default_factory=lambda: _Shared())


class _Shared:
    """Equal parts of cached results, made once per policy and shared between signal keys.

    A window has tens of thousands of signal keys but only a few hundred distinct
    checks, regimes and activity outcomes. Sharing them keeps a cached result to
    a few objects of its own, which is less memory and, above all, far less for
    the garbage collector to walk through each time it scans the long-lived
    objects. All of them are frozen, so sharing changes no answer.
    """

    __slots__ = ("checks", "gpp", "outcomes", "regimes", "sequences")

    def __init__(self) -> None:
        # (step, subject, reason, detail) -> Check
        self.checks: dict[tuple[str, str, str | None, str], Check] = {}
        # Tuples of checks, by the identities of their (shared) checks.
        self.sequences: dict[tuple[int, ...], tuple[Check, ...]] = {}
        # regimes_decide's arguments -> its decision
        self.regimes: dict[tuple[Any, ...], RegimeDecision] = {}
        # (rule context, consent reasons) -> the activity outcomes and what follows from them
        self.outcomes: dict[tuple[Any, ...], _Outcomes] = {}
        # (GPP string, gpp_sid) -> what gpp_read gave: its reading, or the error it raised
        self.gpp: dict[tuple[str, tuple[int, ...]], GppRead | MalformedConsent] = {}

    def check(self, step: str, subject: str, reason: str | None, detail: str) -> Check:
        key = (step, subject, reason, detail)
        found = self.checks.get(key)
        if found is None:
            found = Check(step, subject, reason is None, reason, detail)
            _remember(self.checks, key, found)
        return found

    def sequence(self, checks: list[Check]) -> tuple[Check, ...]:
        # Keyed by identity: the checks are shared, and each sequence kept holds its
        # checks alive, so an identity in a key is never reused while the key is.
        key = tuple(map(id, checks))
        found = self.sequences.get(key)
        if found is None:
            found = tuple(checks)
            _remember(self.sequences, key, found)
        return found


def _remember(table: dict[Any, Any], key: Any, value: Any) -> None:
    if len(table) >= SHARED_CACHE_SIZE:
        table.clear()  # only sharing is lost: the values stay valid where they are used
    table[key] = value


# The activity outcomes of one rule context and set of consent reasons: the outcomes,
# the field activities they deny, the audit keys of those denials, and the checks
# that record the outcomes.
_Outcomes = tuple[tuple[ActivityOutcome, ...], frozenset[str], tuple[str, ...], tuple["Check", ...]]


_COMPILED_ATTRIBUTE = "_consent_engine"


def _compiled(policy: PartnerPolicy) -> _Compiled:
    return policy_cache(policy, _COMPILED_ATTRIBUTE, lambda: _compile(policy))


def _compile(policy: PartnerPolicy) -> _Compiled:
    configured = dict(policy.activity_purposes)
    return _Compiled(
        rules=rules_by_activity(policy.activity_rules),
        defaults=dict(policy.activity_defaults),
        requirements={a: configured.get(a, DEFAULT_PURPOSES[a]) for a in ACTIVITIES},
        feed_sends_device_ids=not DEVICE_ID_PATHS.isdisjoint(policy.field_allowlist),
    )


def compiled_rules(policy: PartnerPolicy) -> dict[str, tuple[ActivityRuleSpec, ...]]:
    """Each activity's rules of ``policy`` in evaluation order (for previews)."""
    return _compiled(policy).rules


def activity_requirements(policy: PartnerPolicy) -> dict[str, PurposeRequirement]:
    """The TCF requirement of each activity under ``policy`` (configured or default)."""
    return _compiled(policy).requirements


# --- Evaluation of one signal key ---------------------------------------------------------


class _Run:
    """The checks of one evaluation, in order."""

    def __init__(self, shared: _Shared) -> None:
        self.checks: list[Check] = []
        self.shared = shared

    def check(self, step: str, subject: str, reason: str | None, detail: str = "") -> str | None:
        self.checks.append(self.shared.check(step, subject, reason, detail))
        return reason

    def finished(self) -> tuple[Check, ...]:
        """The checks made, as a (shared) tuple."""
        return self.shared.sequence(self.checks)


def _evaluate_key(key: SignalKey, policy: PartnerPolicy, compiled: _Compiled) -> EngineResult:
    shared = compiled.shared
    run = _Run(shared)
    signals = _decode(key, policy, run)
    if signals.problem is not None:
        reason = signals.problem_reason or Reason.MALFORMED_CONSENT
        return _dropped(reason, signals=signals, checks=run.finished())
    regime = _regime(key, policy, shared)
    run.check("regime", ",".join(regime.regimes) or "none", None, regime.why)
    if regime.denied:
        run.check("regime", "default", DEFAULT_REGIME_DENY, regime.why)
        return _dropped(DEFAULT_REGIME_DENY, regime=regime, signals=signals, checks=run.finished())
    consent_reasons: dict[str, str | None] = dict.fromkeys(ACTIVITIES)
    if TCF in regime.regimes:
        event_reason = _tcf_checks(key, signals, policy, compiled, run, consent_reasons)
        if event_reason is not None:
            return _dropped(event_reason, regime=regime, signals=signals, checks=run.finished())
    _user_data_checks(key, signals, regime, policy, run, consent_reasons)
    region = f"{key.country}-{key.region}" if key.country and key.region else None
    # The outcomes depend only on the rule context and the consent reasons.
    outcomes_key = (
        regime.regimes,
        signals.gpp_sections,
        key.country,
        region,
        key.gpc,
        key.coppa,
        tuple(consent_reasons.values()),
    )
    found = shared.outcomes.get(outcomes_key)
    if found is None:
        context = RuleContext(
            regimes=regime.regimes,
            gpp_sections=frozenset(signals.gpp_sections),
            country=key.country,
            region=region,
            gpc=key.gpc,
            coppa=key.coppa,
        )
        found = _outcomes(context, consent_reasons, compiled)
        _remember(shared.outcomes, outcomes_key, found)
    outcomes, denied_activities, audit, activity_checks = found
    run.checks.extend(activity_checks)
    event_outcome = outcomes[0]
    if not event_outcome.allowed:
        return _dropped(
            event_outcome.reason or ACTIVITY_RULE_DENIED,
            regime=regime,
            signals=signals,
            activities=outcomes,
            checks=run.finished(),
        )
    return EngineResult(
        decision=_ALLOWED,
        regime=regime,
        signals=signals,
        activities=outcomes,
        denied_activities=denied_activities,
        audit=audit,
        checks=run.finished(),
    )


def _regime(key: SignalKey, policy: PartnerPolicy, shared: _Shared) -> RegimeDecision:
    region = key.region if key.country == "US" else None
    arguments = (key.gdpr, key.gpp_sid, key.country, region, policy.default_regime)
    regime = shared.regimes.get(arguments)
    if regime is None:
        regime = regimes_decide(
            gdpr=key.gdpr,
            gpp_sid=key.gpp_sid,
            country=key.country,
            region=region,
            default_regime=policy.default_regime,
        )
        _remember(shared.regimes, arguments, regime)
    return regime


def _outcomes(
    context: RuleContext, consent_reasons: dict[str, str | None], compiled: _Compiled
) -> _Outcomes:
    outcomes = tuple(
        activity_evaluate(
            activity=activity,
            rules=compiled.rules[activity],
            default=compiled.defaults.get(activity, "allow"),
            context=context,
            consent_reason=consent_reasons[activity],
        )
        for activity in ACTIVITIES
    )
    denied = [o for o in outcomes[1:] if not o.allowed]
    shared = compiled.shared
    return (
        outcomes,
        frozenset(o.activity for o in denied),
        tuple(f"{o.activity}_denied:{o.reason}" for o in denied),
        tuple(
            shared.check("activity", o.activity, o.reason, f"decided by {o.decided_by}")
            for o in outcomes
        ),
    )


# --- Decoding ---------------------------------------------------------------------------


def _decode(key: SignalKey, policy: PartnerPolicy, run: _Run) -> Signals:
    """Decode every consent string present; a failure sets ``problem`` (fail closed)."""
    fields: dict[str, Any] = {"gpp_sections": _section_names(key.gpp_sid)}
    try:
        if key.tcf is not None:
            fields["tc"] = tcf_module.decode_tc_string(key.tcf)
            fields["tc_source"] = "consent.tcf"
            run.check("decode", "consent.tcf", None, "TC string decoded")
        decoded_gpp = None
        if key.gpp is not None:
            read = _gpp_read_once(key.gpp, key.gpp_sid, run.shared)
            decoded_gpp = read.decoded
            reasons = read.us_reasons
            if not policy.honour_gpc:
                reasons = tuple(r for r in reasons if r != gpp_reasons.GPP_GPC)
            fields.update(
                gpp=decoded_gpp,
                gpp_sections=read.sections,
                gpp_us_views=read.us_views,
                gpp_us_reasons=reasons,
            )
            if "tc" not in fields and read.tc is not None:
                fields["tc"], fields["tc_source"] = read.tc, "gpp:tcfeuv2"
            run.check("decode", "consent.gpp", None, f"sections {', '.join(read.sections)}")
        if key.us_privacy is not None:
            # Read even when GPP's uspv1 overrides it: a malformed string still fails closed.
            parse_us_privacy(key.us_privacy)
            run.check("decode", "consent.us_privacy", None, "US Privacy string read")
        usp = gpp.effective_us_privacy(gpp=decoded_gpp, us_privacy=key.us_privacy)
        if usp is not None:
            from_gpp = decoded_gpp is not None and "uspv1" in decoded_gpp.sections
            fields["us_privacy"] = usp
            fields["us_privacy_source"] = "gpp:uspv1" if from_gpp else "consent.us_privacy"
    except MalformedConsent as exc:
        reason = getattr(exc, "reason", Reason.MALFORMED_CONSENT)
        run.check("decode", "consent", reason, str(exc))
        return Signals(key=key, problem=str(exc), problem_reason=reason, **fields)
    gpc_honoured = (
        key.gpc and policy.honour_gpc and key.country == "US" and key.region in policy.gpc_states
    )
    return Signals(
        key=key,
        gpc_honoured=gpc_honoured,
        coppa_honoured=key.coppa and policy.honour_coppa,
        lmt_honoured=key.limited and policy.honour_lmt,
        **fields,
    )


# --- TCF --------------------------------------------------------------------------------


# The TCF checks of one TC string: the event's drop reason (or None), the consent
# reason set per activity, and the checks made, in order.
_TcfOutcome = tuple[str | None, tuple[tuple[str, str | None], ...], tuple[Check, ...]]
# TCF outcomes remembered per policy before that cache starts over.
TCF_OUTCOME_CACHE_SIZE = 10_000


def _tcf_checks(
    key: SignalKey,
    signals: Signals,
    policy: PartnerPolicy,
    compiled: _Compiled,
    run: _Run,
    consent_reasons: dict[str, str | None],
) -> str | None:
    """The TCF checks; returns the reason the event is dropped, else fills consent_reasons.

    They depend only on the TC string, whether the event has device access and
    the policy, so their outcome is kept per policy (in ``compiled``) and per TC
    string: many signal keys (countries, regions, flags) share one string.
    """
    device_access = key.has_ifa or compiled.feed_sends_device_ids
    if signals.tc_source == "consent.tcf":
        memo_key: tuple[Any, ...] = ("consent.tcf", key.tcf, device_access)
    elif signals.tc_source == "gpp:tcfeuv2":
        memo_key = ("gpp", key.gpp, key.gpp_sid, device_access)
    else:
        return _tcf_checks_run(key, signals, policy, compiled, run, consent_reasons)
    outcome = compiled.tcf_outcomes.get(memo_key)
    if outcome is None:
        own_run = _Run(compiled.shared)
        assigned: dict[str, str | None] = {}
        reason = _tcf_checks_run(key, signals, policy, compiled, own_run, assigned)
        outcome = (reason, tuple(assigned.items()), tuple(own_run.checks))
        if len(compiled.tcf_outcomes) >= TCF_OUTCOME_CACHE_SIZE:
            compiled.tcf_outcomes.clear()
        compiled.tcf_outcomes[memo_key] = outcome
    reason, assignments, checks = outcome
    run.checks.extend(checks)
    consent_reasons.update(assignments)
    return reason


def _tcf_checks_run(
    key: SignalKey,
    signals: Signals,
    policy: PartnerPolicy,
    compiled: _Compiled,
    run: _Run,
    consent_reasons: dict[str, str | None],
) -> str | None:
    tc = signals.tc
    if tc is None:
        return run.check("tcf", "tc_string", Reason.TCF_CONSENT_MISSING, "no TC string")
    if policy.gvl is None:
        return run.check("tcf", "gvl", EngineReason.TCF_GVL_MISSING, "no vendor list")
    vendor_id = policy.gvl_vendor_id
    if vendor_id is None:
        return run.check(
            "tcf", "vendor", Reason.TCF_VENDOR_NOT_CONSENTED, "the partner has no GVL vendor id"
        )
    vendor = gvl_vendor(policy.gvl, vendor_id)
    device_access = key.has_ifa or compiled.feed_sends_device_ids
    for activity in ACTIVITIES:
        requirement = compiled.requirements[activity]
        extra = policy.required_tcf_purposes if activity == TRANSMIT_EVENT else frozenset()
        reason = _requirement_reason(
            requirement,
            tc=tc,
            vendor=vendor,
            vendor_id=vendor_id,
            extra_purposes=extra,
            device_access=device_access,
            run=run,
            activity=activity,
        )
        if activity == TRANSMIT_EVENT and reason is not None:
            return reason
        consent_reasons[activity] = reason
    return None


def _requirement_reason(
    requirement: PurposeRequirement,
    *,
    tc: Any,
    vendor: Any,
    vendor_id: int,
    extra_purposes: frozenset[int],
    device_access: bool,
    run: _Run,
    activity: str,
) -> str | None:
    purposes = set(requirement.purposes) | extra_purposes
    if requirement.device_access and device_access:
        purposes.add(1)
    for purpose_id in sorted(purposes):
        reason = tcf_purpose_allowed(
            tc=tc, vendor=vendor, vendor_id=vendor_id, purpose_id=purpose_id
        )
        if run.check("tcf", f"{activity}: purpose {purpose_id}", reason) is not None:
            return reason
    if requirement.any_purpose:
        reasons = []
        for purpose_id in requirement.any_purpose:
            reason = tcf_purpose_allowed(
                tc=tc, vendor=vendor, vendor_id=vendor_id, purpose_id=purpose_id
            )
            if reason is None:
                break
            reasons.append(reason)
        else:
            # One shared reason (the vendor has no consent) says more than a generic one.
            common = reasons[0] if len(set(reasons)) == 1 else EngineReason.TCF_NO_PURPOSE_BASIS
            purposes_text = ", ".join(map(str, requirement.any_purpose))
            return run.check("tcf", f"{activity}: any of purposes {purposes_text}", common)
        run.check("tcf", f"{activity}: any of purposes", None, f"purpose {purpose_id}")
    for feature_id in requirement.special_features:
        reason = tcf_special_feature_allowed(tc=tc, vendor=vendor, special_feature_id=feature_id)
        if run.check("tcf", f"{activity}: special feature {feature_id}", reason) is not None:
            return reason
    return None


# --- US signals, GPC, COPPA, LMT ---------------------------------------------------------


def _user_data_checks(
    key: SignalKey,
    signals: Signals,
    regime: RegimeDecision,
    policy: PartnerPolicy,
    run: _Run,
    consent_reasons: dict[str, str | None],
) -> None:
    """Deny identifiers and precise geo where US signals, GPC or COPPA say so; LMT: device ids.

    Opt-outs are honoured whenever a readable signal carries one, whatever the
    regime: honouring an opt-out can only take data away.
    """
    denials: list[tuple[str, str]] = []
    usp = signals.us_privacy
    if usp is not None and usp.opted_out_of_sale and policy.honour_us_privacy_opt_out:
        denials.append((Reason.US_PRIVACY_OPT_OUT, f"{signals.us_privacy_source}: opt-out of sale"))
    for reason in signals.gpp_us_reasons:
        denials.append((reason, "GPP US sections"))
    if signals.gpc_honoured:
        denials.append((Reason.GPC, f"GPC in {key.region}, a state that requires honouring it"))
    elif key.gpc:
        run.check("us", "gpc", None, "GPC not honoured here (state or partner setting)")
    if signals.coppa_honoured:
        denials.append((Reason.COPPA, "child-directed: strongest scrub"))
    for reason, detail in denials:
        run.check("us" if reason != Reason.COPPA else "coppa", "user data", reason, detail)
        for activity in USER_DATA_ACTIVITIES:
            if consent_reasons[activity] is None:
                consent_reasons[activity] = reason
    if signals.coppa_honoured and (
        policy.ipv4_prefix_bits > DEFAULT_IPV4_BITS or policy.ipv6_prefix_bits > DEFAULT_IPV6_BITS
    ):
        # COPPA needs a truncated IP: a feed that keeps more bits gets none at all.
        run.check("coppa", "ip", Reason.COPPA, "the feed keeps more of the IP than /24 or /56")
        if consent_reasons[TRANSMIT_IP] is None:
            consent_reasons[TRANSMIT_IP] = Reason.COPPA
    if signals.lmt_honoured:
        run.check("device", "lmt", EngineReason.LMT, "limit ad tracking or ATT status 0-2")
        if consent_reasons[TRANSMIT_DEVICE_IDS] is None:
            consent_reasons[TRANSMIT_DEVICE_IDS] = EngineReason.LMT
    if US_REGIMES.isdisjoint(regime.regimes) and not denials:
        return
    if not denials:
        run.check("us", "user data", None, "no opt-out signal")


# --- Adapters to the TCF and GPP modules --------------------------------------------------


@dataclass(frozen=True)
class GppRead:
    """What the engine needs from a GPP string."""

    decoded: gpp.GppString
    sections: tuple[str, ...]
    tc: TCString | None
    us_views: tuple[gpp.UsNationalView, ...]
    us_reasons: tuple[str, ...]


def gpp_read(value: str, gpp_sid: tuple[int, ...]) -> GppRead:
    """Decode a GPP string and read its applicable sections; raises MalformedConsent.

    ``gpp_sid`` picks the applicable sections (all of them when empty). Every
    applicable US section is normalised onto US national and its denials are
    collected; a US section that cannot be normalised raises (fail closed).
    The event's own GPC flag is not passed here: it is honoured by state, see
    ``_decode``; a GPC sub-section inside a US section is honoured as is.
    """
    decoded = gpp.decode_gpp_string(value)
    applicable = gpp.sections_applicable(decoded, gpp_sid or None)
    tc = None
    views = []
    reasons: list[str] = []
    for section in applicable:
        if isinstance(section, gpp.TcfEuV2Section):
            tc = section.tc_string
        elif isinstance(section, gpp.UsSection):
            view = gpp.us_national_view(section)
            views.append(view)
            reasons.extend(r for r in gpp.gpp_us_denials(view, gpc_flag=None) if r not in reasons)
        elif isinstance(section, gpp.OpaqueSection) and section.section_id in US_SECTION_IDS:
            raise gpp.UnsupportedGppSection(f"GPP {section.name} section is not decoded")
    return GppRead(
        decoded=decoded,
        sections=tuple(section.name for section in applicable),
        tc=tc,
        us_views=tuple(views),
        us_reasons=tuple(reasons),
    )


def _gpp_read_once(value: str, gpp_sid: tuple[int, ...], shared: _Shared) -> GppRead:
    """``gpp_read``, once per policy for each GPP string and gpp_sid (errors included)."""
    memo_key = (value, gpp_sid)
    found = shared.gpp.get(memo_key)
    if found is None:
        try:
            found = gpp_read(value, gpp_sid)
        except MalformedConsent as exc:
            found = exc
        _remember(shared.gpp, memo_key, found)
    if isinstance(found, MalformedConsent):
        raise found.with_traceback(None)
    return found


def _section_names(gpp_sid: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(GPP_SECTION_NAMES[sid] for sid in gpp_sid if sid in GPP_SECTION_NAMES)


def gvl_vendor(gvl: Any, vendor_id: int) -> GvlVendor | None:
    """The GVL entry of ``vendor_id``, or None."""
    vendors = getattr(gvl, "vendors", None)
    return vendors.get(vendor_id) if isinstance(vendors, Mapping) else None
