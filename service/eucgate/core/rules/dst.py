"""DST: destinations and routes."""

from __future__ import annotations

from eucgate.core.checks import Finding, NoParams
from eucgate.core.rules.context import RuleContext, check


@check("destinations_not_barred", NoParams)
def destinations_not_barred(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Neither the final destination, nor a transit country, nor any party but the
    exporter may be in a barred country; each offending field is its own finding."""
    c = ctx.certificate
    places: list[tuple[str, str]] = [
        ("final_destination_country", c.final_destination_country),
        ("importer.country_code", c.importer.country_code),
    ]
    if c.transaction is not None:  # goods may not pass through a barred country either
        places.extend(
            (f"transaction.transit_countries[{i}]", code)
            for i, code in enumerate(c.transaction.transit_countries)
        )
    if c.consignee is not None:
        places.append(("consignee.country_code", c.consignee.country_code))
    places.extend(
        (f"intermediaries[{i}].party.country_code", m.party.country_code)
        for i, m in enumerate(c.intermediaries)
    )
    places.append(("end_user.country_code", c.end_user.country_code))
    barred = set(ctx.bundle.barred_destinations)
    return [
        Finding(path, f"{code} is a barred destination") for path, code in places if code in barred
    ]


@check("parties_in_destination", NoParams)
def parties_in_destination(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Importer and end user are expected in the final destination country; a party
    elsewhere needs a person to look at why."""
    c = ctx.certificate
    return [
        Finding(path, f"{code} differs from the final destination {c.final_destination_country}")
        for path, code in (
            ("end_user.country_code", c.end_user.country_code),
            ("importer.country_code", c.importer.country_code),
        )
        if code != c.final_destination_country
    ]


@check("route_avoids_hubs", NoParams)
def route_avoids_hubs(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A known transshipment hub on the route (transit country, consignee or
    intermediary) is a finding."""
    c = ctx.certificate
    places: list[tuple[str, str]] = []
    if c.transaction is not None:
        places.extend(
            (f"transaction.transit_countries[{i}]", code)
            for i, code in enumerate(c.transaction.transit_countries)
        )
    if c.consignee is not None:
        places.append(("consignee.country_code", c.consignee.country_code))
    places.extend(
        (f"intermediaries[{i}].party.country_code", m.party.country_code)
        for i, m in enumerate(c.intermediaries)
    )
    hubs = set(ctx.bundle.transshipment_hubs)
    return [
        Finding(path, f"{code} is a known transshipment hub")
        for path, code in places
        if code in hubs
    ]


@check("destination_not_hub", NoParams)
def destination_not_hub(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A final destination in a known transshipment hub: goods declared to stay there
    are often sent on, so a person checks, even when every party is in that country."""
    code = ctx.certificate.final_destination_country
    if code not in ctx.bundle.transshipment_hubs:
        return []
    return [Finding("final_destination_country", f"{code} is a known transshipment hub")]
