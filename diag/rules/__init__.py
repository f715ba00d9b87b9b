"""Diagnosis rules: one module per stable code (docs/codes/README.md), listed explicitly in
`ALL_RULES`.

`ALL_RULES` is in root-cause order (the "Order" in docs/codes/README.md): what makes other
findings moot first (ambient, no sidecar, bypass), then why a matching entry is not in the proxy's
config (MP0115, MP0105, MP0104), why it does not match the call (MP0103, MP0114, MP0107, MP0111,
MP0102), MP0101 itself, the path's own failures (TLS, resolution, gateway, routes, staleness), and
the codes not attributable to the mesh (MP0201–MP0203) last. `diagnose(ctx)` runs them all, drops
codes a firing rule ``supersedes`` (e.g. MP0104 → MP0101, MP0107 → MP0202) and, for ambient or
sidecar-less sources, the sidecar-only codes (docs/codes/MP0303.md).
"""

from __future__ import annotations

from dataclasses import replace

from diag.predict.hosts import resolve_call
from diag.rules import (
    facts,
    mp0101,
    mp0102,
    mp0103,
    mp0104,
    mp0105,
    mp0106,
    mp0107,
    mp0108,
    mp0109,
    mp0110,
    mp0111,
    mp0112,
    mp0113,
    mp0114,
    mp0115,
    mp0116,
    mp0117,
    mp0118,
    mp0119,
    mp0120,
    mp0121,
    mp0201,
    mp0202,
    mp0203,
    mp0204,
    mp0301,
    mp0302,
    mp0303,
    mp0304,
    mp0305,
)
from diag.rules.base import Diagnosis, Rule, RuleContext
from diag.rules.fixcheck import check_diagnoses

ALL_RULES: tuple[Rule, ...] = (
    mp0303.RULE,
    mp0302.RULE,
    mp0204.RULE,
    mp0115.RULE,
    mp0105.RULE,
    mp0104.RULE,
    mp0103.RULE,
    mp0114.RULE,
    mp0107.RULE,
    mp0111.RULE,
    mp0102.RULE,
    mp0101.RULE,
    mp0113.RULE,
    mp0106.RULE,
    mp0108.RULE,
    mp0109.RULE,
    mp0110.RULE,
    mp0116.RULE,
    mp0117.RULE,
    mp0112.RULE,
    mp0118.RULE,
    mp0119.RULE,
    mp0120.RULE,
    mp0121.RULE,
    mp0305.RULE,
    mp0304.RULE,
    mp0301.RULE,
    mp0201.RULE,
    mp0202.RULE,
    mp0203.RULE,
)

RULES_BY_CODE: dict[str, Rule] = {rule.code: rule for rule in ALL_RULES}


def diagnose(ctx: RuleContext) -> list[Diagnosis]:
    """All diagnoses for one target, root cause first, superseded codes removed.

    Rules see the call as the pod makes it: a short name resolved through the source namespace's
    DNS search domains (`diag.predict.hosts`), so ``reviews`` is matched, explained and fixed as
    ``reviews.<ns>.svc.cluster.local``."""
    if ctx.snapshot is not None:
        call, _ = resolve_call(ctx.snapshot, ctx.source, ctx.call)
        ctx = replace(ctx, call=call)
    found: list[Diagnosis] = []
    for rule in ALL_RULES:
        if rule.sidecar_only and ctx.dataplane != "sidecar":
            continue
        found.extend(rule.evaluate(ctx))
    dropped = {code for d in found for code in d.supersedes if code != d.code}
    kept = [d for d in found if d.code not in dropped]
    if ctx.snapshot is None or not any(d.fix is not None for d in kept):
        return kept
    known = facts.known_address(ctx)
    return check_diagnoses(
        kept,
        ctx.snapshot,
        ctx.source,
        ctx.call,
        known_addresses=(known,) if known else (),
        report_calls=ctx.report_calls,
    )
