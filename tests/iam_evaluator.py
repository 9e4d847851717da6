"""An IAM policy evaluator for the tests: Allow, explicit Deny, Condition operators and wildcards, as AWS defines them.

Written here because neither policy_sentry nor parliament evaluates a request against a policy (they read and lint
policies). The rules follow the IAM User Guide's policy reference:
- reference_policies_evaluation-logic.html: an explicit Deny in any applicable policy wins; otherwise one Allow
  suffices; otherwise the request is implicitly denied. Within one account a resource policy that names the
  principal allows on its own; a KMS key policy must allow the request itself or delegate to IAM by naming the
  account (and then the principal's own policy must allow it).
- reference_policies_elements_action.html / _resource.html / _notaction / _notresource: `*` and `?` match in
  actions (case-insensitively) and in resource ARNs, where a wildcard stays within its ARN segment except in the
  last segment.
- reference_policies_elements_condition_operators.html and _condition-single-vs-multi-valued-context-keys.html:
  the operators below; a key missing from the request makes a condition false, except for the negated operators,
  `...IfExists` and `ForAllValues:`, which are then true; values of one key are ORed (NORed when negated), keys
  and operators are ANDed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any, Callable, Union

ContextValue = Union[str, bool, int, float, Sequence[str]]
Document = Mapping[str, Any]


class Decision(Enum):
    ALLOWED = "allowed"
    IMPLICITLY_DENIED = "implicitly denied"
    EXPLICITLY_DENIED = "explicitly denied"


@dataclass(frozen=True)
class Request:
    """One authorization request: who calls, the action, the resource ARN and the request context."""

    principal: str  # a role ARN, or a service principal such as cloudwatch.amazonaws.com
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    @property
    def is_service(self) -> bool:
        return not self.principal.startswith("arn:")

    @property
    def account(self) -> str:
        return "" if self.is_service else self.principal.split(":")[4]


@cache
def _glob(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """StringLike: `*` any run of characters, `?` one character."""
    return bool(_glob(pattern, ignore_case).match(value))


def _arn_segments(arn: str) -> list[str]:
    parts = arn.split(":", 5)
    return parts + [""] * (6 - len(parts))


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike and the Resource element: segment by segment, the last segment (the resource) as a whole."""
    if pattern == "*":
        return True
    if not arn.startswith("arn:"):
        return like(pattern, arn)
    return all(like(p, a) for p, a in zip(_arn_segments(pattern), _arn_segments(arn)))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _number(value: Any) -> float:
    return float(value)


_MATCHERS: dict[str, Callable[[str, Any], bool]] = {
    "StringEquals": lambda want, got: want == _text(got),
    "StringEqualsIgnoreCase": lambda want, got: want.lower() == _text(got).lower(),
    "StringLike": lambda want, got: like(want, _text(got)),
    "ArnEquals": lambda want, got: want == _text(got),
    "ArnLike": lambda want, got: arn_like(want, _text(got)),
    "Bool": lambda want, got: want.lower() == _text(got).lower(),
    "NumericEquals": lambda want, got: _number(got) == _number(want),
    "NumericLessThan": lambda want, got: _number(got) < _number(want),
    "NumericLessThanEquals": lambda want, got: _number(got) <= _number(want),
    "NumericGreaterThan": lambda want, got: _number(got) > _number(want),
    "NumericGreaterThanEquals": lambda want, got: _number(got) >= _number(want),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def _lookup(context: Mapping[str, ContextValue], key: str) -> ContextValue | None:
    # Condition key names are case-insensitive; their values are not.
    for name, value in context.items():
        if name.lower() == key.lower():
            return value
    return None


def _operator_holds(operator: str, key: str, wanted: Any, context: Mapping[str, ContextValue]) -> bool:
    qualifier, _, operator = operator.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    got = _lookup(context, key)
    wanted_values = [_text(w) for w in _as_list(wanted)]
    if operator == "Null":
        # Null: true asks that the key be absent, false that it be present.
        return all((got is None) == (w.lower() == "true") for w in wanted_values)
    negated = operator in _NEGATED
    matcher = _MATCHERS.get(_NEGATED.get(operator, operator))
    if matcher is None:
        raise NotImplementedError(f"the evaluator does not know the condition operator {operator}")
    if got is None:
        return if_exists or negated or qualifier == "ForAllValues"
    got_values = _as_list(got)

    def matches(value: Any) -> bool:
        return any(matcher(w, value) for w in wanted_values)

    if qualifier == "ForAllValues":
        found = all(matches(v) for v in got_values)
        return all(not matches(v) for v in got_values) if negated else found
    if qualifier == "ForAnyValue" or len(got_values) == 1:
        return any(not matches(v) for v in got_values) if negated else any(matches(v) for v in got_values)
    raise ValueError(f"{key} has several values in the request: {operator} needs ForAnyValue or ForAllValues")


def conditions_hold(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, ContextValue]) -> bool:
    """Every operator, and every key under it, holds."""
    return all(
        _operator_holds(operator, key, wanted, context)
        for operator, keys in condition.items()
        for key, wanted in keys.items()
    )


def _principal_matches(statement: Mapping[str, Any], request: Request) -> tuple[bool, bool]:
    """(whether the statement names the principal, whether it does so only by naming the principal's account)."""
    if "NotPrincipal" in statement:
        raise NotImplementedError("the evaluator does not know NotPrincipal")
    principal = statement["Principal"]
    if principal == "*":
        return True, False
    named = {kind: _as_list(values) for kind, values in principal.items()}
    if "*" in named.get("AWS", []):
        return True, False  # everyone, services included
    if request.is_service:
        return request.principal in named.get("Service", []), False
    for value in named.get("AWS", []):
        if value == request.principal:
            return True, False
        if value in (request.account, f"arn:aws:iam::{request.account}:root"):
            return True, True
    return False, False


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    """Action or NotAction, Resource or NotResource, and Condition all match the request."""
    if "Action" in statement:
        acts = any(like(pattern, request.action, ignore_case=True) for pattern in _as_list(statement["Action"]))
    else:
        acts = not any(like(p, request.action, ignore_case=True) for p in _as_list(statement["NotAction"]))
    if "Resource" in statement:
        on = any(arn_like(pattern, request.resource) for pattern in _as_list(statement["Resource"]))
    else:
        on = not any(arn_like(pattern, request.resource) for pattern in _as_list(statement["NotResource"]))
    return acts and on and conditions_hold(statement.get("Condition", {}), request.context)


def _statements(documents: Iterable[Document]) -> list[Mapping[str, Any]]:
    return [statement for document in documents for statement in _as_list(document["Statement"])]


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    by: tuple[str, ...]  # the Sids (or positions) of the statements that decided

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOWED


def _sid(statement: Mapping[str, Any], index: int) -> str:
    return str(statement.get("Sid", f"statement {index}"))


def evaluate(
    request: Request,
    identity_policies: Sequence[Document] = (),
    resource_policy: Document | None = None,
    *,
    key_policy: bool = False,
) -> Verdict:
    """The decision on one request, under the principal's own policies and the resource's policy, if any.

    key_policy marks the resource policy as a KMS key policy: it must allow the request, or delegate to IAM.
    """
    identity = [s for s in _statements(identity_policies) if statement_applies(s, request)]
    resource: list[tuple[Mapping[str, Any], bool]] = []
    for statement in _statements([resource_policy] if resource_policy else []):
        named, by_account = _principal_matches(statement, request)
        if named and statement_applies(statement, request):
            resource.append((statement, by_account))
    denies = [s for s in identity + [s for s, _ in resource] if s["Effect"] == "Deny"]
    if denies:
        return Verdict(Decision.EXPLICITLY_DENIED, tuple(_sid(s, i) for i, s in enumerate(denies)))
    identity_allows = [_sid(s, i) for i, s in enumerate(identity) if s["Effect"] == "Allow"]
    direct = [_sid(s, i) for i, (s, by_account) in enumerate(resource) if s["Effect"] == "Allow" and not by_account]
    delegated = any(s["Effect"] == "Allow" and by_account for s, by_account in resource)
    if direct:
        return Verdict(Decision.ALLOWED, tuple(direct))
    if identity_allows and (delegated or not key_policy) and not request.is_service:
        return Verdict(Decision.ALLOWED, tuple(identity_allows))
    return Verdict(Decision.IMPLICITLY_DENIED, ())
